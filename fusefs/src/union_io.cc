// UnionFs: open files, data, attributes and xattrs (design/sealfs-upper.md "Copy-up").
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>

#include "base/log.h"
#include "fusefs/src/union_fs.h"

namespace sealroot::fusefs {
namespace {

constexpr std::size_t kXattrNameMax = 255;
constexpr std::size_t kXattrValueMax = 64 * 1024;
constexpr std::size_t kCopyPiece = 1 << 20;

bool Writes(int flags) {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
}

}  // namespace

Result<std::shared_ptr<UpperFile>> UnionFsImpl::NewUpperFile() {
  const std::uint64_t id = next_file_id_++;
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(id));
  UniqueFd fd;
  if (data_fd_) {
    Result<UniqueFd> created = env_->OpenAt(data_fd_.get(), name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (!created.ok()) return created.status().WithContext("creating upper data file " + std::string(name));
    fd = std::move(*created);
  } else {
    fd.Reset(memfd_create("sealfs-upper", MFD_CLOEXEC));
    if (!fd) return ErrnoStatus("creating an in-memory upper file", errno);
  }
  SR_ASSIGN_OR_RETURN(std::unique_ptr<UpperFile> file,
                      UpperFile::Open(key_, *env_, std::move(fd),
                                      UpperFileState{.id = id, .size = 0, .epoch_salts = {}, .blocks = {}},
                                      "upper file " + std::string(name)));
  return std::shared_ptr<UpperFile>(std::move(file));
}

// Streams the lower file's verified bytes into a new upper file. Holds mu_ throughout: a
// copy-up is one-off per file, and nothing may see the node half copied.
Status UnionFsImpl::CopyUp(Node& node) {
  if (node.data || !S_ISREG(node.mode)) return OkStatus();
  const std::string ctx = "copying up " + node.lower_path;
  SR_RETURN_IF_ERROR_CTX(ResolveLower(node), ctx);
  SR_ASSIGN_OR_RETURN(std::shared_ptr<UpperFile> data, NewUpperFile());
  SR_ASSIGN_OR_RETURN(std::uint64_t handle, lower_->Open(node.ino, O_RDONLY));
  std::vector<std::uint8_t> buf(kCopyPiece);
  std::uint64_t offset = 0;
  Status status;
  while (status.ok()) {
    auto n = lower_->Read(handle, offset, buf);
    if (!n.ok()) {
      status = n.status();
    } else if (*n == 0) {
      break;
    } else if (auto w = data->Write(offset, {buf.data(), *n}); !w.ok()) {
      status = w.status();
    } else {
      offset += *n;
    }
  }
  lower_->Release(handle);
  if (!status.ok()) return status.WithContext(ctx);
  node.data = std::move(data);
  MarkChanged(node);
  return OkStatus();
}

Status UnionFsImpl::RefuseWhilePrefetching(std::uint64_t ino) {
  if (!prefetching_.contains(ino)) return OkStatus();
  return Status(Code::kAborted, "the file is being read ahead into the page cache: repeat once it is stored");
}

// A lower file no writer has opened cannot change while it is marked in prefetching_: an open
// for writing or a truncate is turned back until the mark goes, and once either has copied the
// file up the file is no longer a prefetch's.
Status UnionFsImpl::Prefetch(std::uint64_t ino, std::span<std::uint8_t> buffer, const PageStore& store) {
  {
    MutexLock lock(mu_);
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) return OkStatus();
    Node& node = *it->second;
    if (!S_ISREG(node.mode) || !node.from_lower || node.data) return OkStatus();
    SR_RETURN_IF_ERROR(ResolveLower(node));
    ++prefetching_[ino];
  }
  auto n = lower_->ReadInode(ino, 0, buffer);
  if (n.ok() && *n > 0) store(buffer.first(*n));
  MutexLock lock(mu_);
  if (--prefetching_[ino] == 0) prefetching_.erase(ino);
  return n.status();
}

Result<std::uint64_t> UnionFsImpl::Open(std::uint64_t ino, int flags) {
  MutexLock lock(mu_);
  if (Writes(flags)) SR_RETURN_IF_ERROR(RefuseWhilePrefetching(ino));
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  if (!S_ISREG(node->mode))
    return Status::FromErrno(S_ISDIR(node->mode) ? EISDIR : EINVAL, "not a regular file");
  if ((flags & O_TRUNC) && !node->data) {
    // Nothing of the lower content survives: start an empty upper file instead of copying.
    SR_ASSIGN_OR_RETURN(node->data, NewUpperFile());
    MarkChanged(*node);
  }
  if (Writes(flags)) SR_RETURN_IF_ERROR(CopyUp(*node));
  if ((flags & O_TRUNC) && node->data->size() != 0) {
    SR_RETURN_IF_ERROR(node->data->Truncate(0));
    node->mtime = node->ctime = NowTime();
  }
  // A lower file is read by inode: the lower keeps its data object open across opens, and an
  // open whose bytes the page cache already holds (read ahead) costs the lower nothing.
  SR_RETURN_IF_ERROR(ResolveLower(*node));
  ++node->opens;
  const std::uint64_t id = next_handle_++;
  handles_.emplace(id, ino);
  return id;
}

Result<std::size_t> UnionFsImpl::Read(std::uint64_t handle, std::uint64_t offset,
                                      std::span<std::uint8_t> out) {
  std::shared_ptr<UpperFile> data;
  std::uint64_t ino = 0;
  {
    MutexLock lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return Status::FromErrno(EBADF, "bad file handle");
    ino = it->second;
    SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
    data = node->data;  // a copy-up after open: read the upper
  }
  if (!data) return lower_->ReadInode(ino, offset, out);  // the lower logs its own integrity failures
  auto n = data->Read(offset, out);
  if (!n.ok() && n.status().code() == Code::kDataLoss) {
    SR_LOG(kError) << "integrity failure: " << n.status().message();
  }
  return n;
}

void UnionFsImpl::Release(std::uint64_t handle) {
  MutexLock lock(mu_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) return;
  const std::uint64_t ino = it->second;
  handles_.erase(it);
  if (auto node = nodes_.find(ino); node != nodes_.end()) {
    --node->second->opens;
    MaybeErase(ino);
  }
}

Result<Created> UnionFsImpl::Create(const Caller& caller, std::uint64_t parent, std::string_view name,
                                    std::uint32_t mode, int flags) {
  (void)flags;  // a new file: O_TRUNC has nothing to do, the kernel checked O_EXCL
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * dir, FindDir(parent));
  SR_ASSIGN_OR_RETURN(std::shared_ptr<UpperFile> data, NewUpperFile());
  SR_ASSIGN_OR_RETURN(Node * node, NewChild(caller, *dir, name, S_IFREG | (mode & 07777)));
  node->data = std::move(data);
  ++node->opens;
  const std::uint64_t id = next_handle_++;
  handles_.emplace(id, node->ino);
  return Created{StatOf(*node), id};
}

Result<std::size_t> UnionFsImpl::Write(std::uint64_t handle, std::uint64_t offset,
                                       std::span<const std::uint8_t> data) {
  std::shared_ptr<UpperFile> file;
  std::uint64_t ino = 0;
  {
    MutexLock lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return Status::FromErrno(EBADF, "bad file handle");
    ino = it->second;
    SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
    if (!node->data) return Status::FromErrno(EBADF, "file not open for writing");
    file = node->data;
  }
  if (offset + data.size() < offset || offset + data.size() > (std::uint64_t{1} << 50))
    return Status::FromErrno(EFBIG, "file too large");
  auto n = file->Write(offset, data);
  if (!n.ok()) return n;
  MutexLock lock(mu_);
  if (auto it = nodes_.find(ino); it != nodes_.end()) {
    it->second->mtime = it->second->ctime = NowTime();
    MarkChanged(*it->second);
  }
  return n;
}

Status UnionFsImpl::Fsync(std::uint64_t handle, bool datasync) {
  (void)datasync;  // the state holds the tags of the data: both are always synced together
  std::shared_ptr<UpperFile> file;
  {
    MutexLock lock(mu_);
    if (auto it = handles_.find(handle); it != handles_.end()) {
      if (auto node = nodes_.find(it->second); node != nodes_.end()) file = node->second->data;
    }
  }
  if (file) SR_RETURN_IF_ERROR(file->Sync());
  if (!dir_fd_) return OkStatus();
  return Commit().status();
}

Result<Stat> UnionFsImpl::SetAttr(std::uint64_t ino, const SetAttrRequest& r) {
  MutexLock lock(mu_);
  if (r.size) SR_RETURN_IF_ERROR(RefuseWhilePrefetching(ino));
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  const Timespec now = NowTime();
  if (r.size) {
    if (S_ISDIR(node->mode)) return Status::FromErrno(EISDIR, "is a directory");
    if (!S_ISREG(node->mode)) return Status::FromErrno(EINVAL, "not a regular file");
    if (*r.size > (std::uint64_t{1} << 50)) return Status::FromErrno(EFBIG, "file too large");
    SR_RETURN_IF_ERROR(CopyUp(*node));
    SR_RETURN_IF_ERROR(node->data->Truncate(*r.size));
    node->mtime = now;
  }
  if (r.mode) node->mode = (node->mode & S_IFMT) | (*r.mode & 07777);
  if (r.uid) node->uid = *r.uid;
  if (r.gid) node->gid = *r.gid;
  if (r.atime) node->atime = *r.atime;
  if (r.mtime) node->mtime = *r.mtime;
  node->ctime = now;
  MarkChanged(*node);
  return StatOf(*node);
}

Result<std::string> UnionFsImpl::GetXattr(std::uint64_t ino, std::string_view name) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  auto it = node->xattrs.find(std::string(name));
  if (it == node->xattrs.end()) return Status::FromErrno(ENODATA, "no such attribute");
  return it->second;
}

Result<std::vector<std::string>> UnionFsImpl::ListXattr(std::uint64_t ino) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  std::vector<std::string> names;
  for (const auto& [name, value] : node->xattrs) names.push_back(name);
  return names;
}

Status UnionFsImpl::SetXattr(std::uint64_t ino, std::string_view name, std::string_view value, int flags) {
  if (name.empty() || name.size() > kXattrNameMax) return Status::FromErrno(ERANGE, "bad attribute name");
  if (value.size() > kXattrValueMax) return Status::FromErrno(E2BIG, "attribute value too large");
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  const std::string key(name);
  const bool exists = node->xattrs.contains(key);
  if ((flags & XATTR_CREATE) && exists) return Status::FromErrno(EEXIST, "attribute exists");
  if ((flags & XATTR_REPLACE) && !exists) return Status::FromErrno(ENODATA, "no such attribute");
  node->xattrs[key] = std::string(value);
  node->ctime = NowTime();
  MarkChanged(*node);
  return OkStatus();
}

Status UnionFsImpl::RemoveXattr(std::uint64_t ino, std::string_view name) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  if (node->xattrs.erase(std::string(name)) == 0) return Status::FromErrno(ENODATA, "no such attribute");
  node->ctime = NowTime();
  MarkChanged(*node);
  return OkStatus();
}

}  // namespace sealroot::fusefs
