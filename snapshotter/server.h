// The gRPC server containerd reaches as a proxy snapshotter (`[proxy_plugins.NAME] type =
// "snapshot"`): containerd.services.snapshots.v1.Snapshots over the Store. A Prepare that
// containerd's unpacker makes for a layer (label containerd.io/snapshot.ref) of an image the
// Classifier calls confidential records a committed placeholder and answers ALREADY_EXISTS, so
// containerd neither fetches nor unpacks that layer; everything else is overlayfs.
//
// Thread-safety: calls run on gRPC's threads; Store and Classifier are thread-safe.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "snapshotter/classify.h"
#include "snapshotter/store.h"

namespace sealroot::snapshotter {

class Server {
 public:
  virtual ~Server() = default;
  // Stops accepting calls and waits (a few seconds at most) for those in flight.
  virtual void Shutdown() = 0;
};

// Listens on the unix socket `address` (created 0600, its directory 0700). `store` and
// `classifier` must outlive the server.
Result<std::unique_ptr<Server>> Serve(const std::string& address, Store& store, const Classifier& classifier);

}  // namespace sealroot::snapshotter
