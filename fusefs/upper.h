// The writable root (design/sealfs-upper.md): a union of a verified, read-only SealedTree (the
// lower) and an encrypted, integrity-protected upper that takes every change. Lower files are
// copied up on their first write; deletions and renames of lower entries are recorded in the
// upper (a changed directory is stored whole, i.e. opaque), so the lower is never consulted for
// a changed directory again.
//
//   auto fs = UnionFs::Open(std::move(lower), key, root, {.dir = "/var/lib/x/upper"});
//   auto mount = FuseMount::Create(**fs, {.mountpoint = "/mnt", .read_only = false});
//   mount->Serve();
//   (*fs)->Commit();   // the upper's new root hash
//
// While mounted, the upper's trusted state (inode table, directory listings, every data block's
// key epoch, counter and tag) lives in memory: any change, replay or rollback of the host's
// bytes is EIO. A persistent upper (`dir`) seals that state with its key on fsync and on
// Commit() — what changed, appended to a journal, or now and then a whole snapshot —; the state names the
// lower root and the owner it belongs to and is refused over another lower or for another owner. Freshness
// across mounts holds only if the key holder passes the last root hash back in `expected_state` (or
// `expect_fresh`) and learns each new one from `on_commit` (the host can otherwise offer an older sealed
// state).
//
// Thread-safety: thread-safe (Filesystem); Commit may run concurrently with operations.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/env.h"
#include "base/status.h"
#include "fusefs/filesystem.h"
#include "fusefs/sealed_tree.h"
#include "fusefs/store_key.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

struct UpperOptions {
  // The persistent upper's directory (created if missing or empty); empty: an in-memory upper
  // (data blocks in memfds, still sealed), gone at unmount.
  std::string dir;
  // Who the upper belongs to (e.g. a container id), sealed into every state: a state naming
  // another owner is refused.
  std::string owner;
  // Refuse a persisted state whose root hash is not this one (freshness across mounts).
  std::optional<Hash32> expected_state;
  // Refuse any persisted state: the key holder knows of no commit.
  bool expect_fresh = false;
  // Called by each commit with the state it replaces (none: the first) and the new state's root,
  // once the new state is durable beside the current one and before it replaces it; an error
  // fails the commit and the current state stays. The key holder records the root here, so a
  // crash in between leaves a state the next mount with that root in `expected_state` adopts.
  std::function<Status(const std::optional<Hash32>& previous, const Hash32& root)> on_commit;
  // A commit appends what changed to the journal; once the journal is longer than this and
  // than twice the snapshot, the commit writes a new snapshot instead (0: every commit does).
  std::uint64_t compact_after = 1 << 20;
  // Everything the upper writes to disk goes through this Env (base/env.h), which must outlive
  // the UnionFs: creating it (directory, data/, lock, version file, journal), its data files'
  // blocks and syncs, and its commits (state, journal).
  Env* env = &Env::Default();
};

// The root hash of the upper state stored in `dir` (its snapshot chained through its journal),
// as the next mount computes it before it verifies anything; kNotFound without a state.
Result<Hash32> StoredUpperRoot(const std::string& dir);

class UnionFs : public Filesystem {
 public:
  // Refuses: an upper directory with other content or another format version, one in use by
  // another mount (kUnavailable), a state that fails authentication or belongs to another lower
  // root or owner (kDataLoss / kFailedPrecondition), a state other than `expected_state` (also a
  // missing one), any state under `expect_fresh`, a state naming data files that are missing.
  static Result<std::unique_ptr<UnionFs>> Open(std::unique_ptr<SealedTree> lower,
                                               std::shared_ptr<const StoreKey> key,
                                               const RootHash& lower_root, const UpperOptions& options);

  // Makes every change so far durable and returns the upper's root hash (the snapshot's SHA-256
  // chained through the journal records after it). Costs what changed since the last commit,
  // not the upper's size (but for an occasional snapshot). An in-memory upper writes nothing
  // and returns kFailedPrecondition.
  virtual Result<Hash32> Commit() = 0;
  // The root hash of the state last read or written (none for a new or in-memory upper).
  virtual std::optional<Hash32> state_hash() const = 0;
};

}  // namespace sealroot::fusefs
