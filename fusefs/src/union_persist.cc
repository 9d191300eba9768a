// UnionFs: the upper directory, and sealing/restoring its state (design/sealfs-upper.md "State").
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <unordered_set>

#include "base/crypto.h"
#include "base/log.h"
#include "fusefs/src/union_fs.h"

namespace sealroot::fusefs {
namespace {

constexpr std::string_view kVersion = "sealfs-upper 1\n";
constexpr const char* kVersionFile = "sealfs-upper";
constexpr const char* kStateFile = "state";
constexpr const char* kStateTemp = "state.tmp";

std::string FileName(std::uint64_t id) {
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(id));
  return name;
}

Result<std::string> ReadAt(int dir_fd, const char* name, std::size_t cap) {
  UniqueFd fd(openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return ErrnoStatus(std::string("opening ") + name, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(std::string("reading ") + name, errno);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > cap) return DataLoss(std::string(name) + " is larger than any state this upper writes");
  }
  return out;
}

Status WriteAllAt(int fd, std::span<const std::uint8_t> data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("writing the upper state", errno);
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return OkStatus();
}

// Opens (creating if missing or empty) the upper directory; refuses anything else.
Result<UniqueFd> OpenUpperDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("creating " + dir, errno);
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening " + dir, errno);
  auto version = ReadAt(fd.get(), kVersionFile, 64);
  if (version.ok()) {
    if (*version != kVersion) return FailedPrecondition(dir + " is an upper of another format version");
    return fd;
  }
  UniqueFd probe(dup(fd.get()));
  DIR* d = fdopendir(probe.Release());
  if (d == nullptr) return ErrnoStatus("listing " + dir, errno);
  bool empty = true;
  while (dirent* e = readdir(d)) {
    if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") empty = false;
  }
  closedir(d);
  if (!empty) return FailedPrecondition(dir + " is not empty and not a sealfs upper");
  if (mkdirat(fd.get(), "data", 0700) != 0 && errno != EEXIST)
    return ErrnoStatus("creating " + dir + "/data", errno);
  UniqueFd vf(openat(fd.get(), kVersionFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!vf) return ErrnoStatus("creating " + dir + "/" + kVersionFile, errno);
  SR_RETURN_IF_ERROR(WriteAllAt(vf.get(), AsBytes(kVersion)));
  return fd;
}

}  // namespace

Result<std::unique_ptr<UnionFs>> UnionFs::Open(std::unique_ptr<SealedTree> lower,
                                               std::shared_ptr<const StoreKey> key,
                                               const RootHash& lower_root, const UpperOptions& options) {
  auto fs = std::make_unique<UnionFsImpl>(std::move(lower), std::move(key), lower_root);
  SR_RETURN_IF_ERROR_CTX(fs->Init(options),
                         "opening upper " + (options.dir.empty() ? "(in memory)" : options.dir));
  return std::unique_ptr<UnionFs>(std::move(fs));
}

UnionFsImpl::~UnionFsImpl() {
  MutexLock lock(mu_);
  for (auto& [id, h] : handles_) {
    if (h.lower_handle) lower_->Release(*h.lower_handle);
  }
}

Status UnionFsImpl::Init(const UpperOptions& options) {
  MutexLock lock(mu_);
  next_ino_ = lower_->max_ino() + 1;
  auto root = std::make_unique<Node>();
  SR_ASSIGN_OR_RETURN(Stat rs, lower_->GetStat(kRootIno));
  root->ino = kRootIno;
  root->mode = rs.attr.mode;
  root->uid = rs.attr.uid;
  root->gid = rs.attr.gid;
  root->nlink = rs.attr.nlink;
  root->atime = rs.atime;
  root->mtime = {rs.attr.mtime_sec, rs.attr.mtime_nsec};
  root->ctime = rs.ctime;
  root->from_lower = root->lower_resolved = true;
  root->lower_size = rs.attr.size;
  root->lookups = 1;
  nodes_.emplace(kRootIno, std::move(root));
  if (options.dir.empty()) return OkStatus();

  if (options.expect_fresh && options.expected_state)
    return InvalidArgument("an upper cannot be expected both fresh and in a given state");
  dir_ = options.dir;
  owner_ = options.owner;
  on_commit_ = options.on_commit;
  SR_ASSIGN_OR_RETURN(dir_fd_, OpenUpperDir(dir_));
  lock_fd_.Reset(openat(dir_fd_.get(), "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_) return ErrnoStatus("opening the upper's lock", errno);
  if (flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0)
    return Unavailable("the upper is in use by another mount");
  data_fd_.Reset(openat(dir_fd_.get(), "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!data_fd_) return ErrnoStatus("opening the upper's data directory", errno);

  if (options.expected_state) SR_RETURN_IF_ERROR(AdoptReportedState(*options.expected_state));
  auto bytes = ReadAt(dir_fd_.get(), kStateFile, std::size_t{1} << 32);
  if (!bytes.ok()) {
    if (bytes.status().code() != Code::kNotFound) return bytes.status();
    if (options.expected_state)
      return DataLoss("the upper has no state, but a state was expected (emptied or rolled back?)");
    return RemoveUnreferencedData();
  }
  if (options.expect_fresh)
    return DataLoss("the upper has a state, but a fresh upper was expected (another's upper, or replayed)");
  const Hash32 hash = Sha256Of(*bytes);
  if (options.expected_state && !ConstantTimeEqual(hash, *options.expected_state))
    return DataLoss("the upper's state is not the expected one (rolled back or replaced)");
  SR_ASSIGN_OR_RETURN(UpperState state, OpenUpperState(*key_, AsBytes(*bytes)));
  if (!ConstantTimeEqual(state.lower_root, lower_root_))
    return FailedPrecondition("the upper belongs to another lower root");
  if (state.owner != owner_)
    return FailedPrecondition("the upper belongs to another owner ('" + state.owner + "', not '" + owner_ +
                              "')");
  state_hash_ = hash;
  generation_ = state.generation;
  SR_RETURN_IF_ERROR(Restore(std::move(state)));
  return RemoveUnreferencedData();
}

UpperState UnionFsImpl::Snapshot() {
  UpperState state;
  state.lower_root = lower_root_;
  state.owner = owner_;
  state.generation = ++generation_;
  state.next_ino = next_ino_;
  state.next_file_id = next_file_id_;
  // Changed inodes, and every inode a persisted listing names (so a restored listing never
  // needs the lower to learn its entries).
  std::unordered_set<std::uint64_t> keep;
  for (const auto& [ino, node] : nodes_) {
    if (node->nlink == 0 && ino != kRootIno) continue;
    if (node->changed) keep.insert(ino);
    if (node->listing_changed && node->listing) {
      for (const auto& [name, entry] : node->listing->by_name) keep.insert(entry.first);
    }
  }
  for (std::uint64_t ino : keep) {
    const Node& n = *nodes_.at(ino);
    UpperNodeRecord r;
    r.ino = n.ino;
    r.parent = n.parent;
    r.mode = n.mode;
    r.uid = n.uid;
    r.gid = n.gid;
    r.nlink = n.nlink;
    r.rdev = n.rdev;
    r.atime = n.atime;
    r.mtime = n.mtime;
    r.ctime = n.ctime;
    r.from_lower = n.from_lower;
    r.lower_path = n.lower_path;
    r.lower_size = n.lower_size;
    r.target = n.target;
    r.xattrs.assign(n.xattrs.begin(), n.xattrs.end());
    if (n.data) r.data = n.data->Snapshot();
    if (n.listing_changed && n.listing) {
      auto& listing = r.listing.emplace();
      for (const auto& [seq, name] : n.listing->by_seq)
        listing.emplace_back(name, n.listing->by_name.at(name).first);
    }
    state.nodes.push_back(std::move(r));
  }
  return state;
}

Status UnionFsImpl::Restore(UpperState state) {
  next_ino_ = std::max(next_ino_, state.next_ino);
  next_file_id_ = state.next_file_id;
  for (UpperNodeRecord& r : state.nodes) {
    const std::string what = "restoring inode " + std::to_string(r.ino);
    if (r.ino == 0 || (!r.from_lower && r.ino <= lower_->max_ino()) || r.ino >= next_ino_)
      return DataLoss(what + ": inode number out of range");
    auto node = std::make_unique<Node>();
    node->ino = r.ino;
    node->parent = r.parent;
    node->mode = r.mode;
    node->uid = r.uid;
    node->gid = r.gid;
    node->nlink = r.nlink;
    node->rdev = r.rdev;
    node->atime = r.atime;
    node->mtime = r.mtime;
    node->ctime = r.ctime;
    node->from_lower = r.from_lower;
    node->lower_resolved = r.ino == kRootIno;
    node->lower_path = std::move(r.lower_path);
    node->lower_size = r.lower_size;
    node->target = std::move(r.target);
    node->xattrs.insert(r.xattrs.begin(), r.xattrs.end());
    node->changed = true;
    if (r.data) {
      const std::string name = FileName(r.data->id);
      UniqueFd fd(openat(data_fd_.get(), name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
      if (!fd)
        return ErrnoStatus(what + ": opening data file " + name, errno).WithContext("the upper is damaged");
      SR_ASSIGN_OR_RETURN(std::unique_ptr<UpperFile> file,
                          UpperFile::Open(key_, std::move(fd), std::move(*r.data), "upper file " + name));
      node->data = std::move(file);
    }
    if (r.listing) {
      node->listing = std::make_unique<Listing>();
      node->listing_changed = true;
      for (auto& [name, ino] : *r.listing) {
        if (name.empty() || name.size() > 255 || name.find('/') != std::string::npos ||
            node->listing->by_name.contains(name))
          return DataLoss(what + ": malformed directory listing");
        node->listing->Add(name, ino);
      }
    }
    if (r.ino == kRootIno) node->lookups = 1;
    nodes_[r.ino] = std::move(node);
  }
  // Every name in a restored listing must lead to a restored inode.
  for (const auto& [ino, node] : nodes_) {
    if (!node->listing) continue;
    for (const auto& [name, entry] : node->listing->by_name) {
      if (!nodes_.contains(entry.first)) return DataLoss("the upper state names an inode it does not hold");
    }
  }
  return OkStatus();
}

// A crash after a commit was reported but before its state replaced the current one leaves the
// reported state in state.tmp: the key holder's record is the truth, so that state wins.
Status UnionFsImpl::AdoptReportedState(const Hash32& expected) {
  auto pending = ReadAt(dir_fd_.get(), kStateTemp, std::size_t{1} << 32);
  if (!pending.ok() || !ConstantTimeEqual(Sha256Of(*pending), expected)) return OkStatus();
  if (renameat(dir_fd_.get(), kStateTemp, dir_fd_.get(), kStateFile) != 0)
    return ErrnoStatus("adopting the upper's reported state", errno);
  if (fsync(dir_fd_.get()) != 0) return ErrnoStatus("syncing the upper directory", errno);
  SR_LOG(kInfo) << "upper " << dir_ << ": completed the commit interrupted after its report";
  return OkStatus();
}

Status UnionFsImpl::RemoveUnreferencedData() {
  std::unordered_set<std::string> live;
  for (const auto& [ino, node] : nodes_) {
    if (node->data) live.insert(FileName(node->data->id()));
  }
  UniqueFd probe(dup(data_fd_.get()));
  DIR* d = fdopendir(probe.Release());
  if (d == nullptr) return ErrnoStatus("listing the upper's data", errno);
  std::vector<std::string> dead;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && !live.contains(name)) dead.push_back(std::move(name));
  }
  closedir(d);
  for (const std::string& name : dead) unlinkat(data_fd_.get(), name.c_str(), 0);
  return OkStatus();
}

Result<Hash32> UnionFsImpl::Commit() {
  if (!dir_fd_) return FailedPrecondition("an in-memory upper has no state to commit");
  MutexLock commit(commit_mu_);
  UpperState state;
  std::optional<Hash32> previous;
  {
    MutexLock lock(mu_);
    state = Snapshot();
    previous = state_hash_;
  }
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, SealUpperState(*key_, state));
  const Hash32 hash = Sha256Of(bytes);
  // Data first, then the state that vouches for it; rename makes the new state appear whole.
  if (syncfs(dir_fd_.get()) != 0) return ErrnoStatus("syncing the upper", errno);
  UniqueFd tmp(openat(dir_fd_.get(), kStateTemp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!tmp) return ErrnoStatus("writing the upper state", errno);
  SR_RETURN_IF_ERROR(WriteAllAt(tmp.get(), bytes));
  if (fsync(tmp.get()) != 0) return ErrnoStatus("syncing the upper state", errno);
  if (on_commit_) {
    if (Status recorded = on_commit_(previous, hash); !recorded.ok()) {
      unlinkat(dir_fd_.get(), kStateTemp, 0);
      // EIO for fsync, whatever the reason: the data is not durable as far as anyone knows.
      return DataLoss("committing the upper: the new state was not recorded: " + recorded.message());
    }
  }
  if (renameat(dir_fd_.get(), kStateTemp, dir_fd_.get(), kStateFile) != 0)
    return ErrnoStatus("publishing the upper state", errno);
  if (fsync(dir_fd_.get()) != 0) return ErrnoStatus("syncing the upper directory", errno);
  MutexLock lock(mu_);
  state_hash_ = hash;
  return hash;
}

std::optional<Hash32> UnionFsImpl::state_hash() const {
  MutexLock lock(mu_);
  return state_hash_;
}

}  // namespace sealroot::fusefs
