// UnionFs: the upper directory, and sealing/restoring its state (design/sealfs-upper.md "State").
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <unordered_set>

#include "base/crypto.h"
#include "base/log.h"
#include "fusefs/src/union_fs.h"

namespace sealroot::fusefs {
namespace {

constexpr std::string_view kVersion = "sealfs-upper 2\n";
constexpr const char* kVersionFile = "sealfs-upper";
constexpr const char* kStateFile = "state";
constexpr const char* kStateTemp = "state.tmp";
constexpr const char* kJournalFile = "journal";
constexpr std::size_t kStateCap = std::size_t{1} << 32;

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

// The journal records that extend the snapshot whose root is `snapshot_root`, as far as they
// are whole (a torn append at the end is not a record). `end`: the length of what was walked.
struct JournalWalk {
  std::vector<std::span<const std::uint8_t>> records;
  std::uint64_t end = 0;
  bool torn = false;
};
JournalWalk WalkJournal(std::span<const std::uint8_t> journal, const Hash32& snapshot_root) {
  JournalWalk walk;
  auto base = JournalBase(journal);
  // No journal, or one left by a snapshot that replaced its base (a crash before it was reset).
  if (!base || !ConstantTimeEqual(*base, snapshot_root)) return walk;
  std::size_t pos = kJournalHeaderSize;
  while (pos < journal.size()) {
    auto n = JournalRecordSize(journal.subspan(pos));
    if (!n) {
      walk.torn = true;
      break;
    }
    walk.records.push_back(journal.subspan(pos, *n));
    pos += *n;
  }
  walk.end = pos;
  return walk;
}

Result<bool> IsEmptyDir(int dir_fd, const char* name) {
  int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus(std::string("opening ") + name, errno);
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return ErrnoStatus(std::string("listing ") + name, errno);
  }
  bool empty = true;
  while (dirent* e = readdir(d)) {
    if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") empty = false;
  }
  closedir(d);
  return empty;
}

// mkdir through `env`; an existing directory is fine (a creation resumed).
Status MakeDir(Env& env, int dir_fd, const std::string& path) {
  Status made = env.MkdirAt(dir_fd, path, 0700);
  return made.code() == Code::kAlreadyExists ? OkStatus() : made;
}

// Opens (creating if missing or empty) the upper directory; refuses anything else. A new upper
// gets data/ first and its version file last, written atomically: a directory holding only
// data/ (empty), the lock or a version file's temporary is one whose creation stopped, and is
// completed.
Result<UniqueFd> OpenUpperDir(Env& env, const std::string& dir) {
  SR_RETURN_IF_ERROR(MakeDir(env, AT_FDCWD, dir));
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening " + dir, errno);
  auto version = ReadAt(fd.get(), kVersionFile, 64);
  if (version.ok()) {
    if (*version != kVersion) {
      return FailedPrecondition(dir + " is an upper of another format version (" +
                                std::string(version->substr(0, version->find('\n'))) + "; this build reads " +
                                std::string(kVersion.substr(0, kVersion.size() - 1)) +
                                "): copy its files out with the build that wrote it");
    }
    return fd;
  }
  if (version.status().code() != Code::kNotFound) return version.status();
  UniqueFd probe(dup(fd.get()));
  DIR* d = fdopendir(probe.Release());
  if (d == nullptr) return ErrnoStatus("listing " + dir, errno);
  bool only_layout = true;
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (name == "data") {
      // Only an empty data/: a state's files without their state are not an unfinished creation.
      Result<bool> empty = IsEmptyDir(fd.get(), "data");
      if (!empty.ok()) return std::move(empty).status().WithContext(dir);
      only_layout = only_layout && *empty;
    } else if (name != "lock" && !name.starts_with(std::string(kVersionFile) + ".tmp-")) {
      only_layout = false;
    }
  }
  closedir(d);
  if (!only_layout) return FailedPrecondition(dir + " is not empty and not a sealfs upper");
  SR_RETURN_IF_ERROR(MakeDir(env, fd.get(), "data"));
  SR_RETURN_IF_ERROR(WriteFileAtomic(env, dir + "/" + kVersionFile, AsBytes(kVersion), 0600));
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

Status UnionFsImpl::Init(const UpperOptions& options) {
  MutexLock commit(commit_mu_);
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
  compact_after_ = options.compact_after;
  env_ = options.env;
  SR_ASSIGN_OR_RETURN(dir_fd_, OpenUpperDir(*env_, dir_));
  SR_ASSIGN_OR_RETURN(lock_fd_, env_->OpenAt(dir_fd_.get(), "lock", O_RDWR | O_CREAT, 0600));
  if (flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0)
    return Unavailable("the upper is in use by another mount");
  data_fd_.Reset(openat(dir_fd_.get(), "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!data_fd_) return ErrnoStatus("opening the upper's data directory", errno);

  const std::optional<Hash32>& expected = options.expected_state;
  if (expected) SR_RETURN_IF_ERROR(AdoptReportedState(*expected));
  auto bytes = ReadAt(dir_fd_.get(), kStateFile, kStateCap);
  if (!bytes.ok()) {
    if (bytes.status().code() != Code::kNotFound) return bytes.status();
    if (expected)
      return DataLoss("the upper has no state, but a state was expected (emptied or rolled back?)");
    SR_RETURN_IF_ERROR(OpenJournal(0));
    return RemoveUnreferencedData();
  }
  if (options.expect_fresh)
    return DataLoss("the upper has a state, but a fresh upper was expected (another's upper, or replayed)");
  const Hash32 snapshot_root = Sha256Of(*bytes);
  auto journal = ReadAt(dir_fd_.get(), kJournalFile, kStateCap);
  if (!journal.ok() && journal.status().code() != Code::kNotFound) return journal.status();
  const std::string journal_bytes = journal.ok() ? std::move(*journal) : std::string();
  const JournalWalk walk = WalkJournal(AsBytes(journal_bytes), snapshot_root);
  // The root, record by record. With a pin, records after it were never reported (a crash
  // between an append and its report, or a refused report): they are dropped.
  Hash32 state_root = snapshot_root;
  std::size_t take = 0;
  std::uint64_t valid = walk.end == 0 ? 0 : kJournalHeaderSize;
  for (; take < walk.records.size(); ++take) {
    if (expected && ConstantTimeEqual(state_root, *expected)) break;
    state_root = NextUpperRoot(state_root, walk.records[take]);
    valid += walk.records[take].size();
  }
  if (expected && !ConstantTimeEqual(state_root, *expected))
    return DataLoss("the upper's state is not the expected one (rolled back or replaced)");
  SR_ASSIGN_OR_RETURN(UpperState state, OpenUpperState(*key_, AsBytes(*bytes)));
  if (!ConstantTimeEqual(state.lower_root, lower_root_))
    return FailedPrecondition("the upper belongs to another lower root");
  if (state.owner != owner_)
    return FailedPrecondition("the upper belongs to another owner ('" + state.owner + "', not '" + owner_ +
                              "')");
  std::vector<UpperState> changes;
  Hash32 previous = snapshot_root;
  for (std::size_t i = 0; i < take; ++i) {
    auto change = OpenJournalRecord(*key_, previous, walk.records[i]);
    if (!change.ok()) {
      return DataLoss("the upper's journal fails authentication at record " + std::to_string(i + 1) +
                      " (tampered, reordered or replayed): " + change.status().message());
    }
    changes.push_back(std::move(change).value());
    previous = NextUpperRoot(previous, walk.records[i]);
  }
  SR_ASSIGN_OR_RETURN(state, ReplayUpperJournal(std::move(state), std::move(changes)));
  if (walk.torn && take == walk.records.size()) {
    SR_LOG(kWarning) << "upper " << dir_
                     << ": dropped a torn journal record (a commit interrupted by a crash)";
  }
  state_hash_ = state_root;
  generation_ = state.generation;
  SR_RETURN_IF_ERROR(Restore(std::move(state)));
  snapshot_root_ = snapshot_root;
  snapshot_size_ = bytes->size();
  force_snapshot_ = false;
  SR_RETURN_IF_ERROR(OpenJournal(valid));
  return RemoveUnreferencedData();
}

// Keeps the journal open for appends, cut to what the state holds (a torn or unreported tail,
// or a journal of a replaced snapshot, goes).
Status UnionFsImpl::OpenJournal(std::uint64_t valid_size) {
  SR_ASSIGN_OR_RETURN(journal_fd_,
                      env_->OpenAt(dir_fd_.get(), kJournalFile, O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  struct stat st {};
  if (fstat(journal_fd_.get(), &st) != 0) return ErrnoStatus("reading the upper's journal", errno);
  if (static_cast<std::uint64_t>(st.st_size) != valid_size) {
    if (ftruncate(journal_fd_.get(), static_cast<off_t>(valid_size)) != 0 ||
        fdatasync(journal_fd_.get()) != 0)
      return ErrnoStatus("cutting the upper's journal", errno);
  }
  SR_RETURN_IF_ERROR_CTX(env_->Fsync(dir_fd_.get()), "syncing the upper directory");
  journal_size_ = valid_size;
  return OkStatus();
}

UpperNodeRecord UnionFsImpl::RecordOf(Node& n, bool full) {
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
  if (n.data) r.data = full ? n.data->TakeFull() : n.data->TakeChange();
  if (n.listing_changed && n.listing) {
    if (full || !n.listing_persisted) {
      auto& listing = r.listing.emplace();
      for (const auto& [seq, name] : n.listing->by_seq)
        listing.emplace_back(name, n.listing->by_name.at(name).first);
    } else if (!n.listing->changed.empty()) {
      auto& listing = r.listing.emplace();
      r.listing_full = false;
      for (const std::string& name : n.listing->changed) {
        auto it = n.listing->by_name.find(name);
        listing.emplace_back(name, it == n.listing->by_name.end() ? 0 : it->second.first);
      }
    }
    n.listing->changed.clear();
    n.listing_persisted = true;
  }
  n.persisted = true;
  return r;
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
    node->persisted = node->listing_persisted = false;
    if (node->nlink == 0 && ino != kRootIno) continue;
    if (node->changed) keep.insert(ino);
    if (node->listing_changed && node->listing) {
      for (const auto& [name, entry] : node->listing->by_name) keep.insert(entry.first);
    }
  }
  for (std::uint64_t ino : keep) state.nodes.push_back(RecordOf(*nodes_.at(ino), true));
  dirty_.clear();
  removed_.clear();
  return state;
}

// Changed inodes, and those a changed listing names that the state does not hold yet.
UpperState UnionFsImpl::Change(std::vector<std::shared_ptr<UpperFile>>& files) {
  UpperState state;
  state.lower_root = lower_root_;
  state.owner = owner_;
  state.generation = ++generation_;
  state.next_ino = next_ino_;
  state.next_file_id = next_file_id_;
  state.removed = std::move(removed_);
  std::set<std::uint64_t> emit(dirty_.begin(), dirty_.end());
  for (std::uint64_t ino : dirty_) {
    auto it = nodes_.find(ino);
    if (it == nodes_.end() || !it->second->listing_changed || !it->second->listing) continue;
    const Node& dir = *it->second;
    std::vector<std::uint64_t> named;
    if (dir.listing_persisted) {
      for (const std::string& name : dir.listing->changed) {
        if (auto entry = dir.listing->by_name.find(name); entry != dir.listing->by_name.end())
          named.push_back(entry->second.first);
      }
    } else {
      for (const auto& [name, entry] : dir.listing->by_name) named.push_back(entry.first);
    }
    for (std::uint64_t child_ino : named) {
      auto child = nodes_.find(child_ino);
      if (child != nodes_.end() && !child->second->persisted) emit.insert(child_ino);
    }
  }
  for (std::uint64_t ino : emit) {
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) continue;
    Node& n = *it->second;
    if (n.nlink == 0 && ino != kRootIno) {
      if (n.persisted) state.removed.push_back(ino);
      n.persisted = n.listing_persisted = false;
      continue;
    }
    state.nodes.push_back(RecordOf(n, false));
    if (n.data) files.push_back(n.data);
  }
  dirty_.clear();
  removed_.clear();
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
    node->changed = node->persisted = true;
    if (r.data) {
      const std::string name = FileName(r.data->id);
      UniqueFd fd(openat(data_fd_.get(), name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
      if (!fd)
        return ErrnoStatus(what + ": opening data file " + name, errno).WithContext("the upper is damaged");
      SR_ASSIGN_OR_RETURN(
          std::unique_ptr<UpperFile> file,
          UpperFile::Open(key_, *env_, std::move(fd), std::move(*r.data), "upper file " + name, true));
      node->data = std::move(file);
    }
    if (r.listing) {
      node->listing = std::make_unique<Listing>();
      node->listing_changed = node->listing_persisted = true;
      for (auto& [name, ino] : *r.listing) {
        if (name.empty() || name.size() > 255 || name.find('/') != std::string::npos ||
            node->listing->by_name.contains(name))
          return DataLoss(what + ": malformed directory listing");
        node->listing->Add(name, ino);
      }
      node->listing->changed.clear();
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
  SR_RETURN_IF_ERROR_CTX(env_->RenameAt(dir_fd_.get(), kStateTemp, kStateFile, false),
                         "adopting the upper's reported state");
  SR_RETURN_IF_ERROR_CTX(env_->Fsync(dir_fd_.get()), "syncing the upper directory");
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
  bool snapshot = false;
  {
    MutexLock lock(mu_);
    snapshot = force_snapshot_ || compact_after_ == 0 ||
               (journal_size_ > compact_after_ && journal_size_ > 2 * snapshot_size_);
  }
  auto committed = snapshot ? CommitSnapshot() : CommitChange();
  if (!committed.ok()) {
    // What this commit took as changed is not on disk: the next commit writes everything.
    MutexLock lock(mu_);
    force_snapshot_ = true;
  }
  return committed;
}

// The whole state, replacing the current snapshot and its journal.
Result<Hash32> UnionFsImpl::CommitSnapshot() {
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
  SR_RETURN_IF_ERROR_CTX(env_->SyncFs(dir_fd_.get()), "syncing the upper");
  SR_ASSIGN_OR_RETURN(UniqueFd tmp,
                      env_->OpenAt(dir_fd_.get(), kStateTemp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
  SR_RETURN_IF_ERROR_CTX(PwriteAll(*env_, tmp.get(), bytes, 0), "writing the upper state");
  SR_RETURN_IF_ERROR_CTX(env_->Fsync(tmp.get()), "syncing the upper state");
  if (on_commit_) {
    if (Status recorded = on_commit_(previous, hash); !recorded.ok()) {
      unlinkat(dir_fd_.get(), kStateTemp, 0);
      // EIO for fsync, whatever the reason: the data is not durable as far as anyone knows.
      return DataLoss("committing the upper: the new state was not recorded: " + recorded.message());
    }
  }
  SR_RETURN_IF_ERROR_CTX(env_->RenameAt(dir_fd_.get(), kStateTemp, kStateFile, false),
                         "publishing the upper state");
  SR_RETURN_IF_ERROR_CTX(env_->Fsync(dir_fd_.get()), "syncing the upper directory");
  // The journal extended the snapshot just replaced (a crash before this leaves it naming that
  // one: the next mount ignores it).
  snapshot_root_ = hash;
  snapshot_size_ = bytes.size();
  journal_size_ = 0;
  if (ftruncate(journal_fd_.get(), 0) != 0) return ErrnoStatus("resetting the upper's journal", errno);
  SR_RETURN_IF_ERROR_CTX(env_->Fsync(journal_fd_.get()), "resetting the upper's journal");
  MutexLock lock(mu_);
  state_hash_ = hash;
  force_snapshot_ = false;
  return hash;
}

// What changed, appended to the journal as one record bound to the root it follows.
Result<Hash32> UnionFsImpl::CommitChange() {
  UpperState change;
  Hash32 previous{};
  std::vector<std::shared_ptr<UpperFile>> files;
  {
    MutexLock lock(mu_);
    change = Change(files);
    previous = state_hash_.value_or(Hash32{});
  }
  // Data first (the blocks the record names, and the names of new data files).
  for (const auto& file : files) SR_RETURN_IF_ERROR(file->Sync());
  if (!files.empty()) SR_RETURN_IF_ERROR_CTX(env_->Fsync(data_fd_.get()), "syncing the upper's data");
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> record, SealJournalRecord(*key_, previous, change));
  const Hash32 root = NextUpperRoot(previous, record);
  std::vector<std::uint8_t> bytes;
  if (journal_size_ == 0) {
    auto header = JournalHeader(snapshot_root_);
    bytes.assign(header.begin(), header.end());
  }
  bytes.insert(bytes.end(), record.begin(), record.end());
  // A failed append or a refused report: the journal ends where it did.
  auto cut = [fd = journal_fd_.get(), size = journal_size_] {
    if (ftruncate(fd, static_cast<off_t>(size)) == 0) (void)fdatasync(fd);
  };
  Status appended = PwriteAll(*env_, journal_fd_.get(), bytes, journal_size_);
  if (appended.ok()) appended = env_->Fsync(journal_fd_.get()).WithContext("syncing the upper's journal");
  if (!appended.ok()) {
    cut();
    return appended.WithContext("appending to the upper's journal");
  }
  if (on_commit_) {
    if (Status recorded = on_commit_(previous, root); !recorded.ok()) {
      cut();
      return DataLoss("committing the upper: the new state was not recorded: " + recorded.message());
    }
  }
  journal_size_ += bytes.size();
  MutexLock lock(mu_);
  state_hash_ = root;
  return root;
}

std::optional<Hash32> UnionFsImpl::state_hash() const {
  MutexLock lock(mu_);
  return state_hash_;
}

Result<Hash32> StoredUpperRoot(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening " + dir, errno);
  SR_ASSIGN_OR_RETURN(std::string state, ReadAt(fd.get(), kStateFile, kStateCap));
  Hash32 root = Sha256Of(state);
  auto journal = ReadAt(fd.get(), kJournalFile, kStateCap);
  if (!journal.ok())
    return journal.status().code() == Code::kNotFound ? Result<Hash32>(root) : journal.status();
  const JournalWalk walk = WalkJournal(AsBytes(*journal), root);
  for (auto record : walk.records) root = NextUpperRoot(root, record);
  return root;
}

}  // namespace sealroot::fusefs
