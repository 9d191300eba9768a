// The blob cache: verified blobs of a remote source kept on disk, so that a later run (after an
// interruption, or for another image sharing layers) does not fetch them again. Private to image/.
//
// Layout: DIR/sha256/<hex>, each file complete and verified: a blob is written under a
// temporary name while it streams and renamed only once its digest and size matched. A cached
// file is verified again before it is used (the cache is the host's disk, not trusted); one that
// fails is removed and the blob fetched anew.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "image/source.h"

namespace sealroot::image::internal {

// Wraps `inner` so that its blobs go through the cache at `dir`
// (created if absent).
Result<std::unique_ptr<ImageSource>> WrapWithBlobCache(std::unique_ptr<ImageSource> inner,
                                                       const std::string& dir);

}  // namespace sealroot::image::internal
