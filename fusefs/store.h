// The sealed store directory (design/sealfs.md "Store layout"): format version, lock, key
// check, write-once objects, committed layers and image roots, root names and pins, gc and df. Everything
// read from the directory is untrusted; what authenticates content is the object format (object.h) and the
// record MACs checked here.
//
// Thread-safety: a Store may be shared by threads once opened (its methods only use *at()
// calls on the directory fd and its immutable fields).
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/fd.h"
#include "base/status.h"
#include "fusefs/store_key.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

inline constexpr std::string_view kStoreVersion = "sealfs-store 3\n";

enum class StoreLock {
  kNone,       // readers: objects are write-once; gc removes only roots neither named nor pinned
               // (PinRoot) and what no remaining root uses
  kShared,     // writers: keeps gc out while objects are not yet listed by a layer or root
  kExclusive,  // gc
};

// A temporary file under staging/, removed on destruction unless published.
class StagedFile {
 public:
  StagedFile(int dir_fd, std::string name, UniqueFd fd)
      : dir_fd_(dir_fd), name_(std::move(name)), fd_(std::move(fd)) {}
  ~StagedFile();
  StagedFile(StagedFile&& other) noexcept
      : dir_fd_(other.dir_fd_), name_(std::exchange(other.name_, {})), fd_(std::move(other.fd_)) {}
  StagedFile& operator=(StagedFile&&) = delete;
  StagedFile(const StagedFile&) = delete;
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }  // relative to the store directory
  // Forget the file (it was renamed away).
  void Release() { name_.clear(); }

 private:
  int dir_fd_;
  std::string name_;
  UniqueFd fd_;
};

// A held pin on a root (a mount using it): gc keeps the root while the pin's process holds it,
// whether it releases it by destruction or by exiting (a pin file whose lock no process holds
// is stale, and gc removes it).
class RootPin {
 public:
  RootPin(int dir_fd, std::string name, UniqueFd fd)
      : dir_fd_(dir_fd), name_(std::move(name)), fd_(std::move(fd)) {}
  ~RootPin();
  RootPin(RootPin&& other) noexcept
      : dir_fd_(other.dir_fd_), name_(std::exchange(other.name_, {})), fd_(std::move(other.fd_)) {}
  RootPin& operator=(RootPin&&) = delete;
  RootPin(const RootPin&) = delete;

 private:
  int dir_fd_;
  std::string name_;
  UniqueFd fd_;
};

// A named root (design/sealfs.md "Named roots"). Names: 1 to 128 characters of
// [A-Za-z0-9_.:@+/-], starting with a letter or digit.
struct NamedRoot {
  std::string name;
  RootHash root{};
};
Status ValidateRootName(std::string_view name);

struct GcOptions {
  // false: every committed root is kept (gc removes only what no root uses). true: the roots
  // not in `keep` and not pinned are removed first, then what no remaining root uses.
  bool prune_roots = false;
  std::set<RootHash> keep;
};

struct GcReport {
  std::uint64_t roots_removed = 0;
  std::uint64_t objects_removed = 0;
  std::uint64_t bytes_removed = 0;
  std::uint64_t layers_removed = 0;
  std::uint64_t staging_removed = 0;
};

struct UsageReport {
  std::uint64_t objects = 0;
  std::uint64_t bytes = 0;
  std::uint64_t layers = 0;
  std::uint64_t roots = 0;
  std::uint64_t unreferenced_objects = 0;  // what gc would remove
  std::uint64_t unreferenced_bytes = 0;
};

class Store {
 public:
  // Opens the store at `dir`. With `create`, a missing or empty directory becomes a new store;
  // otherwise it must already be one. A directory with other content, or another format
  // version, is refused. kExclusive fails with kUnavailable while a writer holds the store.
  // Everything the store writes (staged objects, records, renames, syncs) goes through `env`,
  // which must outlive the store.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, bool create, StoreLock lock,
                                             Env& env = Env::Default());

  const std::string& dir() const { return dir_; }
  Env& env() const { return env_; }

  // Checks that `key` is this store's key. With `bind`, a store without a key check yet is bound
  // to `key`. A different key is kUnauthenticated.
  Status CheckKey(const StoreKey& key, bool bind) const;

  // Objects.
  Result<UniqueFd> OpenObject(const Hash32& name) const;
  Result<StagedFile> CreateStaged(std::string_view what) const;
  Status PublishObject(StagedFile& staged, const Hash32& name) const;
  // Writes a whole object, sealed in memory, straight at its name: no staged file, no rename
  // (the rename was a fifth of the CPU of sealing many small files). A crash may leave part of
  // one there; nothing refers to it before its layer commits, after a sync, and gc removes it
  // as unreferenced.
  Status WriteObject(const Hash32& name, std::span<const std::uint8_t> bytes) const;
  void RemoveObject(const Hash32& name) const;
  // Makes everything written so far durable (syncfs).
  Status Sync() const;

  // Layers, keyed by DiffID ("sha256:<hex>"), stored under the key's LayerName of it.
  bool HasLayer(const StoreKey& key, std::string_view diff_id) const;
  // The layer's index ref, after checking the record's MAC (kNotFound if absent).
  Result<ObjectRef> LayerIndex(const StoreKey& key, std::string_view diff_id) const;
  // Commits a layer: its record and object list appear at once. If another writer committed the
  // same layer first, theirs is kept and this is not an error.
  Status CommitLayer(const StoreKey& key, std::string_view diff_id, const ObjectRef& index,
                     std::span<const Hash32> objects) const;

  // Image roots. The root's gc hint lists its layers by their keyed names.
  Status CommitRoot(const StoreKey& key, const RootHash& root, std::span<const std::string> diff_ids,
                    std::span<const Hash32> objects) const;
  bool HasRoot(const RootHash& root) const;
  Result<std::vector<RootHash>> ListRoots() const;

  // Root names, sealed under the key (STORE/names). kNotFound when the store has no names file
  // (a store sealed before named roots: design/sealfs.md); kDataLoss when it fails to
  // authenticate (tampered, or another key's).
  Result<std::vector<NamedRoot>> RootNames(const StoreKey& key) const;
  // Reads the names (none if the file is absent), lets `edit` change them, and writes them back
  // atomically; concurrent updates are serialized (flock on STORE/names.lock).
  Status UpdateRootNames(const StoreKey& key,
                         const std::function<Status(std::vector<NamedRoot>&)>& edit) const;
  // Pins `root` for the life of the returned pin (or of this process): gc keeps it. Serialized
  // with gc by the store lock (waits while gc runs).
  Result<RootPin> PinRoot(const RootHash& root) const;
  // Roots pinned by a live process; stale pins are removed (with kExclusive) or skipped.
  Result<std::set<RootHash>> PinnedRoots() const;

  // Requires StoreLock::kExclusive.
  Result<GcReport> CollectGarbage(const GcOptions& options = {}) const;
  Result<UsageReport> Usage() const;

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

 private:
  struct Liveness;
  Store(std::string dir, UniqueFd dir_fd, UniqueFd lock_fd, StoreLock lock, Env& env)
      : dir_(std::move(dir)),
        dir_fd_(std::move(dir_fd)),
        lock_fd_(std::move(lock_fd)),
        lock_(lock),
        env_(env) {}
  Result<Liveness> ComputeLiveness() const;

  std::string dir_;
  UniqueFd dir_fd_;
  UniqueFd lock_fd_;
  StoreLock lock_;
  Env& env_;
};

}  // namespace sealroot::fusefs
