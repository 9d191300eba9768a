// The container's sealed root, served by this process: the store opened read-only, the image
// root verified from its root hash, and a FUSE mount of it served on libfuse's threads until
// this object dies. With an upper directory the mount is fusefs's writable union (sealed lower +
// encrypted, integrity-protected upper); without one it is the read-only lower, and the
// container's writes go to an in-memory overlay (container.h).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "base/secret.h"
#include "base/status.h"
#include "fusefs/filesystem.h"
#include "fusefs/fuse_mount.h"
#include "fusefs/types.h"

namespace sealroot::boot {

// The container's persistent writable layer, as the key release describes it.
struct SealedUpper {
  std::string dir;    // empty: no persistent upper (the container's writes stay in memory)
  SecretBytes key;    // the container's upper key
  std::string owner;  // the container id, sealed into the upper's state
  std::optional<fusefs::Hash32> expected_root;  // none: a fresh upper is expected
  // Reports each commit (state replaced, new root) before it replaces the current state.
  std::function<Status(const std::optional<fusefs::Hash32>&, const fusefs::Hash32&)> report;
};

class SealedRootMount {
 public:
  // Mounts root `root_hash` of the store at `store_dir` (opened with `key`) on `mountpoint`,
  // writable through `upper.dir` when it is not empty. Refused (kUnauthenticated/kDataLoss/
  // kNotFound/kFailedPrecondition) for another key, a tampered store, a store that lacks the
  // root, or an upper that belongs to another root or container, or is not in the expected
  // state. `id_shift`: ownership as the container's user namespace sees it.
  static Result<std::unique_ptr<SealedRootMount>> Create(
      const std::string& store_dir, const fusefs::RootHash& root_hash, SecretBytes key,
      const std::string& mountpoint, SealedUpper upper,
      const fusefs::FuseMountOptions::IdShift& id_shift = {});
  // Detaches the mount, waits for the serving threads, and makes a persistent upper durable.
  ~SealedRootMount();
  SealedRootMount(const SealedRootMount&) = delete;
  SealedRootMount& operator=(const SealedRootMount&) = delete;

  // The image config as sealed with the root (authenticated by the root hash).
  const std::string& config_json() const { return config_json_; }
  bool writable() const { return writable_; }

 private:
  SealedRootMount() = default;
  std::string mountpoint_;
  std::string config_json_;
  bool writable_ = false;
  std::unique_ptr<fusefs::Filesystem> fs_;
  std::unique_ptr<fusefs::FuseMount> mount_;
  std::thread server_;
};

}  // namespace sealroot::boot
