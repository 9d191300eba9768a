// The verifying reader of an image root (design/sealfs.md "Reader and FUSE daemon"): opened by
// store key + root hash, it serves the Filesystem interface and verifies every byte it returns
// up to the root. A failed check is kDataLoss (EIO through FUSE) and one log line naming the path.
//
// Thread-safety: thread-safe (an internal mutex guards the inode and handle tables; object reads
// run outside it).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/secret.h"
#include "base/status.h"
#include "fusefs/filesystem.h"
#include "fusefs/store.h"
#include "fusefs/store_key.h"

namespace sealroot::fusefs {

struct SealedTreeOptions {
  // Decoded directories kept in memory (lookups, and the records of the inodes the kernel
  // holds, come from them); past this the least recently used are dropped, to be read and
  // verified again when needed.
  std::size_t directory_cache_bytes = 16u << 20;
};

class SealedTree : public Filesystem {
 public:
  // Refuses a store that is not one, has another version, another key, or lacks the root (what a
  // rolled-back store looks like), and a root that does not verify.
  static Result<std::unique_ptr<SealedTree>> OpenRoot(std::shared_ptr<const Store> store,
                                                      std::shared_ptr<const StoreKey> key,
                                                      const RootHash& root,
                                                      const SealedTreeOptions& options = {});

  // The image's config JSON and digests, as sealed.
  virtual const std::string& config_json() const = 0;
  virtual const std::string& manifest_digest() const = 0;
  virtual std::vector<std::string> diff_ids() const = 0;
  // Highest inode number in the tree (the writable union allocates above it).
  virtual std::uint64_t max_ino() const = 0;
};

// Verifies every object reachable from a root: the root, every directory, every layer index and
// every data object (each once). Calls `bad(object_hex, path, message)` for each damaged or
// missing object and keeps going.
struct FsckReport {
  std::uint64_t objects_checked = 0;
  std::uint64_t bytes_checked = 0;
  std::uint64_t bad_objects = 0;
};
using BadObjectFn =
    std::function<void(const std::string& object, const std::string& path, const Status& error)>;
Result<FsckReport> Fsck(const Store& store, const StoreKey& key, const RootHash& root,
                        const BadObjectFn& bad);

}  // namespace sealroot::fusefs
