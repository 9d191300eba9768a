// Test fixture for the sealed store: a fresh store and key, helpers to seal layers from in-memory
// entries, and helpers to walk and read a SealedTree by path.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "base/encoding.h"
#include "fusefs/sealed_tree.h"
#include "fusefs/store.h"
#include "fusefs/writer.h"
#include "tests/support/process.h"
#include "tests/support/string_reader.h"

namespace sealroot::fusefs::testing {

using StringSource = sealroot::testing::StringReader;

// One entry to seal; `content` for regular files.
struct Item {
  LayerEntry entry;
  std::string content;
};

inline Item Dir(std::string path, std::uint32_t mode = 0755) {
  Item i;
  i.entry.type = NodeType::kDirectory;
  i.entry.path = std::move(path);
  i.entry.mode = mode;
  return i;
}
inline Item File(std::string path, std::string content, std::uint32_t mode = 0644) {
  Item i;
  i.entry.type = NodeType::kRegular;
  i.entry.path = std::move(path);
  i.entry.mode = mode;
  i.entry.size = content.size();
  i.content = std::move(content);
  return i;
}
inline Item Link(NodeType type, std::string path, std::string target) {
  Item i;
  i.entry.type = type;
  i.entry.path = std::move(path);
  i.entry.mode = type == NodeType::kSymlink ? 0777 : 0;
  i.entry.link_target = std::move(target);
  return i;
}
inline Item Marker(NodeType type, std::string path) {
  Item i;
  i.entry.type = type;
  i.entry.path = std::move(path);
  return i;
}

inline std::string DiffIdOf(const std::string& name) {
  return "sha256:" + HexEncode(Sha256Of(name));
}

// Deterministic pseudo-random bytes.
inline std::string Pattern(std::size_t size, std::uint32_t seed) {
  std::string s(size, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

class SealfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_dir_ = tmp_ / "store";
    key_bytes_ = SecretBytes::Random(32);
    auto key = StoreKey::Create(key_bytes_.Clone());
    ASSERT_TRUE(key.ok());
    key_ = std::make_shared<StoreKey>(std::move(key).value());
    auto store = Store::Open(store_dir_, true, StoreLock::kShared);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    ASSERT_TRUE(store_->CheckKey(*key_, true).ok());
  }

  Status SealLayer(const std::string& diff_id, std::vector<Item> items) {
    SR_ASSIGN_OR_RETURN(auto writer, LayerWriter::Create(store_, key_, diff_id));
    for (Item& item : items) {
      StringSource source(item.content);
      Status s = writer->Add(item.entry, item.entry.type == NodeType::kRegular ? &source : nullptr);
      if (!s.ok()) {
        writer->Abort();
        return s;
      }
    }
    return writer->Commit();
  }

  Result<RootHash> SealImage(std::vector<std::string> diff_ids, std::string config = "{}") {
    ImageMetadata meta;
    meta.manifest_digest = DiffIdOf("manifest");
    meta.config_digest = DiffIdOf(config);
    meta.config_json = std::move(config);
    meta.diff_ids = std::move(diff_ids);
    return BuildImageRoot(*store_, *key_, meta);
  }

  // Seals one layer named `name` and an image made of it.
  RootHash SealSingle(const std::string& name, std::vector<Item> items) {
    Status s = SealLayer(DiffIdOf(name), std::move(items));
    EXPECT_TRUE(s.ok()) << s.ToString();
    auto root = SealImage({DiffIdOf(name)});
    EXPECT_TRUE(root.ok()) << root.status().ToString();
    return root.ok() ? *root : RootHash{};
  }

  Result<std::unique_ptr<SealedTree>> OpenTree(const RootHash& root, const SealedTreeOptions& options = {}) {
    auto store = Store::Open(store_dir_, false, StoreLock::kNone);
    if (!store.ok()) return store.status();
    return SealedTree::OpenRoot(std::move(store).value(), key_, root, options);
  }

  std::string ObjectPath(const std::string& hex) const {
    return store_dir_ + "/objects/" + hex.substr(0, 2) + "/" + hex.substr(2);
  }
  // The object file of the layer `name` whose size is `rank`-th largest (0: the largest).
  std::string NthLargestObject(const std::string& name, std::size_t rank) const {
    std::ifstream in(store_dir_ + "/layers/" + key_->LayerName(DiffIdOf(name)) + "/objects");
    std::vector<std::pair<std::uintmax_t, std::string>> objects;
    for (std::string hex; in >> hex;) objects.emplace_back(std::filesystem::file_size(ObjectPath(hex)), hex);
    std::sort(objects.rbegin(), objects.rend());
    return ObjectPath(objects.at(rank).second);
  }
  // Inverts one byte of a file the host stores (setting it could leave it as it was).
  static void FlipByte(const std::string& path, std::streamoff at) {
    ASSERT_LT(at, static_cast<std::streamoff>(std::filesystem::file_size(path))) << path;
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    const char c = static_cast<char>(f.get());
    f.seekp(at);
    f.put(static_cast<char>(~c));
  }

  sealroot::testing::TempDir tmp_;
  std::string store_dir_;
  SecretBytes key_bytes_;
  std::shared_ptr<StoreKey> key_;
  std::shared_ptr<Store> store_;
};

// Walks `path` ("a/b", "" = root) through Lookup; one lookup reference per component.
inline Result<Attr> Walk(Filesystem& fs, const std::string& path) {
  Attr attr;
  attr.ino = kRootIno;
  if (path.empty()) return fs.GetAttr(kRootIno);
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    SR_ASSIGN_OR_RETURN(attr, fs.Lookup(attr.ino, part));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return attr;
}

inline Result<std::string> ReadAll(Filesystem& fs, const std::string& path, std::size_t piece = 1 << 20) {
  SR_ASSIGN_OR_RETURN(Attr attr, Walk(fs, path));
  SR_ASSIGN_OR_RETURN(std::uint64_t handle, fs.Open(attr.ino, 0));
  std::string out;
  std::vector<std::uint8_t> buf(piece);
  Status status;
  for (;;) {
    auto n = fs.Read(handle, out.size(), buf);
    if (!n.ok()) {
      status = n.status();
      break;
    }
    if (*n == 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  fs.Release(handle);
  if (!status.ok()) return status;
  return out;
}

inline Result<std::vector<std::string>> List(Filesystem& fs, const std::string& path) {
  SR_ASSIGN_OR_RETURN(Attr attr, Walk(fs, path));
  std::vector<std::string> names;
  SR_RETURN_IF_ERROR(fs.ReadDir(attr.ino, 0, [&](const DirEntry& e, std::uint64_t) {
    names.emplace_back(e.name);
    return true;
  }));
  return names;
}

}  // namespace sealroot::fusefs::testing
