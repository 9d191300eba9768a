// The image -> sealed store adapter: an image::ImageSink whose layers are sealfs LayerWriters and
// whose Finish flattens the layers into an image root (design/sealfs.md).
#include "sealing/sealing.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "fusefs/store.h"
#include "fusefs/writer.h"

namespace sealroot::sealing {
namespace {

using fusefs::NodeType;

NodeType ToNodeType(image::EntryType type) {
  switch (type) {
    case image::EntryType::kDirectory:
      return NodeType::kDirectory;
    case image::EntryType::kRegular:
      return NodeType::kRegular;
    case image::EntryType::kSymlink:
      return NodeType::kSymlink;
    case image::EntryType::kHardLink:
      return NodeType::kHardLink;
    case image::EntryType::kCharDevice:
      return NodeType::kCharDevice;
    case image::EntryType::kBlockDevice:
      return NodeType::kBlockDevice;
    case image::EntryType::kFifo:
      return NodeType::kFifo;
    case image::EntryType::kWhiteout:
      return NodeType::kWhiteout;
    case image::EntryType::kOpaque:
      return NodeType::kOpaque;
  }
  return NodeType::kRegular;
}

class SealingLayerSink final : public image::LayerSink {
 public:
  SealingLayerSink(std::unique_ptr<fusefs::LayerWriter> writer, std::string context)
      : writer_(std::move(writer)), context_(std::move(context)) {}

  Status AddEntry(const image::Entry& entry, Reader* content) override {
    fusefs::LayerEntry e;
    e.type = ToNodeType(entry.type);
    e.path = entry.path;
    e.mode = entry.mode;
    e.uid = entry.uid;
    e.gid = entry.gid;
    e.mtime_sec = entry.mtime_sec;
    e.mtime_nsec = entry.mtime_nsec;
    e.size = entry.size;
    e.link_target = entry.link_target;
    e.dev_major = entry.dev_major;
    e.dev_minor = entry.dev_minor;
    e.xattrs = entry.xattrs;
    // The sealfs writer pulls a file's content straight from the image pipeline.
    return writer_->Add(e, content).WithContext(context_);
  }
  Status Commit() override { return writer_->Commit().WithContext(context_); }
  void Abort(const Status&) override { writer_->Abort(); }

 private:
  std::unique_ptr<fusefs::LayerWriter> writer_;
  std::string context_;
};

class SealingSinkImpl final : public SealingSink {
 public:
  SealingSinkImpl(std::shared_ptr<const fusefs::Store> store, std::shared_ptr<const fusefs::StoreKey> key,
                  std::string name)
      : store_(std::move(store)), key_(std::move(key)), name_(std::move(name)) {}

  fusefs::RootHash root_hash() const override { return root_; }

  bool HasLayer(const image::Digest& diff_id) const override {
    return store_->HasLayer(*key_, diff_id.str()) && store_->LayerIndex(*key_, diff_id.str()).ok();
  }

  // Each layer is its own index in the store; only Finish (BuildImageRoot) stacks them.
  bool LayersIndependent() const override { return true; }

  Result<std::unique_ptr<image::LayerSink>> OpenLayer(const image::LayerInfo& info) override {
    std::string context = "sealing layer " + std::to_string(info.index + 1) + "/" +
                          std::to_string(info.count) + " " + info.diff_id.str() + " into " + store_->dir();
    auto writer = fusefs::LayerWriter::Create(store_, key_, info.diff_id.str());
    if (!writer.ok()) return writer.status().WithContext(context);
    return std::unique_ptr<image::LayerSink>(
        std::make_unique<SealingLayerSink>(std::move(writer).value(), std::move(context)));
  }

  Status Finish(const image::ImageInfo& image) override {
    fusefs::ImageMetadata meta;
    meta.manifest_digest = image.manifest_digest.str();
    meta.config_digest = image.config_digest.str();
    meta.config_json = image.config_json;
    for (const image::Digest& d : image.diff_ids) meta.diff_ids.push_back(d.str());
    auto root = fusefs::BuildImageRoot(*store_, *key_, meta);
    if (!root.ok())
      return root.status().WithContext("sealing image " + image.reference + " into " + store_->dir());
    root_ = *root;
    if (name_.empty()) return OkStatus();
    // Named while this writer still holds the store's shared lock: no gc in between.
    return store_->UpdateRootNames(*key_, [&](std::vector<fusefs::NamedRoot>& names) {
      std::erase_if(names, [&](const fusefs::NamedRoot& n) { return n.name == name_; });
      names.push_back({name_, *root});
      return OkStatus();
    });
  }

  // Committed layers stay in the store for reuse (gc removes them if no root ever uses them);
  // uncommitted layers were already removed by their own Abort.
  void Abort(const Status&) override {}

 private:
  std::shared_ptr<const fusefs::Store> store_;
  std::shared_ptr<const fusefs::StoreKey> key_;
  std::string name_;
  fusefs::RootHash root_{};
};

// A key file holds the 32 raw key bytes, or 64 hex characters and an optional newline.
Result<SecretBytes> ParseKey(SecretBytes text, const std::string& where) {
  if (text.size() == 32) return text;
  std::string_view hex(reinterpret_cast<const char*>(text.data()), text.size());
  if (hex.ends_with('\n')) hex.remove_suffix(1);
  if (IsLowerHex(hex, 64)) {
    auto bytes = HexDecode(hex);
    if (bytes.ok()) {
      SecretBytes key(*bytes);
      SecureWipe(*bytes);
      return key;
    }
  }
  return InvalidArgument(where + " must hold one 256-bit key (32 raw bytes or 64 hex characters), got " +
                         std::to_string(text.size()) + " bytes");
}

}  // namespace

Result<std::unique_ptr<SealingSink>> OpenSealingSink(SealOptions options, std::string root_name) {
  if (!root_name.empty()) SR_RETURN_IF_ERROR(fusefs::ValidateRootName(root_name));
  SR_ASSIGN_OR_RETURN(fusefs::StoreKey key, fusefs::StoreKey::Create(std::move(options.key)));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<fusefs::Store> store,
                      fusefs::Store::Open(options.store_dir, /*create=*/true, fusefs::StoreLock::kShared));
  SR_RETURN_IF_ERROR(store->CheckKey(key, /*bind=*/true));
  return std::unique_ptr<SealingSink>(std::make_unique<SealingSinkImpl>(
      std::move(store), std::make_shared<const fusefs::StoreKey>(std::move(key)), std::move(root_name)));
}

Result<SecretBytes> LoadOrCreateKey(const std::optional<std::string>& key_file, std::optional<int> key_fd) {
  if (key_file.has_value() == key_fd.has_value()) {
    return InvalidArgument("give exactly one of --key-file and --key-fd");
  }
  if (key_fd) {
    SR_ASSIGN_OR_RETURN(SecretBytes text, ReadSecretFd(*key_fd, 4096));
    return ParseKey(std::move(text), "key fd " + std::to_string(*key_fd));
  }
  struct stat st {};
  if (stat(key_file->c_str(), &st) != 0 && errno == ENOENT) {
    SecretBytes key = SecretBytes::Random(32);
    SR_RETURN_IF_ERROR(
        WriteFileAtomic(*key_file, key.span(), 0600).WithContext("creating key file " + *key_file));
    return key;
  }
  // As ssh refuses an unprotected private key: a key others can read is no secret any more.
  if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied("key file " + *key_file + " has permissions " + mode +
                            ", so others can read or change it: refused (chmod 600 " + *key_file + ")");
  }
  SR_ASSIGN_OR_RETURN(SecretBytes text, ReadSecretFile(*key_file, 4096));
  return ParseKey(std::move(text), "key file " + *key_file);
}

Result<SecretBytes> LoadOrCreateStoreKey(const std::string& store_dir,
                                         const std::optional<std::string>& key_file,
                                         std::optional<int> key_fd) {
  struct stat st {};
  if (key_file && stat(key_file->c_str(), &st) != 0 && errno == ENOENT &&
      ::access(JoinPath(store_dir, "key-check").c_str(), F_OK) == 0) {
    return NotFound("key file " + *key_file + " does not exist, and store " + store_dir +
                    " already has a key: give that key's file (a new key is created only for a new store)");
  }
  return LoadOrCreateKey(key_file, key_fd);
}

}  // namespace sealroot::sealing
