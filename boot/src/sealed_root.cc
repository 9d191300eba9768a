#include "boot/src/sealed_root.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include "base/encoding.h"
#include "base/log.h"
#include "fusefs/sealed_tree.h"
#include "fusefs/store.h"
#include "fusefs/store_key.h"
#include "fusefs/upper.h"

namespace sealroot::boot {

Result<std::unique_ptr<SealedRootMount>> SealedRootMount::Create(
    const std::string& store_dir, const fusefs::RootHash& root_hash, SecretBytes key,
    const std::string& mountpoint, SealedUpper upper, const fusefs::FuseMountOptions::IdShift& id_shift) {
  const std::string ctx = "sealed root " + HexEncode(root_hash) + " in " + store_dir;
  auto store = fusefs::Store::Open(store_dir, /*create=*/false, fusefs::StoreLock::kNone);
  if (!store.ok()) return std::move(store).status().WithContext(ctx);
  auto store_key = fusefs::StoreKey::Create(std::move(key));
  if (!store_key.ok()) return std::move(store_key).status().WithContext(ctx);
  std::shared_ptr<const fusefs::Store> shared_store = std::move(*store);
  auto shared_key = std::make_shared<const fusefs::StoreKey>(std::move(*store_key));

  auto out = std::unique_ptr<SealedRootMount>(new SealedRootMount());
  auto tree = fusefs::SealedTree::OpenRoot(shared_store, shared_key, root_hash);
  if (!tree.ok()) return std::move(tree).status().WithContext(ctx);
  out->config_json_ = (*tree)->config_json();
  if (upper.dir.empty()) {
    out->fs_ = std::move(*tree);
  } else {
    // The upper is sealed under the container's own key, never the image's shared store key.
    auto upper_key = fusefs::StoreKey::Create(std::move(upper.key));
    if (!upper_key.ok()) return std::move(upper_key).status().WithContext(ctx + ": upper key");
    fusefs::UpperOptions options;
    options.dir = upper.dir;
    options.owner = std::move(upper.owner);
    options.expected_state = upper.expected_root;
    options.expect_fresh = !upper.expected_root;
    options.on_commit = std::move(upper.report);
    auto fs = fusefs::UnionFs::Open(std::move(*tree),
                                    std::make_shared<const fusefs::StoreKey>(std::move(*upper_key)),
                                    root_hash, options);
    if (!fs.ok()) return std::move(fs).status().WithContext(ctx + ": upper " + upper.dir);
    out->fs_ = std::move(*fs);
    out->writable_ = true;
  }
  fusefs::FuseMountOptions options;
  options.mountpoint = mountpoint;
  options.fsname = "sealroot";
  options.read_only = !out->writable_;
  options.id_shift = id_shift;
  // The container's root behaves as runc's does: setuid binaries of the image run as their
  // owner (unless no_new_privs), device nodes open as far as the devices cgroup allows. The
  // mount lives only in the boot's and the container's private mount namespaces.
  options.suid_and_dev = true;
  auto mount = fusefs::FuseMount::Create(*out->fs_, options);
  if (!mount.ok()) return std::move(mount).status().WithContext(ctx);
  out->mount_ = std::move(*mount);
  out->mountpoint_ = mountpoint;
  out->server_ = std::thread([m = out->mount_.get()] {
    if (Status served = m->Serve(); !served.ok()) {
      SR_LOG(kError) << "serving the sealed root: " << served.message();
    }
  });
  return out;
}

SealedRootMount::~SealedRootMount() {
  // A detached FUSE mount loses its connection once no namespace uses it any more (the
  // container's went with its init), which ends libfuse's loop.
  if (::umount2(mountpoint_.c_str(), MNT_DETACH) != 0) {
    SR_LOG(kWarning) << "unmounting " << mountpoint_ << ": " << std::strerror(errno);
  }
  if (server_.joinable()) server_.join();
  if (writable_) {
    auto committed = static_cast<fusefs::UnionFs&>(*fs_).Commit();
    if (!committed.ok()) {
      SR_LOG(kError) << "committing the container's upper: " << committed.status().message();
    } else {
      SR_LOG(kInfo) << "upper committed, state " << HexEncode(*committed);
    }
  }
}

}  // namespace sealroot::boot
