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
  SealedTreeImpl(std::shared_ptr<const Store> store, std::shared_ptr<const StoreKey> key, ImageRoot root)
      : store_(std::move(store)), key_(std::move(key)), image_(std::move(root)) {
    Inode& r = inodes_[kRootIno];
    r.rec = image_.root;
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
    auto it = std::lower_bound(dir.entries->begin(), dir.entries->end(), name,
                               [](const Record& r, std::string_view n) { return r.name < n; });
    if (it == dir.entries->end() || it->name != name) return NotFound("no such entry");
    MutexLock lock(mu_);
    auto [node, inserted] = inodes_.try_emplace(it->ino);
    if (inserted) {
      node->second.rec = *it;
      node->second.path = (dir.path == "/" ? "" : dir.path) + "/" + it->name;
      node->second.parent = parent;
    }
    ++node->second.lookups;
    return RecordAttr(node->second.rec);
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
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
    return RecordAttr(node->rec);
  }

  Result<std::string> ReadLink(std::uint64_t ino) override {
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
    if (node->rec.type != NodeType::kSymlink) return InvalidArgument("not a symlink");
    return node->rec.target;
  }

  Result<std::uint64_t> Open(std::uint64_t ino, int flags) override {
    if ((flags & O_ACCMODE) != O_RDONLY) return PermissionDenied("the sealed root is read-only");
    auto file = std::make_shared<OpenFile>();
    std::optional<ObjectRef> ref;
    {
      MutexLock lock(mu_);
      SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
      if (node->rec.type != NodeType::kRegular) return InvalidArgument("not a regular file");
      file->path = node->path;
      file->inline_data = node->rec.inline_data;
      ref = node->rec.ref;
    }
    if (ref) {
      auto object = DataObject::Open(*store_, *key_, *ref);
      if (!object.ok()) return IntegrityFailure(file->path, object.status());
      file->object.emplace(std::move(object).value());
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
    if (!file->object) {
      if (offset >= file->inline_data.size()) return std::size_t{0};
      std::size_t n = std::min<std::size_t>(out.size(), file->inline_data.size() - offset);
      std::memcpy(out.data(), file->inline_data.data() + offset, n);
      return n;
    }
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
    std::string path;
    ObjectRef ref;
    {
      MutexLock lock(mu_);
      SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
      if (node->rec.type != NodeType::kRegular) return InvalidArgument("not a regular file");
      if (!node->rec.ref) {
        const std::string& data = node->rec.inline_data;
        if (offset >= data.size()) return std::size_t{0};
        std::size_t n = std::min<std::size_t>(out.size(), data.size() - offset);
        std::memcpy(out.data(), data.data() + offset, n);
        return n;
      }
      file = node->file;
      path = node->path;
      ref = *node->rec.ref;
    }
    if (!file) {
      auto object = DataObject::Open(*store_, *key_, ref);
      if (!object.ok()) return IntegrityFailure(path, object.status());
      auto opened = std::make_shared<OpenFile>();
      opened->path = std::move(path);
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
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
    for (const auto& [n, v] : node->rec.xattrs) {
      if (n == name) return v;
    }
    return NotFound("no such attribute");
  }

  Result<std::vector<std::string>> ListXattr(std::uint64_t ino) override {
    MutexLock lock(mu_);
    SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
    std::vector<std::string> names;
    for (const auto& [n, v] : node->rec.xattrs) names.push_back(n);
    return names;
  }

  FsStats StatFs() override { return FsStats{.blocks = 0, .files = image_.max_ino}; }

 private:
  using Entries = std::vector<Record>;
  struct OpenFile {
    std::string path;
    std::string inline_data;
    std::optional<DataObject> object;
  };
  struct Inode {
    Record rec;
    std::string path;  // the first path it was found under (for log lines)
    std::uint64_t parent = kRootIno;
    std::uint64_t lookups = 0;
    std::shared_ptr<const Entries> entries;  // directories, once read
    std::shared_ptr<const OpenFile> file;    // regular files read by ReadInode
    std::list<std::uint64_t>::iterator lru;  // its place in open_lru_ while `file` is set
  };
  struct DirView {
    std::shared_ptr<const Entries> entries;
    std::string path;
    std::uint64_t parent = kRootIno;
  };

  Result<const Inode*> Find(std::uint64_t ino) SR_REQUIRES(mu_) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return NotFound("unknown inode " + std::to_string(ino));
    return &it->second;
  }

  // A directory's verified entries, read on first use and kept while the kernel holds the inode.
  Result<DirView> Directory(std::uint64_t ino) {
    DirView view;
    ObjectRef ref;
    {
      MutexLock lock(mu_);
      SR_ASSIGN_OR_RETURN(const Inode* node, Find(ino));
      if (node->rec.type != NodeType::kDirectory || !node->rec.ref)
        return FailedPrecondition("not a directory");
      view.path = node->path;
      view.parent = node->parent;
      view.entries = node->entries;
      ref = *node->rec.ref;
    }
    if (view.entries) return view;
    auto bytes = ReadWholeObject(*store_, *key_, ref, ObjectKind::kDirectory);
    if (!bytes.ok()) return IntegrityFailure(view.path, bytes.status());
    auto entries = DecodeDirectory(*bytes, image_.max_ino);
    if (!entries.ok()) return IntegrityFailure(view.path, entries.status());
    view.entries = std::make_shared<const Entries>(std::move(entries).value());
    MutexLock lock(mu_);
    if (auto it = inodes_.find(ino); it != inodes_.end()) it->second.entries = view.entries;
    return view;
  }

  std::shared_ptr<const Store> store_;
  std::shared_ptr<const StoreKey> key_;
  const ImageRoot image_;
  Mutex mu_;
  std::unordered_map<std::uint64_t, Inode> inodes_ SR_GUARDED_BY(mu_);
  std::unordered_map<std::uint64_t, std::shared_ptr<const OpenFile>> handles_ SR_GUARDED_BY(mu_);
  std::uint64_t next_handle_ SR_GUARDED_BY(mu_) = 1;
  std::list<std::uint64_t> open_lru_ SR_GUARDED_BY(mu_);  // inodes with a `file`, oldest first
};

}  // namespace

Result<std::unique_ptr<SealedTree>> SealedTree::OpenRoot(std::shared_ptr<const Store> store,
                                                         std::shared_ptr<const StoreKey> key,
                                                         const RootHash& root) {
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
      std::make_unique<SealedTreeImpl>(std::move(store), std::move(key), std::move(image).value()));
}

}  // namespace sealroot::fusefs
