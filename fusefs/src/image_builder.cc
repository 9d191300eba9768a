// Flattening the committed layers of an image into one authenticated tree
// (design/sealfs.md "Layers and image roots": why flatten).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "base/interrupt.h"
#include "fusefs/src/image_root.h"
#include "fusefs/src/object.h"
#include "fusefs/src/records.h"
#include "fusefs/writer.h"

namespace sealroot::fusefs {
namespace {

// Where a record sits in a layer index's plaintext: the `layer`-th index of the image.
struct IndexSpan {
  std::size_t layer = 0;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
};

// One inode of the merged tree; hard links share a Node.
struct Node {
  Record rec;  // attributes and content; rec.name is unused
  // A small file's content is not held: it is read back from its record when its directory
  // is written (InlineContent), so the tree costs the same per file whatever the content.
  std::optional<IndexSpan> inline_record;
  std::map<std::string, std::shared_ptr<Node>, std::less<>> children;  // directories
  std::uint64_t ino = 0;
  std::uint32_t links = 0;
};

Result<std::vector<std::string_view>> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    std::size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (part.empty() || part == "." || part == "..") {
      return DataLoss("layer index holds an unclean path");
    }
    parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

std::shared_ptr<Node> ImplicitDirectory() {
  auto dir = std::make_shared<Node>();
  dir->rec.type = NodeType::kDirectory;
  dir->rec.mode = 0755;
  return dir;
}

class Tree {
 public:
  Tree() : root_(ImplicitDirectory()) {}
  const std::shared_ptr<Node>& root() const { return root_; }

  // The directory holding `parts.back()`, creating missing parents as tar extractors do.
  Result<Node*> Parent(const std::vector<std::string_view>& parts, bool create) {
    Node* dir = root_.get();
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = dir->children.find(parts[i]);
      if (it == dir->children.end() || it->second->rec.type != NodeType::kDirectory) {
        if (!create) return static_cast<Node*>(nullptr);
        it = dir->children.insert_or_assign(std::string(parts[i]), ImplicitDirectory()).first;
      }
      dir = it->second.get();
    }
    return dir;
  }

  Result<std::shared_ptr<Node>> Find(std::string_view path) {
    SR_ASSIGN_OR_RETURN(auto parts, SplitPath(path));
    if (parts.empty()) return root_;
    SR_ASSIGN_OR_RETURN(Node * dir, Parent(parts, false));
    if (dir == nullptr) return std::shared_ptr<Node>();
    auto it = dir->children.find(parts.back());
    return it == dir->children.end() ? std::shared_ptr<Node>() : it->second;
  }

  // Whiteouts and opaque markers hide what the layers below put there.
  Status Hide(const Record& rec) {
    SR_ASSIGN_OR_RETURN(auto parts, SplitPath(rec.name));
    if (rec.type == NodeType::kOpaque) {
      SR_ASSIGN_OR_RETURN(auto dir, Find(rec.name));
      if (dir && dir->rec.type == NodeType::kDirectory) dir->children.clear();
      return OkStatus();
    }
    if (parts.empty()) return DataLoss("a whiteout of the root directory");
    SR_ASSIGN_OR_RETURN(Node * dir, Parent(parts, false));
    if (dir != nullptr) dir->children.erase(std::string(parts.back()));
    return OkStatus();
  }

  // `at`: where `rec` is in its layer index.
  Status Add(Record&& rec, const IndexSpan& at) {
    SR_ASSIGN_OR_RETURN(auto parts, SplitPath(rec.name));
    if (parts.empty()) {
      if (rec.type != NodeType::kDirectory) return DataLoss("the root is not a directory");
      UpdateDirectory(*root_, rec);
      return OkStatus();
    }
    SR_ASSIGN_OR_RETURN(Node * dir, Parent(parts, true));
    std::string name(parts.back());
    if (rec.type == NodeType::kHardLink) {
      SR_ASSIGN_OR_RETURN(auto target, Find(rec.target));
      if (!target || target->rec.type == NodeType::kDirectory) {
        return DataLoss("hard link " + rec.name + " to missing or directory '" + rec.target + "'");
      }
      dir->children.insert_or_assign(std::move(name), std::move(target));
      return OkStatus();
    }
    auto it = dir->children.find(name);
    if (rec.type == NodeType::kDirectory && it != dir->children.end() &&
        it->second->rec.type == NodeType::kDirectory) {
      UpdateDirectory(*it->second, rec);  // an existing directory keeps its children
      return OkStatus();
    }
    auto node = std::make_shared<Node>();
    node->rec = std::move(rec);
    node->rec.name.clear();
    if (!node->rec.inline_data.empty()) {
      node->inline_record = at;
      std::string().swap(node->rec.inline_data);  // frees it: assigning "" would keep the buffer
    }
    dir->children.insert_or_assign(std::move(name), std::move(node));
    return OkStatus();
  }

 private:
  static void UpdateDirectory(Node& dir, const Record& rec) {
    std::optional<ObjectRef> keep = dir.rec.ref;
    dir.rec = rec;
    dir.rec.name.clear();
    dir.rec.ref = keep;
  }
  std::shared_ptr<Node> root_;
};

// Decodes a layer index's records as its chunks stream in (a record may span chunks), so that
// only the tree, not the index, is held: an index holds every file's small content inline.
// `each` also gets where the record starts in the index and its encoded length.
Status ForEachRecord(const Store& store, const StoreKey& key, const ObjectRef& index,
                     const std::function<Status(Record&&, std::uint64_t, std::uint32_t)>& each) {
  std::vector<std::uint8_t> pending;  // the start of a record the next chunk completes
  std::uint64_t pending_offset = 0;   // where `pending` starts in the index
  SR_RETURN_IF_ERROR(StreamObject(
      store, key, index, ObjectKind::kLayerIndex, [&](std::span<const std::uint8_t> chunk) -> Status {
        pending.insert(pending.end(), chunk.begin(), chunk.end());
        ByteReader r(pending);
        std::size_t used = 0;
        for (Record rec; DecodeRecord(r, rec); rec = Record{}) {
          const std::size_t start = used;
          used = pending.size() - r.remaining();
          SR_RETURN_IF_ERROR(
              each(std::move(rec), pending_offset + start, static_cast<std::uint32_t>(used - start)));
        }
        pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(used));
        pending_offset += used;
        return OkStatus();
      }));
  if (!pending.empty()) return DataLoss("malformed layer index");
  return OkStatus();
}

// Reads small files' content back from their layer index records while directories are
// written. Every read is checked chunk by chunk (DataObject), as the first pass checked the
// whole index; a window of the index is kept, since a directory's files are mostly adjacent in
// its layer's tar.
class InlineContent {
 public:
  InlineContent(const Store& store, const StoreKey& key) : store_(store), key_(key) {}
  void AddLayer(const ObjectRef& index) { layers_.push_back({index, std::nullopt}); }

  // The content of the regular file recorded at `at`, which must be `size` bytes.
  Result<std::string> Read(const IndexSpan& at, std::uint64_t size) {
    if (at.layer != window_layer_ || at.offset < window_start_ ||
        at.offset + at.length > window_start_ + window_.size()) {
      SR_RETURN_IF_ERROR(Fill(at));
    }
    const auto bytes = std::span<const std::uint8_t>(window_).subspan(at.offset - window_start_, at.length);
    ByteReader r(bytes);
    Record rec;
    if (!DecodeRecord(r, rec) || r.remaining() != 0 || rec.inline_data.size() != size)
      return DataLoss("a layer index record changed between two reads");
    return std::move(rec.inline_data);
  }

 private:
  static constexpr std::size_t kWindow = 256 * 1024;
  struct Layer {
    ObjectRef index;
    std::optional<DataObject> object;  // opened on first use
  };

  Status Fill(const IndexSpan& at) {
    Layer& layer = layers_.at(at.layer);
    if (!layer.object) {
      SR_ASSIGN_OR_RETURN(DataObject object,
                          DataObject::Open(store_, key_, layer.index, ObjectKind::kLayerIndex));
      layer.object.emplace(std::move(object));
    }
    window_layer_ = SIZE_MAX;
    window_start_ = at.offset / kChunkSize * kChunkSize;
    window_.resize(std::max<std::uint64_t>(kWindow, at.offset + at.length - window_start_));
    SR_ASSIGN_OR_RETURN(std::size_t n, layer.object->ReadAt(window_start_, window_));
    window_.resize(n);
    if (at.offset + at.length > window_start_ + n) return DataLoss("a layer index record is past its end");
    window_layer_ = at.layer;
    return OkStatus();
  }

  const Store& store_;
  const StoreKey& key_;
  std::vector<Layer> layers_;
  std::size_t window_layer_ = SIZE_MAX;  // none yet
  std::uint64_t window_start_ = 0;
  std::vector<std::uint8_t> window_;
};

bool Hides(const Record& rec) {
  return rec.type == NodeType::kWhiteout || rec.type == NodeType::kOpaque;
}

// A layer's whiteouts apply to the layers below it only, wherever they sit in its tar: one pass
// over its index hides, a second adds (each pass checks the whole index again). `layer`: its
// position in the image.
Status ApplyLayer(const Store& store, const StoreKey& key, const ObjectRef& index, std::size_t layer,
                  Tree& tree) {
  SR_RETURN_IF_ERROR(ForEachRecord(store, key, index, [&](Record&& rec, std::uint64_t, std::uint32_t) {
    return Hides(rec) ? tree.Hide(rec) : OkStatus();
  }));
  return ForEachRecord(store, key, index,
                       [&](Record&& rec, std::uint64_t offset, std::uint32_t length) -> Status {
                         if (Hides(rec)) return OkStatus();
                         std::string name = rec.name;
                         return tree.Add(std::move(rec), {layer, offset, length}).WithContext(name);
                       });
}

void Number(Node& node, std::uint64_t& next_ino) {
  if (node.ino == 0) node.ino = next_ino++;
  ++node.links;
  for (auto& [name, child] : node.children) Number(*child, next_ino);
}

// Writes the directory objects bottom-up; each directory's ref lands in its rec.ref.
class DirectoryWriter {
 public:
  DirectoryWriter(const Store& store, const StoreKey& key, InlineContent& inline_content)
      : writer_(store, key), inline_content_(inline_content) {}
  std::vector<Hash32>& written() { return written_; }

  Status Write(Node& dir) {
    if (Interrupted()) return Cancelled("interrupted");
    for (auto& [name, child] : dir.children) {
      if (child->rec.type == NodeType::kDirectory) SR_RETURN_IF_ERROR(Write(*child));
    }
    SR_RETURN_IF_ERROR(writer_.Begin(ObjectKind::kDirectory));
    ByteWriter w;
    w.U32(static_cast<std::uint32_t>(dir.children.size()));
    for (auto& [name, child] : dir.children) {
      Record rec = child->rec;
      if (child->inline_record) {
        SR_ASSIGN_OR_RETURN(rec.inline_data, inline_content_.Read(*child->inline_record, rec.size));
      }
      rec.name = name;
      rec.ino = child->ino;
      rec.nlink = rec.type == NodeType::kDirectory ? 2 + Subdirectories(*child) : child->links;
      EncodeRecord(rec, w);
      if (w.bytes().size() >= kChunkSize) {
        SR_RETURN_IF_ERROR(writer_.Write(w.bytes()));
        w.bytes().clear();
      }
    }
    SR_RETURN_IF_ERROR(writer_.Write(w.bytes()));
    SR_ASSIGN_OR_RETURN(ObjectRef ref, writer_.Finish());
    written_.push_back(ref.name);
    dir.rec.ref = ref;
    return OkStatus();
  }

  Result<ObjectRef> WriteRoot(const ImageRoot& root) {
    SR_RETURN_IF_ERROR(writer_.Begin(ObjectKind::kImageRoot));
    SR_RETURN_IF_ERROR(writer_.Write(EncodeImageRoot(root)));
    SR_ASSIGN_OR_RETURN(ObjectRef ref, writer_.Finish());
    written_.push_back(ref.name);
    return ref;
  }

  static std::uint32_t Subdirectories(const Node& dir) {
    std::uint32_t n = 0;
    for (const auto& [name, child] : dir.children) n += child->rec.type == NodeType::kDirectory;
    return n;
  }

 private:
  ObjectWriter writer_;
  InlineContent& inline_content_;
  std::vector<Hash32> written_;
};

}  // namespace

Result<RootHash> BuildImageRoot(const Store& store, const StoreKey& key, const ImageMetadata& image) {
  Tree tree;
  ImageRoot root;
  root.manifest_digest = image.manifest_digest;
  root.config_digest = image.config_digest;
  root.config_json = image.config_json;
  InlineContent inline_content(store, key);
  for (const std::string& diff_id : image.diff_ids) {
    auto index = store.LayerIndex(key, diff_id);
    Status applied = index.ok() ? ApplyLayer(store, key, *index, root.layers.size(), tree) : index.status();
    SR_RETURN_IF_ERROR_CTX(applied, "flattening layer " + diff_id);
    root.layers.emplace_back(diff_id, *index);
    inline_content.AddLayer(*index);
  }
  std::uint64_t next_ino = 1;
  Number(*tree.root(), next_ino);
  root.max_ino = next_ino - 1;

  DirectoryWriter dirs(store, key, inline_content);
  auto cleanup = [&] {
    for (const Hash32& name : dirs.written()) store.RemoveObject(name);
  };
  Status s = dirs.Write(*tree.root());
  if (s.ok()) {
    root.root = tree.root()->rec;
    root.root.ino = 1;
    root.root.nlink = 2 + DirectoryWriter::Subdirectories(*tree.root());
    auto ref = dirs.WriteRoot(root);
    if (ref.ok()) {
      s = store.Sync();
      if (s.ok()) s = store.CommitRoot(key, ref->name, image.diff_ids, dirs.written());
      if (s.ok()) return ref->name;
    } else {
      s = ref.status();
    }
  }
  cleanup();
  return std::move(s).WithContext("writing the image root");
}

}  // namespace sealroot::fusefs
