// Where images come from: one ImageSource per transport (registry, OCI layout, oci-archive).
// Sources return exact bytes; blob readers verify digest and size as they stream.
//
// Thread-safety: an ImageSource may be used from several threads at once (parallel layer
// downloads); each returned Reader is used by one thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/reader.h"
#include "base/status.h"
#include "image/digest.h"
#include "image/reference.h"

namespace sealroot::image {

struct ManifestBytes {
  std::string bytes;       // exactly as received
  std::string media_type;  // from Content-Type / the index descriptor / the body's mediaType
  Digest digest;           // sha256 of `bytes`
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual const Reference& reference() const = 0;
  // True when blobs come over the network, so fetching later layers ahead pays off.
  virtual bool IsRemote() const { return false; }
  // True when OpenBlob(descriptor) will read a local copy (the blob cache) instead of fetching.
  virtual bool HasLocalCopy(const Descriptor& /*descriptor*/) const { return false; }
  // Fetches a manifest or index by tag or by digest string. For a digest, the bytes are
  // verified against it (kDataLoss on mismatch).
  virtual Result<ManifestBytes> GetManifest(std::string_view tag_or_digest) = 0;
  // Opens a blob for streaming. The reader yields at most descriptor.size bytes and fails with
  // kDataLoss at end of stream when the size or the sha256 does not match the descriptor.
  virtual Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& descriptor) = 0;
};

}  // namespace sealroot::image
