// UnionFs: lookups, listings and the namespace operations (design/sealfs-upper.md "Union").
#include "fusefs/src/union_fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

namespace sealroot::fusefs {
namespace {

constexpr std::size_t kNameMax = 255;

bool IsDir(const Node& n) {
  return S_ISDIR(n.mode);
}

Status CheckName(std::string_view name) {
  if (name.size() > kNameMax) return Status::FromErrno(ENAMETOOLONG, "name too long");
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
    return Status::FromErrno(EINVAL, "invalid name");
  return OkStatus();
}

}  // namespace

Timespec NowTime() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<std::uint32_t>(ts.tv_nsec)};
}

Result<Node*> UnionFsImpl::Find(std::uint64_t ino) {
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return Status::FromErrno(ESTALE, "unknown inode " + std::to_string(ino));
  return it->second.get();
}

Result<Node*> UnionFsImpl::FindDir(std::uint64_t ino) {
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  if (!IsDir(*node)) return Status::FromErrno(ENOTDIR, "not a directory");
  SR_RETURN_IF_ERROR(LoadListing(*node));
  return node;
}

Result<Node*> UnionFsImpl::FindDirToRead(std::uint64_t ino) {
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  if (!IsDir(*node)) return Status::FromErrno(ENOTDIR, "not a directory");
  if (ListedByLower(*node)) SR_RETURN_IF_ERROR(ResolveLower(*node));
  return node;
}

Result<Node*> UnionFsImpl::LowerChild(Node& dir, std::string_view name) {
  SR_ASSIGN_OR_RETURN(Stat stat, lower_->LookupStat(dir.ino, name));
  Node& child = AdoptLower(stat, dir.lower_path + "/" + std::string(name));
  if (IsDir(child)) child.parent = dir.ino;
  return &child;
}

// The lower only knows inodes it has looked up: walk the node's lower path once per mount.
Status UnionFsImpl::ResolveLower(Node& node) {
  if (node.lower_resolved || !node.from_lower) return OkStatus();
  std::uint64_t ino = kRootIno;
  std::size_t start = 1;
  while (start <= node.lower_path.size()) {
    std::size_t slash = node.lower_path.find('/', start);
    if (slash == std::string::npos) slash = node.lower_path.size();
    auto attr = lower_->Lookup(ino, std::string_view(node.lower_path).substr(start, slash - start));
    if (!attr.ok()) return attr.status().WithContext("resolving lower " + node.lower_path);
    ino = attr->ino;
    start = slash + 1;
  }
  if (ino != node.ino) return DataLoss("lower " + node.lower_path + " is not the inode the upper recorded");
  node.lower_resolved = true;
  return OkStatus();
}

Node& UnionFsImpl::AdoptLower(const Stat& stat, const std::string& path) {
  auto [it, inserted] = nodes_.try_emplace(stat.attr.ino);
  if (!inserted) {
    // Known already (a hard link, or restored from the upper state): the upper's view wins.
    it->second->lower_resolved = it->second->from_lower;
    return *it->second;
  }
  it->second = std::make_unique<Node>();
  Node& n = *it->second;
  const Attr& a = stat.attr;
  n.ino = a.ino;
  n.mode = a.mode;
  n.uid = a.uid;
  n.gid = a.gid;
  n.nlink = a.nlink;
  n.rdev = a.rdev;
  n.atime = stat.atime;
  n.mtime = Timespec{a.mtime_sec, a.mtime_nsec};
  n.ctime = stat.ctime;
  n.from_lower = true;
  n.lower_resolved = true;
  n.lower_path = path;
  n.lower_size = a.size;
  if (S_ISLNK(a.mode)) {
    if (auto target = lower_->ReadLink(a.ino); target.ok()) n.target = *target;
  }
  if (auto names = lower_->ListXattr(a.ino); names.ok()) {
    for (const std::string& name : *names) {
      if (auto value = lower_->GetXattr(a.ino, name); value.ok()) n.xattrs[name] = *value;
    }
  }
  return n;
}

Status UnionFsImpl::LoadListing(Node& dir) {
  if (dir.listing) return OkStatus();
  dir.listing = std::make_unique<Listing>();
  if (!dir.from_lower) return OkStatus();
  auto fail = [&](const Status& s) {
    dir.listing.reset();
    return s.WithContext("listing lower " + (dir.lower_path.empty() ? "/" : dir.lower_path));
  };
  if (Status s = ResolveLower(dir); !s.ok()) return fail(s);
  // In the lower's order, so each entry's sequence number is its index + 1 and its readdir
  // offset the one the lower gave it while the listing was still read there (ReadDir).
  std::vector<std::string> names;
  Status s = lower_->ReadDir(dir.ino, 0, [&](const DirEntry& e, std::uint64_t) {
    if (e.name != "." && e.name != "..") names.emplace_back(e.name);
    return true;
  });
  if (!s.ok()) return fail(s);
  for (const std::string& name : names) {
    auto child = LowerChild(dir, name);
    if (!child.ok()) return fail(child.status());
    dir.listing->Add(name, (*child)->ino);
  }
  dir.listing->changed.clear();  // the lower's listing: nothing to persist until it changes
  return OkStatus();
}

Stat UnionFsImpl::StatOf(const Node& n) const {
  Stat s;
  Attr& a = s.attr;
  a.ino = n.ino;
  a.mode = n.mode;
  a.nlink = n.nlink;
  a.uid = n.uid;
  a.gid = n.gid;
  a.rdev = n.rdev;
  if (n.data) {
    a.size = n.data->size();
    s.allocated = n.data->allocated();
  } else if (S_ISLNK(n.mode)) {
    a.size = n.target.size();
  } else if (IsDir(n) && !n.from_lower) {
    a.size = 4096;
  } else {
    a.size = n.lower_size;
  }
  a.mtime_sec = n.mtime.sec;
  a.mtime_nsec = n.mtime.nsec;
  s.atime = n.atime;
  s.ctime = n.ctime;
  return s;
}

Result<Stat> UnionFsImpl::LookupStat(std::uint64_t parent, std::string_view name) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * dir, FindDirToRead(parent));
  if (name.size() > kNameMax) return Status::FromErrno(ENAMETOOLONG, "name too long");
  Node* child = nullptr;
  if (ListedByLower(*dir)) {
    SR_ASSIGN_OR_RETURN(child, LowerChild(*dir, name));
  } else {
    SR_RETURN_IF_ERROR(LoadListing(*dir));
    auto it = dir->listing->by_name.find(std::string(name));
    if (it == dir->listing->by_name.end()) return Status::FromErrno(ENOENT, "no such entry");
    SR_ASSIGN_OR_RETURN(child, Find(it->second.first));
  }
  ++child->lookups;
  return StatOf(*child);
}

Result<Attr> UnionFsImpl::Lookup(std::uint64_t parent, std::string_view name) {
  SR_ASSIGN_OR_RETURN(Stat s, LookupStat(parent, name));
  return s.attr;
}

void UnionFsImpl::Forget(std::uint64_t ino, std::uint64_t count) {
  MutexLock lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  it->second->lookups -= std::min(count, it->second->lookups);
  MaybeErase(ino);
}

Result<Stat> UnionFsImpl::GetStat(std::uint64_t ino) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  return StatOf(*node);
}

Result<Attr> UnionFsImpl::GetAttr(std::uint64_t ino) {
  SR_ASSIGN_OR_RETURN(Stat s, GetStat(ino));
  return s.attr;
}

Result<std::string> UnionFsImpl::ReadLink(std::uint64_t ino) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  if (!S_ISLNK(node->mode)) return Status::FromErrno(EINVAL, "not a symlink");
  return node->target;
}

Status UnionFsImpl::ReadDir(std::uint64_t ino, std::uint64_t offset, const DirFiller& add) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * dir, FindDirToRead(ino));
  if (ListedByLower(*dir)) {
    // ".." is the union's parent: a renamed lower directory is listed by the lower still.
    return lower_->ReadDir(dir->ino, offset, [&](const DirEntry& e, std::uint64_t next) {
      return e.name == ".." ? add({"..", dir->parent, S_IFDIR}, next) : add(e, next);
    });
  }
  SR_RETURN_IF_ERROR(LoadListing(*dir));
  // Offsets: 1 after ".", 2 after "..", seq + 2 after an entry.
  if (offset == 0 && !add({".", ino, S_IFDIR}, 1)) return OkStatus();
  if (offset <= 1 && !add({"..", dir->parent, S_IFDIR}, 2)) return OkStatus();
  const std::uint64_t after = offset < 2 ? 0 : offset - 2;
  for (auto it = dir->listing->by_seq.upper_bound(after); it != dir->listing->by_seq.end(); ++it) {
    const auto& [child_ino, seq] = dir->listing->by_name.at(it->second);
    auto child = nodes_.find(child_ino);
    std::uint32_t mode = child == nodes_.end() ? 0 : child->second->mode;
    if (!add({it->second, child_ino, mode}, seq + 2)) break;
  }
  return OkStatus();
}

FsStats UnionFsImpl::StatFs() {
  FsStats stats;
  struct statvfs st {};
  if (dir_fd_ && fstatvfs(dir_fd_.get(), &st) == 0) {
    stats.blocks = st.f_blocks * st.f_frsize / 4096;
    stats.free_blocks = st.f_bavail * st.f_frsize / 4096;
    stats.free_files = st.f_favail;
  } else {
    stats.blocks = stats.free_blocks = (std::uint64_t{1} << 40) / 4096;  // memory: report 1 TiB
    stats.free_files = std::uint64_t{1} << 32;
  }
  MutexLock lock(mu_);
  stats.files = nodes_.size();
  return stats;
}

void UnionFsImpl::MarkChanged(Node& node) {
  node.changed = true;
  if (dir_fd_) dirty_.insert(node.ino);  // an in-memory upper never commits
}

void UnionFsImpl::Touch(Node& dir) {
  dir.mtime = dir.ctime = NowTime();
  dir.listing_changed = true;
  MarkChanged(dir);
  if (!dir_fd_ && dir.listing) dir.listing->changed.clear();
}

Result<Node*> UnionFsImpl::NewChild(const Caller& caller, Node& parent, std::string_view name,
                                    std::uint32_t mode) {
  SR_RETURN_IF_ERROR(CheckName(name));
  if (parent.listing->by_name.contains(std::string(name))) return Status::FromErrno(EEXIST, "entry exists");
  auto node = std::make_unique<Node>();
  node->ino = next_ino_++;
  node->mode = mode;
  node->uid = caller.uid;
  node->gid = caller.gid;
  // BSD group semantics under a set-group-ID directory, as Linux does.
  if (parent.mode & S_ISGID) {
    node->gid = parent.gid;
    if (S_ISDIR(mode)) node->mode |= S_ISGID;
  }
  node->atime = node->mtime = node->ctime = NowTime();
  MarkChanged(*node);
  node->lookups = 1;
  node->parent = parent.ino;
  Node* raw = node.get();
  nodes_.emplace(raw->ino, std::move(node));
  parent.listing->Add(std::string(name), raw->ino);
  Touch(parent);
  return raw;
}

Result<Stat> UnionFsImpl::MakeNode(const Caller& caller, std::uint64_t parent, std::string_view name,
                                   std::uint32_t mode, std::uint64_t rdev) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * dir, FindDir(parent));
  const std::uint32_t type = mode & S_IFMT;
  if (type != S_IFREG && type != S_IFIFO && type != S_IFCHR && type != S_IFBLK && type != S_IFSOCK)
    return Status::FromErrno(EINVAL, "mknod: unsupported file type");
  std::shared_ptr<UpperFile> data;
  if (type == S_IFREG) {
    SR_ASSIGN_OR_RETURN(data, NewUpperFile());
  }
  SR_ASSIGN_OR_RETURN(Node * node, NewChild(caller, *dir, name, mode));
  node->rdev = (type == S_IFCHR || type == S_IFBLK) ? rdev : 0;
  node->data = std::move(data);
  return StatOf(*node);
}

Result<Stat> UnionFsImpl::MakeDir(const Caller& caller, std::uint64_t parent, std::string_view name,
                                  std::uint32_t mode) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * dir, FindDir(parent));
  SR_ASSIGN_OR_RETURN(Node * node, NewChild(caller, *dir, name, S_IFDIR | (mode & 07777)));
  node->nlink = 2;
  node->listing = std::make_unique<Listing>();
  node->listing_changed = true;
  ++dir->nlink;
  return StatOf(*node);
}

Result<Stat> UnionFsImpl::MakeSymlink(const Caller& caller, std::uint64_t parent, std::string_view name,
                                      std::string_view target) {
  if (target.size() >= 4096) return Status::FromErrno(ENAMETOOLONG, "symlink target too long");
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * dir, FindDir(parent));
  SR_ASSIGN_OR_RETURN(Node * node, NewChild(caller, *dir, name, S_IFLNK | 0777));
  node->target = std::string(target);
  return StatOf(*node);
}

Result<Stat> UnionFsImpl::Link(std::uint64_t ino, std::uint64_t new_parent, std::string_view new_name) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * node, Find(ino));
  if (IsDir(*node)) return Status::FromErrno(EPERM, "hard links to directories are not allowed");
  SR_ASSIGN_OR_RETURN(Node * dir, FindDir(new_parent));
  SR_RETURN_IF_ERROR(CheckName(new_name));
  if (dir->listing->by_name.contains(std::string(new_name))) return Status::FromErrno(EEXIST, "entry exists");
  if (node->nlink == 0) return Status::FromErrno(ENOENT, "the file was removed");
  dir->listing->Add(std::string(new_name), ino);
  Touch(*dir);
  ++node->nlink;
  node->ctime = NowTime();
  MarkChanged(*node);
  ++node->lookups;
  return StatOf(*node);
}

// One name of `node` is gone.
void UnionFsImpl::DropLink(Node& node) {
  if (IsDir(node)) {
    node.nlink = 0;
    if (auto parent = nodes_.find(node.parent); parent != nodes_.end() && parent->second->nlink > 2)
      --parent->second->nlink;
  } else if (node.nlink > 0) {
    --node.nlink;
  }
  node.ctime = NowTime();
  MarkChanged(node);
  MaybeErase(node.ino);
}

// An inode with no names, no kernel references and no open files is gone; its data with it.
void UnionFsImpl::MaybeErase(std::uint64_t ino) {
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || ino == kRootIno) return;
  const Node& n = *it->second;
  if (n.nlink > 0 || n.lookups > 0 || n.opens > 0) return;
  if (n.data && data_fd_) {
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(n.data->id()));
    unlinkat(data_fd_.get(), name, 0);
  }
  if (n.persisted) removed_.push_back(ino);
  nodes_.erase(it);
}

Status UnionFsImpl::CheckEmpty(Node& dir) {
  SR_RETURN_IF_ERROR(LoadListing(dir));
  if (!dir.listing->by_name.empty()) return Status::FromErrno(ENOTEMPTY, "directory not empty");
  return OkStatus();
}

Status UnionFsImpl::Unlink(std::uint64_t parent, std::string_view name) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * dir, FindDir(parent));
  auto it = dir->listing->by_name.find(std::string(name));
  if (it == dir->listing->by_name.end()) return Status::FromErrno(ENOENT, "no such entry");
  SR_ASSIGN_OR_RETURN(Node * node, Find(it->second.first));
  if (IsDir(*node)) return Status::FromErrno(EISDIR, "is a directory");
  dir->listing->Remove(std::string(name));
  Touch(*dir);
  DropLink(*node);
  return OkStatus();
}

Status UnionFsImpl::RemoveDir(std::uint64_t parent, std::string_view name) {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * dir, FindDir(parent));
  auto it = dir->listing->by_name.find(std::string(name));
  if (it == dir->listing->by_name.end()) return Status::FromErrno(ENOENT, "no such entry");
  SR_ASSIGN_OR_RETURN(Node * node, Find(it->second.first));
  if (!IsDir(*node)) return Status::FromErrno(ENOTDIR, "not a directory");
  SR_RETURN_IF_ERROR(CheckEmpty(*node));
  dir->listing->Remove(std::string(name));
  Touch(*dir);
  DropLink(*node);
  return OkStatus();
}

Status UnionFsImpl::Rename(std::uint64_t parent, std::string_view name, std::uint64_t new_parent,
                           std::string_view new_name, unsigned flags) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
    return Status::FromErrno(EINVAL, "unsupported rename flags");
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(Node * from_dir, FindDir(parent));
  SR_ASSIGN_OR_RETURN(Node * to_dir, FindDir(new_parent));
  SR_RETURN_IF_ERROR(CheckName(new_name));
  const std::string from_name(name), to_name(new_name);
  auto src_it = from_dir->listing->by_name.find(from_name);
  if (src_it == from_dir->listing->by_name.end()) return Status::FromErrno(ENOENT, "no such entry");
  SR_ASSIGN_OR_RETURN(Node * src, Find(src_it->second.first));
  Node* dst = nullptr;
  if (auto d = to_dir->listing->by_name.find(to_name); d != to_dir->listing->by_name.end()) {
    SR_ASSIGN_OR_RETURN(dst, Find(d->second.first));
  }
  const Timespec now = NowTime();
  auto move_dir = [&](Node& n, Node& from, Node& to) {
    if (!IsDir(n) || from.ino == to.ino) return;
    --from.nlink;
    ++to.nlink;
    n.parent = to.ino;
  };
  if (flags & RENAME_EXCHANGE) {
    if (dst == nullptr) return Status::FromErrno(ENOENT, "no entry to exchange with");
    from_dir->listing->Repoint(from_name, dst->ino);
    to_dir->listing->Repoint(to_name, src->ino);
    move_dir(*src, *from_dir, *to_dir);
    move_dir(*dst, *to_dir, *from_dir);
    src->ctime = dst->ctime = now;
    MarkChanged(*src);
    MarkChanged(*dst);
    Touch(*from_dir);
    Touch(*to_dir);
    return OkStatus();
  }
  if (dst != nullptr) {
    if (flags & RENAME_NOREPLACE) return Status::FromErrno(EEXIST, "entry exists");
    if (dst == src) return OkStatus();  // two names of one inode: POSIX says do nothing
    if (IsDir(*src) && !IsDir(*dst)) return Status::FromErrno(ENOTDIR, "not a directory");
    if (!IsDir(*src) && IsDir(*dst)) return Status::FromErrno(EISDIR, "is a directory");
    if (IsDir(*dst)) SR_RETURN_IF_ERROR(CheckEmpty(*dst));
    to_dir->listing->Remove(to_name);
    DropLink(*dst);
  }
  from_dir->listing->Remove(from_name);
  to_dir->listing->Add(to_name, src->ino);
  move_dir(*src, *from_dir, *to_dir);
  src->ctime = now;
  MarkChanged(*src);
  Touch(*from_dir);
  Touch(*to_dir);
  return OkStatus();
}

}  // namespace sealroot::fusefs
