#include "fusefs/sealed_tree.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <optional>
#include <unordered_map>

#include "base/log.h"
#include "base/thread_annotations.h"
#include "fusefs/src/image_root.h"
#include "fusefs/src/object.h"
#include "fusefs/src/records.h"

namespace sealroot::fusefs {
namespace {

// Data objects kept open for reads without an open handle (ReadInode): enough for every file
// being read at once, well inside the default limit of 1024 descriptors.
constexpr std::size_t kMaxOpenObjects = 256;

// A tamper check failed: one log line naming the path, and kDataLoss for the caller (EIO).
Status IntegrityFailure(const std::string& path, const Status& error) {
  if (error.code() != Code::kDataLoss) return error;
  SR_LOG(kError) << "integrity failure: " << path << ": " << error.message();
  return DataLoss(path + ": " + error.message());
}

class SealedTreeImpl final : public SealedTree {
 public:
  SealedTreeImpl(std::shared_ptr<const Store> store, std::shared_ptr<const StoreKey> key, ImageRoot root,
                 const SealedTreeOptions& options)
      : store_(std::move(store)),
        key_(std::move(key)),
        image_(std::move(root)),
        directory_cache_bytes_(options.directory_cache_bytes) {
    Inode& r = inodes_[kRootIno];
    r.path = "/";
    r.parent = kRootIno;
  }

  const std::string& config_json() const override { return image_.config_json; }
  const std::string& manifest_digest() const override { return image_.manifest_digest; }
  std::vector<std::string> diff_ids() const override {
    std::vector<std::string> ids;
    for (const auto& [id, ref] : image_.layers) ids.push_back(id);
    return ids;
  }
  std::uint64_t max_ino() const override { return image_.max_ino; }

  Result<Attr> Lookup(std::uint64_t parent, std::string_view name) override {
    SR_ASSIGN_OR_RETURN(DirView dir, Directory(parent));
    const EntryList& entries = *dir.entries;
    auto it = std::lower_bound(entries.begin(), entries.end(), name,
                               [](const Record& r, std::string_view n) { return r.name < n; });
    if (it == entries.end() || it->name != name) return NotFound("no such entry");
    MutexLock lock(mu_);
    auto [node, inserted] = inodes_.try_emplace(it->ino);
    if (inserted) {
      node->second.where = Location{dir.ref, static_cast<std::size_t>(it - entries.begin())};
      node->second.path = (dir.path == "/" ? "" : dir.path) + "/" + it->name;
      node->second.parent = parent;
    }
    ++node->second.lookups;
    return RecordAttr(*it);
  }

  void Forget(std::uint64_t ino, std::uint64_t count) override {
    MutexLock lock(mu_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end() || ino == kRootIno) return;
    it->second.lookups -= std::min(count, it->second.lookups);
    if (it->second.lookups != 0) return;
    if (it->second.file) open_lru_.erase(it->second.lru);
    inodes_.erase(it);
  }

  Result<Attr> GetAttr(std::uint64_t ino) override {
    SR_ASSIGN_OR_RETURN(NodeRecord node, RecordOf(ino));
    return RecordAttr(*node.rec);
  }

  Result<std::string> ReadLink(std::uint64_t ino) override {
    SR_ASSIGN_OR_RETURN(NodeRecord node, RecordOf(ino));
    if (node.rec->type != NodeType::kSymlink) return InvalidArgument("not a symlink");
    return node.rec->target;
  }

  Result<std::uint64_t> Open(std::uint64_t ino, int flags) override {
    if ((flags & O_ACCMODE) != O_RDONLY) return PermissionDenied("the sealed root is read-only");
    SR_ASSIGN_OR_RETURN(NodeRecord node, RecordOf(ino, /*with_path=*/true));
    if (node.rec->type != NodeType::kRegular) return InvalidArgument("not a regular file");
    auto file = std::make_shared<OpenFile>();
    file->path = std::move(node.path);
    if (node.rec->ref) {
      auto object = DataObject::Open(*store_, *key_, *node.rec->ref);
      if (!object.ok()) return IntegrityFailure(file->path, object.status());
      file->object.emplace(std::move(object).value());
    } else {
      file->inline_data = node.rec->inline_data;
    }
    MutexLock lock(mu_);
    std::uint64_t handle = next_handle_++;
    handles_.emplace(handle, std::move(file));
    return handle;
  }

  Result<std::size_t> Read(std::uint64_t handle, std::uint64_t offset, std::span<std::uint8_t> out) override {
    std::shared_ptr<const OpenFile> file;
    {
      MutexLock lock(mu_);
      auto it = handles_.find(handle);
      if (it == handles_.end()) return InvalidArgument("bad file handle");
      file = it->second;
    }
    if (!file->object) return CopyInline(file->inline_data, offset, out);
    auto n = file->object->ReadAt(offset, out);
    if (!n.ok()) return IntegrityFailure(file->path, n.status());
    return n;
  }

  bool reads_without_open() const override { return true; }

  // Read without Open: the inode's data object is opened on its first read and kept (up to
  // kMaxOpenObjects, least recently opened dropped first) until the kernel forgets the inode.
  Result<std::size_t> ReadInode(std::uint64_t ino, std::uint64_t offset,
                                std::span<std::uint8_t> out) override {
    std::shared_ptr<const OpenFile> file;
    {
      MutexLock lock(mu_);
      SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
      file = node->file;
    }
    if (!file) {
      SR_ASSIGN_OR_RETURN(NodeRecord node, RecordOf(ino));
      if (node.rec->type != NodeType::kRegular) return InvalidArgument("not a regular file");
      if (!node.rec->ref) return CopyInline(node.rec->inline_data, offset, out);
      auto opened = std::make_shared<OpenFile>();
      opened->path = PathOf(ino);
      auto object = DataObject::Open(*store_, *key_, *node.rec->ref);
      if (!object.ok()) return IntegrityFailure(opened->path, object.status());
      opened->object.emplace(std::move(object).value());
      file = opened;
      MutexLock lock(mu_);
      auto it = inodes_.find(ino);
      if (it != inodes_.end() && !it->second.file) {
        it->second.file = file;
        it->second.lru = open_lru_.insert(open_lru_.end(), ino);
        if (open_lru_.size() > kMaxOpenObjects) {
          inodes_.at(open_lru_.front()).file.reset();
          open_lru_.pop_front();
        }
      }
    }
    auto n = file->object->ReadAt(offset, out);
    if (!n.ok()) return IntegrityFailure(file->path, n.status());
    return n;
  }

  void Release(std::uint64_t handle) override {
    MutexLock lock(mu_);
    handles_.erase(handle);
  }

  Status ReadDir(std::uint64_t ino, std::uint64_t offset, const DirFiller& add) override {
    SR_ASSIGN_OR_RETURN(DirView dir, Directory(ino));
    if (offset == 0 && !add({".", ino, S_IFDIR}, 1)) return OkStatus();
    if (offset <= 1 && !add({"..", dir.parent, S_IFDIR}, 2)) return OkStatus();
    for (std::uint64_t i = std::max<std::uint64_t>(offset, 2) - 2; i < dir.entries->size(); ++i) {
      const Record& e = (*dir.entries)[i];
      if (!add({e.name, e.ino, RecordAttr(e).mode}, i + 3)) break;
    }
    return OkStatus();
  }

  Result<std::string> GetXattr(std::uint64_t ino, std::string_view name) override {
    SR_ASSIGN_OR_RETURN(NodeRecord node, RecordOf(ino));
    for (const auto& [n, v] : node.rec->xattrs) {
      if (n == name) return v;
    }
    return NotFound("no such attribute");
  }

  Result<std::vector<std::string>> ListXattr(std::uint64_t ino) override {
    SR_ASSIGN_OR_RETURN(NodeRecord node, RecordOf(ino));
    std::vector<std::string> names;
    for (const auto& [n, v] : node.rec->xattrs) names.push_back(n);
    return names;
  }

  FsStats StatFs() override { return FsStats{.blocks = 0, .files = image_.max_ino}; }

 private:
  using EntryList = std::vector<Record>;
  struct OpenFile {
    std::string path;
    std::string inline_data;
    std::optional<DataObject> object;
  };
  // Where an inode's record is: entry `index` of the directory object `dir`.
  struct Location {
    ObjectRef dir;
    std::size_t index = 0;
  };
  struct Inode {
    std::optional<Location> where;  // none for the root, whose record is the image root's
    std::string path;               // the first path it was found under (for log lines)
    std::uint64_t parent = kRootIno;
    std::uint64_t lookups = 0;
    std::shared_ptr<const OpenFile> file;    // regular files read by ReadInode
    std::list<std::uint64_t>::iterator lru;  // its place in open_lru_ while `file` is set
  };
  // An inode's record, and the decoded directory that holds it (none for the root).
  struct NodeRecord {
    std::shared_ptr<const EntryList> holder;
    const Record* rec = nullptr;
    std::string path;
    std::uint64_t parent = kRootIno;
  };
  struct DirView {
    std::shared_ptr<const EntryList> entries;
    ObjectRef ref;
    std::string path;
    std::uint64_t parent = kRootIno;
  };
  // Object names are content addresses: their first bytes are already uniformly spread.
  struct ObjectNameHash {
    std::size_t operator()(const Hash32& name) const {
      std::size_t h;
      std::memcpy(&h, name.data(), sizeof h);
      return h;
    }
  };
  struct CachedDirectory {
    std::shared_ptr<const EntryList> entries;
    std::size_t bytes = 0;
    std::list<Hash32>::iterator lru;
  };

  static Result<std::size_t> CopyInline(const std::string& data, std::uint64_t offset,
                                        std::span<std::uint8_t> out) {
    if (offset >= data.size()) return std::size_t{0};
    std::size_t n = std::min<std::size_t>(out.size(), data.size() - offset);
    std::memcpy(out.data(), data.data() + offset, n);
    return n;
  }

  Result<const Inode*> Find(std::uint64_t ino) SR_REQUIRES(mu_) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return NotFound("unknown inode " + std::to_string(ino));
    return &it->second;
  }

  // Inodes hold where their record is, not the record: the kernel may hold every inode of a
  // large tree, and a record carries up to kInlineMax bytes of content. The path is copied only
  // when asked for (Open, directories for their entries' paths) or needed for a read's error:
  // GetAttr and reads, the most frequent callers, allocate nothing.
  Result<NodeRecord> RecordOf(std::uint64_t ino, bool with_path = false) {
    NodeRecord out;
    Location where;
    {
      MutexLock lock(mu_);
      SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
      out.parent = node->parent;
      if (with_path) out.path = node->path;
      if (!node->where) {
        out.rec = &image_.root;
        return out;
      }
      where = *node->where;
      out.holder = CachedEntries(where.dir.name);
      if (!out.holder && !with_path) out.path = node->path;
    }
    if (!out.holder) {
      const std::string dir_path = out.path.substr(0, std::max<std::size_t>(out.path.rfind('/'), 1));
      SR_ASSIGN_OR_RETURN(out.holder, DirectoryEntries(where.dir, dir_path));
    }
    if (where.index >= out.holder->size() || (*out.holder)[where.index].ino != ino)
      return IntegrityFailure(PathOf(ino), DataLoss("its entry moved in its directory object"));
    out.rec = &(*out.holder)[where.index];
    return out;
  }

  Result<DirView> Directory(std::uint64_t ino) {
    SR_ASSIGN_OR_RETURN(NodeRecord node, RecordOf(ino, /*with_path=*/true));
    if (node.rec->type != NodeType::kDirectory || !node.rec->ref)
      return FailedPrecondition("not a directory");
    DirView view{
        .entries = nullptr, .ref = *node.rec->ref, .path = std::move(node.path), .parent = node.parent};
    SR_ASSIGN_OR_RETURN(view.entries, DirectoryEntries(view.ref, view.path));
    return view;
  }

  std::string PathOf(std::uint64_t ino) {
    MutexLock lock(mu_);
    auto it = inodes_.find(ino);
    return it == inodes_.end() ? "inode " + std::to_string(ino) : it->second.path;
  }

  // A cached directory's entries (marked as used), or null.
  std::shared_ptr<const EntryList> CachedEntries(const Hash32& name) SR_REQUIRES(mu_) {
    auto it = directories_.find(name);
    if (it == directories_.end()) return nullptr;
    directory_lru_.splice(directory_lru_.end(), directory_lru_, it->second.lru);
    return it->second.entries;
  }

  // A directory object's verified entries: from the cache, or read, verified, decoded and
  // cached; past directory_cache_bytes_ the least recently used are dropped (and read again if
  // needed: lookups and the records of the inodes the kernel holds come from here).
  Result<std::shared_ptr<const EntryList>> DirectoryEntries(const ObjectRef& ref, const std::string& path) {
    {
      MutexLock lock(mu_);
      if (auto cached = CachedEntries(ref.name)) return cached;
    }
    auto bytes = ReadWholeObject(*store_, *key_, ref, ObjectKind::kDirectory);
    if (!bytes.ok()) return IntegrityFailure(path, bytes.status());
    auto decoded = DecodeDirectory(*bytes, image_.max_ino);
    if (!decoded.ok()) return IntegrityFailure(path, decoded.status());
    auto entries = std::make_shared<const EntryList>(std::move(decoded).value());
    MutexLock lock(mu_);
    auto [it, inserted] = directories_.try_emplace(ref.name);
    if (!inserted) return it->second.entries;  // another thread read it meanwhile
    it->second = {entries, MemoryOf(*entries), directory_lru_.insert(directory_lru_.end(), ref.name)};
    directory_bytes_ += it->second.bytes;
    while (directory_bytes_ > directory_cache_bytes_ && directory_lru_.size() > 1) {
      auto oldest = directories_.find(directory_lru_.front());
      directory_bytes_ -= oldest->second.bytes;
      directories_.erase(oldest);
      directory_lru_.pop_front();
    }
    return entries;
  }

  static std::size_t MemoryOf(const EntryList& entries) {
    std::size_t bytes = entries.capacity() * sizeof(Record);
    for (const Record& r : entries) {
      bytes += r.name.size() + r.target.size() + r.inline_data.size();
      for (const auto& [n, v] : r.xattrs) bytes += sizeof(n) + sizeof(v) + n.size() + v.size();
    }
    return bytes;
  }

  std::shared_ptr<const Store> store_;
  std::shared_ptr<const StoreKey> key_;
  const ImageRoot image_;
  const std::size_t directory_cache_bytes_;
  Mutex mu_;
  std::unordered_map<std::uint64_t, Inode> inodes_ SR_GUARDED_BY(mu_);
  std::unordered_map<std::uint64_t, std::shared_ptr<const OpenFile>> handles_ SR_GUARDED_BY(mu_);
  std::uint64_t next_handle_ SR_GUARDED_BY(mu_) = 1;
  std::list<std::uint64_t> open_lru_ SR_GUARDED_BY(mu_);  // inodes with a `file`, oldest first
  std::unordered_map<Hash32, CachedDirectory, ObjectNameHash> directories_ SR_GUARDED_BY(mu_);
  std::list<Hash32> directory_lru_ SR_GUARDED_BY(mu_);  // directories_' keys, oldest first
  std::size_t directory_bytes_ SR_GUARDED_BY(mu_) = 0;
};

}  // namespace

Result<std::unique_ptr<SealedTree>> SealedTree::OpenRoot(std::shared_ptr<const Store> store,
                                                         std::shared_ptr<const StoreKey> key,
                                                         const RootHash& root,
                                                         const SealedTreeOptions& options) {
  const std::string ctx = "opening root " + HashHex(root) + " in store " + store->dir();
  SR_RETURN_IF_ERROR_CTX(store->CheckKey(*key, false), ctx);
  if (!store->HasRoot(root)) {
    // Readers do not trust roots/ (it is a gc hint), but an absent root object is the common
    // case of a wrong hash or a rolled-back store: say so plainly.
    auto probe = store->OpenObject(root);
    if (!probe.ok())
      return NotFound(ctx + ": no such root in this store (wrong root hash, or a rolled-back store)");
  }
  auto bytes = ReadRootObject(*store, *key, root);
  if (!bytes.ok()) return bytes.status().WithContext(ctx);
  auto image = DecodeImageRoot(*bytes);
  if (!image.ok()) return image.status().WithContext(ctx);
  return std::unique_ptr<SealedTree>(
      std::make_unique<SealedTreeImpl>(std::move(store), std::move(key), std::move(image).value(), options));
}

}  // namespace sealroot::fusefs
