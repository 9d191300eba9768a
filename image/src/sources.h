// The ImageSource factories per transport. Private: callers use OpenImageSource (image/pull.h).
#pragma once

#include <memory>

#include "base/status.h"
#include "image/pull.h"
#include "image/source.h"

namespace sealroot::image::internal {

inline constexpr std::size_t kMaxManifestSize = 4u << 20;  // as containers/image

Result<std::unique_ptr<ImageSource>> OpenOciLayoutSource(const Reference& ref);
// Unpacks the archive's index.json, oci-layout and blobs/sha256/* (nothing else, no links)
// into a private temporary directory, removed with the source.
Result<std::unique_ptr<ImageSource>> OpenOciArchiveSource(const Reference& ref, const PullOptions& options);
Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const Reference& ref, const PullOptions& options);

}  // namespace sealroot::image::internal
