// The container's sealed root, served by this process: the store opened read-only, the image
// root verified from its root hash, and a FUSE mount of it served on libfuse's threads until
// this object dies.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "base/secret.h"
#include "base/status.h"
#include "fusefs/fuse_mount.h"
#include "fusefs/sealed_tree.h"

namespace sealroot::boot {

class SealedRootMount {
 public:
  // Mounts root `root_hash` of the store at `store_dir` (opened with `key`) on `mountpoint`.
  // Refused (kUnauthenticated/kDataLoss/kNotFound) for another key, a tampered store, or a
  // store that lacks the root.
  static Result<std::unique_ptr<SealedRootMount>> Create(const std::string& store_dir,
                                                         const sealfs::RootHash& root_hash, SecretBytes key,
                                                         const std::string& mountpoint);
  // Detaches the mount and waits for the serving threads.
  ~SealedRootMount();
  SealedRootMount(const SealedRootMount&) = delete;
  SealedRootMount& operator=(const SealedRootMount&) = delete;

  // The image config as sealed with the root (authenticated by the root hash).
  const std::string& config_json() const { return tree_->config_json(); }

 private:
  SealedRootMount() = default;
  std::string mountpoint_;
  std::unique_ptr<sealfs::SealedTree> tree_;
  std::unique_ptr<sealfs::FuseMount> mount_;
  std::thread server_;
};

}  // namespace sealroot::boot
