// UnionFs's implementation (fusefs/upper.h). One inode table for the whole union: lower inodes
// enter it when first looked up (keeping the lower's numbers), upper inodes get numbers above the
// lower's. A lower directory is listed and searched in the lower until something in it changes;
// only then is its listing kept here (LoadListing). Lock order: mu_, then an UpperFile's lock;
// the lower's calls are made under mu_ (the lower never calls back). File I/O runs outside mu_.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/fd.h"
#include "base/thread_annotations.h"
#include "fusefs/src/upper_file.h"
#include "fusefs/src/upper_state.h"
#include "fusefs/upper.h"

namespace sealroot::fusefs {

// A directory's entries with stable readdir offsets: an entry keeps its sequence number while it
// exists, new entries get higher ones (so a listing in progress neither repeats nor skips).
// `changed` collects the names added, removed or repointed since the listing was last persisted
// (a journal record holds those, not the whole listing).
struct Listing {
  std::unordered_map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_name;  // ino, seq
  std::map<std::uint64_t, std::string> by_seq;
  std::uint64_t next_seq = 1;
  std::set<std::string> changed;

  void Add(const std::string& name, std::uint64_t ino) {
    by_name[name] = {ino, next_seq};
    by_seq[next_seq++] = name;
    changed.insert(name);
  }
  void Remove(const std::string& name) {
    auto it = by_name.find(name);
    by_seq.erase(it->second.second);
    by_name.erase(it);
    changed.insert(name);
  }
  void Repoint(const std::string& name, std::uint64_t ino) {
    by_name.at(name).first = ino;
    changed.insert(name);
  }
};

struct Node {
  std::uint64_t ino = 0;
  std::uint64_t parent = kRootIno;  // directories: for ".."
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t nlink = 1;
  std::uint64_t rdev = 0;
  Timespec atime, mtime, ctime;
  std::string target;
  std::map<std::string, std::string> xattrs;
  // Where content and listing come from until copied up. lower_resolved: the lower holds a
  // lookup reference to `ino` in this mount (needed before reading it).
  bool from_lower = false;
  bool lower_resolved = false;
  std::string lower_path;
  std::uint64_t lower_size = 0;
  std::shared_ptr<UpperFile> data;   // regular files once in the upper
  std::unique_ptr<Listing> listing;  // directories once listed
  bool changed = false;              // differs from the lower: persisted
  bool listing_changed = false;      // listing persisted whole (opaque)
  bool persisted = false;            // the state on disk holds a record of this inode
  bool listing_persisted = false;    // ... and of its listing (a record holds its changes)
  std::uint64_t lookups = 0;
  std::uint64_t opens = 0;
};

class UnionFsImpl final : public UnionFs {
 public:
  UnionFsImpl(std::unique_ptr<SealedTree> lower, std::shared_ptr<const StoreKey> key, const RootHash& root)
      : lower_(std::move(lower)), key_(std::move(key)), lower_root_(root) {}

  // Sets up the upper directory (or memory) and the root; restores a persisted state.
  Status Init(const UpperOptions& options) SR_EXCLUDES(mu_, commit_mu_);

  Result<Attr> Lookup(std::uint64_t parent, std::string_view name) override;
  Result<Stat> LookupStat(std::uint64_t parent, std::string_view name) override;
  void Forget(std::uint64_t ino, std::uint64_t count) override;
  Result<Attr> GetAttr(std::uint64_t ino) override;
  Result<Stat> GetStat(std::uint64_t ino) override;
  Result<std::string> ReadLink(std::uint64_t ino) override;
  Result<std::uint64_t> Open(std::uint64_t ino, int flags) override;
  Result<std::size_t> Read(std::uint64_t handle, std::uint64_t offset, std::span<std::uint8_t> out) override;
  void Release(std::uint64_t handle) override;
  Status ReadDir(std::uint64_t ino, std::uint64_t offset, const DirFiller& add) override;
  Result<std::string> GetXattr(std::uint64_t ino, std::string_view name) override;
  Result<std::vector<std::string>> ListXattr(std::uint64_t ino) override;
  FsStats StatFs() override;
  bool prefetches() const override { return true; }
  Status Prefetch(std::uint64_t ino, std::span<std::uint8_t> buffer, const PageStore& store) override;

  Result<Stat> MakeNode(const Caller& caller, std::uint64_t parent, std::string_view name, std::uint32_t mode,
                        std::uint64_t rdev) override;
  Result<Stat> MakeDir(const Caller& caller, std::uint64_t parent, std::string_view name,
                       std::uint32_t mode) override;
  Result<Stat> MakeSymlink(const Caller& caller, std::uint64_t parent, std::string_view name,
                           std::string_view target) override;
  Result<Stat> Link(std::uint64_t ino, std::uint64_t new_parent, std::string_view new_name) override;
  Status Unlink(std::uint64_t parent, std::string_view name) override;
  Status RemoveDir(std::uint64_t parent, std::string_view name) override;
  Status Rename(std::uint64_t parent, std::string_view name, std::uint64_t new_parent,
                std::string_view new_name, unsigned flags) override;
  Result<Stat> SetAttr(std::uint64_t ino, const SetAttrRequest& request) override;
  Result<Created> Create(const Caller& caller, std::uint64_t parent, std::string_view name,
                         std::uint32_t mode, int flags) override;
  Result<std::size_t> Write(std::uint64_t handle, std::uint64_t offset,
                            std::span<const std::uint8_t> data) override;
  Status Fsync(std::uint64_t handle, bool datasync) override;
  Status SetXattr(std::uint64_t ino, std::string_view name, std::string_view value, int flags) override;
  Status RemoveXattr(std::uint64_t ino, std::string_view name) override;

  Result<Hash32> Commit() override;
  std::optional<Hash32> state_hash() const override;

 private:
  // Tree (union_fs.cc).
  Result<Node*> Find(std::uint64_t ino) SR_REQUIRES(mu_);
  // A directory with its listing loaded, to change it.
  Result<Node*> FindDir(std::uint64_t ino) SR_REQUIRES(mu_);
  // A directory to look up in or list: one ListedByLower is read in the lower.
  Result<Node*> FindDirToRead(std::uint64_t ino) SR_REQUIRES(mu_);
  static bool ListedByLower(const Node& dir) { return !dir.listing && dir.from_lower; }
  // `name` of a lower directory, found in the lower, entering the inode table.
  Result<Node*> LowerChild(Node& dir, std::string_view name) SR_REQUIRES(mu_);
  Status ResolveLower(Node& node) SR_REQUIRES(mu_);
  Status LoadListing(Node& dir) SR_REQUIRES(mu_);
  Node& AdoptLower(const Stat& stat, const std::string& path) SR_REQUIRES(mu_);
  Result<Node*> NewChild(const Caller& caller, Node& parent, std::string_view name, std::uint32_t mode)
      SR_REQUIRES(mu_);
  void Touch(Node& dir) SR_REQUIRES(mu_);
  // The node differs from the lower and from the state last persisted.
  void MarkChanged(Node& node) SR_REQUIRES(mu_);
  void DropLink(Node& node) SR_REQUIRES(mu_);
  void MaybeErase(std::uint64_t ino) SR_REQUIRES(mu_);
  Stat StatOf(const Node& node) const SR_REQUIRES(mu_);
  Status CheckEmpty(Node& dir) SR_REQUIRES(mu_);

  // Data (union_io.cc).
  Result<std::shared_ptr<UpperFile>> NewUpperFile() SR_REQUIRES(mu_);
  Status CopyUp(Node& node) SR_REQUIRES(mu_);
  // kAborted while a prefetch stores the lower content of `ino` in the kernel's page cache:
  // checked before the content changes, so a store cannot land over a writer's newer bytes
  // (Filesystem::Prefetch says who repeats the call).
  Status RefuseWhilePrefetching(std::uint64_t ino) SR_REQUIRES(mu_);

  // State (union_persist.cc).
  UpperNodeRecord RecordOf(Node& node, bool full) SR_REQUIRES(mu_);
  UpperState Snapshot() SR_REQUIRES(mu_);
  // What changed since the state last persisted; `files` gets the data files it vouches for.
  UpperState Change(std::vector<std::shared_ptr<UpperFile>>& files) SR_REQUIRES(mu_);
  Result<Hash32> CommitSnapshot() SR_REQUIRES(commit_mu_);
  Result<Hash32> CommitChange() SR_REQUIRES(commit_mu_);
  Status OpenJournal(std::uint64_t valid_size) SR_REQUIRES(commit_mu_);
  Status Restore(UpperState state) SR_REQUIRES(mu_);
  Status RemoveUnreferencedData() SR_REQUIRES(mu_);
  Status AdoptReportedState(const Hash32& expected) SR_REQUIRES(mu_);

  const std::unique_ptr<SealedTree> lower_;
  const std::shared_ptr<const StoreKey> key_;
  const RootHash lower_root_;
  UniqueFd dir_fd_;   // the upper directory (invalid: in memory)
  UniqueFd data_fd_;  // its data/ subdirectory
  UniqueFd lock_fd_;
  std::string dir_;
  Env* env_ = &Env::Default();  // UpperOptions::env
  std::string owner_;           // UpperOptions::owner
  std::function<Status(const std::optional<Hash32>&, const Hash32&)> on_commit_;

  Mutex commit_mu_;  // one Commit at a time, so states land in generation order; before mu_
  mutable Mutex mu_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Node>> nodes_ SR_GUARDED_BY(mu_);
  std::unordered_map<std::uint64_t, std::uint64_t> handles_ SR_GUARDED_BY(mu_);  // handle -> inode
  // Lower files a prefetch is reading and storing (Prefetch), with how many prefetches each.
  std::unordered_map<std::uint64_t, int> prefetching_ SR_GUARDED_BY(mu_);
  std::uint64_t next_handle_ SR_GUARDED_BY(mu_) = 1;
  std::uint64_t next_ino_ SR_GUARDED_BY(mu_) = 0;
  std::uint64_t next_file_id_ SR_GUARDED_BY(mu_) = 1;
  std::uint64_t generation_ SR_GUARDED_BY(mu_) = 0;
  std::optional<Hash32> state_hash_ SR_GUARDED_BY(mu_);
  // Inodes changed (or erased while in the state) since the state last persisted.
  std::unordered_set<std::uint64_t> dirty_ SR_GUARDED_BY(mu_);
  std::vector<std::uint64_t> removed_ SR_GUARDED_BY(mu_);
  bool force_snapshot_ SR_GUARDED_BY(mu_) = true;  // until a snapshot is on disk, or after a failure
  std::uint64_t compact_after_ = 0;                // UpperOptions::compact_after
  // The journal (design/sealfs-upper.md "State"): its fd, length, and the snapshot it extends.
  UniqueFd journal_fd_ SR_GUARDED_BY(commit_mu_);
  std::uint64_t journal_size_ SR_GUARDED_BY(commit_mu_) = 0;
  Hash32 snapshot_root_ SR_GUARDED_BY(commit_mu_){};
  std::uint64_t snapshot_size_ SR_GUARDED_BY(commit_mu_) = 0;
};

Timespec NowTime();

}  // namespace sealroot::fusefs
