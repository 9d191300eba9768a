// Reading a blob from containerd's content store through its API (containerd.services.content.v1:
// Info for the size, then Read), in a containerd namespace: how the classifier gets an image's
// manifest without reaching the registry.
#pragma once

#include <string>

#include "snapshotter/classify.h"

namespace sealroot::snapshotter {

// Manifests are small; the image library caps them at the same size.
inline constexpr std::int64_t kMaxManifestSize = 4 << 20;

// A reader over containerd's gRPC socket `address` (a path); each read has a 30 s deadline.
ManifestReader ContainerdManifestReader(const std::string& address);

}  // namespace sealroot::snapshotter
