// The snapshot store: what containerd's overlayfs snapshotter does, over one directory. Each
// snapshot is a directory `<root>/snapshots/<id>/` with `fs/` (its layer, the overlay upperdir)
// and, while active, `work/`; the metadata (names, kinds, parents, labels, times, usage) is one
// JSON document `<root>/metadata.json`, replaced atomically on every change, so a restart finds
// every snapshot again. Mounts are exactly the overlayfs snapshotter's: a bind mount for a
// snapshot without parents (rw when active, ro for a view), a read-only bind of the parent for a
// view of one layer, otherwise overlay with `lowerdir` the parents' fs/ (nearest first) and, when
// active, `upperdir`/`workdir`. A snapshot with children cannot be removed (kFailedPrecondition).
//
// A placeholder is a committed snapshot with an empty fs/ and the label kPlaceholderLabel: it
// stands for a layer of a confidential image that the host never fetches (design/shim.md).
//
// Thread-safety: every method may be called from any thread; one mutex guards the metadata and
// the directory changes that go with it; disk usage is measured outside it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_annotations.h"
#include "snapshotter/filter.h"

namespace sealroot::snapshotter {

// containerd's numbering (snapshots.v1.Kind).
enum class Kind { kView = 1, kActive = 2, kCommitted = 3 };

using Labels = std::map<std::string, std::string>;
using Clock = std::chrono::system_clock;

inline constexpr char kPlaceholderLabel[] = "containerd.io/snapshot/sealroot.placeholder";

struct Info {
  std::string name;
  std::string parent;
  Kind kind = Kind::kActive;
  Labels labels;
  Clock::time_point created;
  Clock::time_point updated;
};

struct Usage {
  std::int64_t size = 0;    // bytes allocated (st_blocks * 512), each inode once
  std::int64_t inodes = 0;  // distinct inodes
};

struct Mount {
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

class Store {
 public:
  // Creates `root` (0700) if needed, loads the metadata and removes directories no snapshot owns
  // (left by an interrupted create or remove).
  static Result<std::unique_ptr<Store>> Open(const std::string& root);

  Result<std::vector<Mount>> Prepare(const std::string& key, const std::string& parent, const Labels& labels)
      SR_EXCLUDES(mu_);
  Result<std::vector<Mount>> View(const std::string& key, const std::string& parent, const Labels& labels)
      SR_EXCLUDES(mu_);
  // Active or view snapshots only, as containerd's overlayfs.
  Result<std::vector<Mount>> Mounts(const std::string& key) const SR_EXCLUDES(mu_);
  // The active snapshot `key` becomes the committed `name` with `labels` (replacing its own).
  Status Commit(const std::string& name, const std::string& key, const Labels& labels) SR_EXCLUDES(mu_);
  // A committed snapshot `name` with an empty layer, child of `parent`.
  Status CommitPlaceholder(const std::string& name, const std::string& parent, const Labels& labels)
      SR_EXCLUDES(mu_);
  Status Remove(const std::string& key) SR_EXCLUDES(mu_);
  Result<Info> Stat(const std::string& key) const SR_EXCLUDES(mu_);
  // Only labels change: `labels` replaces them all, `labels.K` sets or clears one; no paths = all.
  Result<Info> Update(const Info& info, std::span<const std::string> field_paths) SR_EXCLUDES(mu_);
  Result<std::vector<Info>> List(const Filter& filter) const SR_EXCLUDES(mu_);
  // Committed: as measured at commit; active: measured now.
  Result<Usage> GetUsage(const std::string& key) const SR_EXCLUDES(mu_);
  // Removes directories no snapshot owns.
  Status Cleanup() SR_EXCLUDES(mu_);

  const std::string& root() const { return root_; }

 private:
  struct Record {
    std::uint64_t id = 0;
    Kind kind = Kind::kActive;
    std::string parent;
    Labels labels;
    Clock::time_point created;
    Clock::time_point updated;
    Usage usage;
  };

  explicit Store(std::string root) : root_(std::move(root)) {}
  Status Load() SR_REQUIRES(mu_);
  Status Save() const SR_REQUIRES(mu_);
  Result<std::vector<Mount>> Create(Kind kind, const std::string& key, const std::string& parent,
                                    const Labels& labels) SR_EXCLUDES(mu_);
  Status CleanupLocked() SR_REQUIRES(mu_);
  std::vector<Mount> MountsOf(const Record& record) const SR_REQUIRES(mu_);
  std::string Dir(std::uint64_t id) const;
  std::string FsDir(std::uint64_t id) const { return Dir(id) + "/fs"; }
  static Info ToInfo(const std::string& name, const Record& record);

  const std::string root_;
  bool index_off_ = false;  // the kernel's overlay knows index=off: pass it, as containerd does
  mutable Mutex mu_;
  std::map<std::string, Record> snapshots_ SR_GUARDED_BY(mu_);
  std::uint64_t next_id_ SR_GUARDED_BY(mu_) = 1;
};

// Disk usage of a directory tree (no symlinks followed), as containerd's fs.DiskUsage counts it.
Result<Usage> DiskUsage(const std::string& dir);

}  // namespace sealroot::snapshotter
