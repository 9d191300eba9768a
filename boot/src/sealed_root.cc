#include "boot/src/sealed_root.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace sealroot::boot {

Result<std::unique_ptr<SealedRootMount>> SealedRootMount::Create(const std::string& store_dir,
                                                                 const sealfs::RootHash& root_hash,
                                                                 SecretBytes key,
                                                                 const std::string& mountpoint) {
  const std::string ctx = "sealed root in " + store_dir;
  auto store = sealfs::Store::Open(store_dir, /*create=*/false, sealfs::StoreLock::kNone);
  if (!store.ok()) return std::move(store).status().WithContext(ctx);
  auto store_key = sealfs::StoreKey::Create(std::move(key));
  if (!store_key.ok()) return std::move(store_key).status().WithContext(ctx);
  std::shared_ptr<const sealfs::Store> shared_store = std::move(*store);
  auto shared_key = std::make_shared<const sealfs::StoreKey>(std::move(*store_key));

  auto out = std::unique_ptr<SealedRootMount>(new SealedRootMount());
  auto tree = sealfs::SealedTree::Open(shared_store, shared_key, root_hash);
  if (!tree.ok()) return std::move(tree).status().WithContext(ctx);
  out->tree_ = std::move(*tree);
  sealfs::FuseMountOptions options;
  options.mountpoint = mountpoint;
  options.fsname = "sealroot";
  auto mount = sealfs::FuseMount::Create(*out->tree_, options);
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
}

}  // namespace sealroot::boot
