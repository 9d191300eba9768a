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

struct Node;
struct Directory {
  std::map<std::string, std::shared_ptr<Node>, std::less<>> children;
  std::optional<ObjectRef> written;  // its directory object, once written
};

// One inode of the merged tree; hard links share a Node. It holds no attributes or content:
// they are read back from the node's record in its layer index when its directory object is
// written (RecordReader), so a node costs about 200 bytes with its name, whatever its record
// holds.
struct Node {
  bool is_directory() const { return directory != nullptr; }
  std::optional<IndexSpan> record;  // none: a directory no layer lists, made for its children
  std::unique_ptr<Directory> directory;
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

std::shared_ptr<Node> NewDirectory() {
  auto dir = std::make_shared<Node>();
  dir->directory = std::make_unique<Directory>();
  return dir;
}

// The attributes of a directory that no layer lists (as tar extractors create it).
Record ImplicitDirectoryRecord() {
  Record rec;
  rec.type = NodeType::kDirectory;
  rec.mode = 0755;
  return rec;
}

class Tree {
 public:
  Tree() : root_(NewDirectory()) {}
  const std::shared_ptr<Node>& root() const { return root_; }

  // The directory holding `parts.back()`, creating missing parents as tar extractors do.
  Result<Directory*> Parent(const std::vector<std::string_view>& parts, bool create) {
    Directory* dir = root_->directory.get();
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = dir->children.find(parts[i]);
      if (it == dir->children.end() || !it->second->is_directory()) {
        if (!create) return static_cast<Directory*>(nullptr);
        it = dir->children.insert_or_assign(std::string(parts[i]), NewDirectory()).first;
      }
      dir = it->second->directory.get();
    }
    return dir;
  }

  Result<std::shared_ptr<Node>> Find(std::string_view path) {
    SR_ASSIGN_OR_RETURN(auto parts, SplitPath(path));
    if (parts.empty()) return root_;
    SR_ASSIGN_OR_RETURN(Directory * dir, Parent(parts, false));
    if (dir == nullptr) return std::shared_ptr<Node>();
    auto it = dir->children.find(parts.back());
    return it == dir->children.end() ? std::shared_ptr<Node>() : it->second;
  }

  // Whiteouts and opaque markers hide what the layers below put there.
  Status Hide(const Record& rec) {
    SR_ASSIGN_OR_RETURN(auto parts, SplitPath(rec.name));
    if (rec.type == NodeType::kOpaque) {
      SR_ASSIGN_OR_RETURN(auto dir, Find(rec.name));
      if (dir && dir->is_directory()) dir->directory->children.clear();
      return OkStatus();
    }
    if (parts.empty()) return DataLoss("a whiteout of the root directory");
    SR_ASSIGN_OR_RETURN(Directory * dir, Parent(parts, false));
    if (dir != nullptr) dir->children.erase(std::string(parts.back()));
    return OkStatus();
  }

  // `at`: where `rec` is in its layer index.
  Status Add(const Record& rec, const IndexSpan& at) {
    SR_ASSIGN_OR_RETURN(auto parts, SplitPath(rec.name));
    if (parts.empty()) {
      if (rec.type != NodeType::kDirectory) return DataLoss("the root is not a directory");
      root_->record = at;
      return OkStatus();
    }
    SR_ASSIGN_OR_RETURN(Directory * dir, Parent(parts, true));
    std::string name(parts.back());
    if (rec.type == NodeType::kHardLink) {
      SR_ASSIGN_OR_RETURN(auto target, Find(rec.target));
      if (!target || target->is_directory()) {
        return DataLoss("hard link " + rec.name + " to missing or directory '" + rec.target + "'");
      }
      dir->children.insert_or_assign(std::move(name), std::move(target));
      return OkStatus();
    }
    auto it = dir->children.find(name);
    if (rec.type == NodeType::kDirectory && it != dir->children.end() && it->second->is_directory()) {
      it->second->record = at;  // the newest attributes; an existing directory keeps its children
      return OkStatus();
    }
    auto node = rec.type == NodeType::kDirectory ? NewDirectory() : std::make_shared<Node>();
    node->record = at;
    dir->children.insert_or_assign(std::move(name), std::move(node));
    return OkStatus();
  }

 private:
  std::shared_ptr<Node> root_;
};

// Decodes a layer index's records as its chunks stream in (a record may span chunks), so that
// only the tree, not the index, is held: an index holds every file's small content inline.
// `each` also gets where the record starts in the index and its encoded length.
Status ForEachRecord(const Store& store, const StoreKey& key, const ObjectRef& index,
                     const std::function<Status(const Record&, std::uint64_t, std::uint32_t)>& each) {
  std::vector<std::uint8_t> pending;  // the start of a record the next chunk completes
  std::uint64_t pending_offset = 0;   // where `pending` starts in the index
  auto decode = [&](std::span<const std::uint8_t> chunk) -> Status {
    pending.insert(pending.end(), chunk.begin(), chunk.end());
    ByteReader r(pending);
    std::size_t used = 0;
    for (Record rec; DecodeRecord(r, rec); rec = Record{}) {
      const std::size_t start = used;
      used = pending.size() - r.remaining();
      SR_RETURN_IF_ERROR(each(rec, pending_offset + start, static_cast<std::uint32_t>(used - start)));
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(used));
    pending_offset += used;
    return OkStatus();
  };
  SR_RETURN_IF_ERROR(StreamObject(store, key, index, ObjectKind::kLayerIndex, decode));
  if (!pending.empty()) return DataLoss("malformed layer index");
  return OkStatus();
}

// Reads records back from the layer indexes while directories are written. Every read is
// checked chunk by chunk (DataObject), as the merge's passes checked each whole index. The last
// kCachedChunks chunks read stay decrypted: a directory's entries are mostly adjacent in its
// layer's tar, and the writer comes back to a parent's entries after each subdirectory.
class RecordReader {
 public:
  RecordReader(const Store& store, const StoreKey& key) : store_(store), key_(key) {}
  void AddLayer(const ObjectRef& index) { layers_.push_back({index, std::nullopt}); }

  // The record of `node`, which must still be of the kind the merge saw.
  Result<Record> Read(const Node& node) {
    if (!node.record) return ImplicitDirectoryRecord();
    const IndexSpan& at = *node.record;
    bytes_.clear();
    for (std::uint64_t pos = at.offset; pos < at.offset + at.length;) {
      SR_ASSIGN_OR_RETURN(std::span<const std::uint8_t> chunk, Chunk(at.layer, pos / kChunkSize));
      const std::size_t in_chunk = pos % kChunkSize;
      if (in_chunk >= chunk.size()) return DataLoss("a layer index record is past its end");
      const std::size_t n = std::min<std::uint64_t>(chunk.size() - in_chunk, at.offset + at.length - pos);
      bytes_.insert(bytes_.end(), chunk.begin() + in_chunk, chunk.begin() + in_chunk + n);
      pos += n;
    }
    ByteReader r(bytes_);
    Record rec;
    if (!DecodeRecord(r, rec) || r.remaining() != 0 ||
        (rec.type == NodeType::kDirectory) != node.is_directory())
      return DataLoss("a layer index record changed between two reads");
    return rec;
  }

 private:
  static constexpr std::size_t kCachedChunks = 16;
  struct Layer {
    ObjectRef index;
    std::optional<DataObject> object;  // opened on first use
  };
  struct CachedChunk {
    std::size_t layer = SIZE_MAX;
    std::uint64_t index = 0;
    std::uint64_t last_use = 0;
    std::vector<std::uint8_t> bytes;
  };

  Result<std::span<const std::uint8_t>> Chunk(std::size_t layer, std::uint64_t index) {
    CachedChunk* slot = nullptr;
    for (CachedChunk& c : cache_) {
      if (c.layer == layer && c.index == index) {
        c.last_use = ++uses_;
        return std::span<const std::uint8_t>(c.bytes);
      }
      if (slot == nullptr || c.last_use < slot->last_use) slot = &c;
    }
    if (cache_.size() < kCachedChunks) slot = &cache_.emplace_back();
    Layer& l = layers_.at(layer);
    if (!l.object) {
      SR_ASSIGN_OR_RETURN(DataObject object,
                          DataObject::Open(store_, key_, l.index, ObjectKind::kLayerIndex));
      l.object.emplace(std::move(object));
    }
    slot->layer = SIZE_MAX;  // until the read succeeds
    slot->bytes.resize(kChunkSize);
    SR_ASSIGN_OR_RETURN(std::size_t n, l.object->ReadAt(index * kChunkSize, slot->bytes));
    slot->bytes.resize(n);
    slot->layer = layer;
    slot->index = index;
    slot->last_use = ++uses_;
    return std::span<const std::uint8_t>(slot->bytes);
  }

  const Store& store_;
  const StoreKey& key_;
  std::vector<Layer> layers_;
  std::vector<CachedChunk> cache_;
  std::uint64_t uses_ = 0;
  std::vector<std::uint8_t> bytes_;  // the record being read
};

bool Hides(const Record& rec) {
  return rec.type == NodeType::kWhiteout || rec.type == NodeType::kOpaque;
}

// A layer's whiteouts apply to the layers below it only, wherever they sit in its tar: one pass
// over its index hides, a second adds (each pass checks the whole index again). `layer`: its
// position in the image.
Status ApplyLayer(const Store& store, const StoreKey& key, const ObjectRef& index, std::size_t layer,
                  Tree& tree) {
  SR_RETURN_IF_ERROR(ForEachRecord(store, key, index, [&](const Record& rec, std::uint64_t, std::uint32_t) {
    return Hides(rec) ? tree.Hide(rec) : OkStatus();
  }));
  return ForEachRecord(store, key, index,
                       [&](const Record& rec, std::uint64_t offset, std::uint32_t length) -> Status {
                         if (Hides(rec)) return OkStatus();
                         return tree.Add(rec, {layer, offset, length}).WithContext(rec.name);
                       });
}

void Number(Node& node, std::uint64_t& next_ino) {
  if (node.ino == 0) node.ino = next_ino++;
  ++node.links;
  if (!node.is_directory()) return;
  for (auto& [name, child] : node.directory->children) Number(*child, next_ino);
}

// Writes the directory objects bottom-up; each directory's ref lands in its `written`.
class DirectoryWriter {
 public:
  DirectoryWriter(const Store& store, const StoreKey& key, RecordReader& records)
      : writer_(store, key), records_(records) {}
  std::vector<Hash32>& written() { return written_; }

  Status Write(Node& node) {
    if (Interrupted()) return Cancelled("interrupted");
    Directory& dir = *node.directory;
    for (auto& [name, child] : dir.children) {
      if (child->is_directory()) SR_RETURN_IF_ERROR(Write(*child));
    }
    SR_RETURN_IF_ERROR(writer_.Begin(ObjectKind::kDirectory));
    ByteWriter w;
    w.U32(static_cast<std::uint32_t>(dir.children.size()));
    for (auto& [name, child] : dir.children) {
      SR_ASSIGN_OR_RETURN(Record rec, RecordOf(*child));
      rec.name = name;
      EncodeRecord(rec, w);
      if (w.bytes().size() >= kChunkSize) {
        SR_RETURN_IF_ERROR(writer_.Write(w.bytes()));
        w.bytes().clear();
      }
    }
    SR_RETURN_IF_ERROR(writer_.Write(w.bytes()));
    SR_ASSIGN_OR_RETURN(ObjectRef ref, writer_.Finish());
    written_.push_back(ref.name);
    dir.written = ref;
    return OkStatus();
  }

  // A node's record as its directory object holds it (a directory's once written).
  Result<Record> RecordOf(const Node& node) {
    SR_ASSIGN_OR_RETURN(Record rec, records_.Read(node));
    rec.name.clear();
    rec.ino = node.ino;
    rec.nlink = node.is_directory() ? 2 + Subdirectories(node) : node.links;
    if (node.is_directory()) rec.ref = node.directory->written;
    return rec;
  }

  Result<ObjectRef> WriteRoot(const ImageRoot& root) {
    SR_RETURN_IF_ERROR(writer_.Begin(ObjectKind::kImageRoot));
    SR_RETURN_IF_ERROR(writer_.Write(EncodeImageRoot(root)));
    SR_ASSIGN_OR_RETURN(ObjectRef ref, writer_.Finish());
    written_.push_back(ref.name);
    return ref;
  }

 private:
  static std::uint32_t Subdirectories(const Node& dir) {
    std::uint32_t n = 0;
    for (const auto& [name, child] : dir.directory->children) n += child->is_directory();
    return n;
  }

  ObjectWriter writer_;
  RecordReader& records_;
  std::vector<Hash32> written_;
};

}  // namespace

Result<RootHash> BuildImageRoot(const Store& store, const StoreKey& key, const ImageMetadata& image) {
  Tree tree;
  ImageRoot root;
  root.manifest_digest = image.manifest_digest;
  root.config_digest = image.config_digest;
  root.config_json = image.config_json;
  RecordReader records(store, key);
  for (const std::string& diff_id : image.diff_ids) {
    auto index = store.LayerIndex(key, diff_id);
    Status applied = index.ok() ? ApplyLayer(store, key, *index, root.layers.size(), tree) : index.status();
    SR_RETURN_IF_ERROR_CTX(applied, "flattening layer " + diff_id);
    root.layers.emplace_back(diff_id, *index);
    records.AddLayer(*index);
  }
  std::uint64_t next_ino = 1;
  Number(*tree.root(), next_ino);
  root.max_ino = next_ino - 1;

  DirectoryWriter dirs(store, key, records);
  auto cleanup = [&] {
    for (const Hash32& name : dirs.written()) store.RemoveObject(name);
  };
  Status s = dirs.Write(*tree.root());
  if (s.ok()) {
    auto root_record = dirs.RecordOf(*tree.root());
    s = root_record.status();
    if (s.ok()) root.root = std::move(root_record).value();
  }
  if (s.ok()) {
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
