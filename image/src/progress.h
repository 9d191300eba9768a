// Progress of the bytes that really arrive: an ImageSource decorator that reports, per layer,
// the compressed bytes read from the wrapped source (the network, for a registry) as they come,
// whichever thread fetches them (the pipeline or a fetch-ahead worker). Bytes read back from
// the spool or the blob cache are not counted again, so the counts and the rate are the link's.
// Private to image/.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "base/thread_annotations.h"
#include "image/pull.h"

namespace sealroot::image::internal {

class ProgressSource final : public ImageSource {
 public:
  // `inner` and `callback` must outlive this. Blobs that are not among `layers` (the config)
  // are passed through unreported.
  ProgressSource(ImageSource& inner, const std::vector<Descriptor>& layers, const ProgressCallback& callback);

  const Reference& reference() const override { return inner_.reference(); }
  bool IsRemote() const override { return inner_.IsRemote(); }
  bool HasLocalCopy(const Descriptor& descriptor) const override { return inner_.HasLocalCopy(descriptor); }
  Result<ManifestBytes> GetManifest(std::string_view tag_or_digest) override {
    return inner_.GetManifest(tag_or_digest);
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& descriptor) override;

 private:
  ImageSource& inner_;
  const ProgressCallback& callback_;
  std::size_t count_;
  Mutex mu_;
  // Layer digest -> its positions (an image may repeat a layer); each open takes the next.
  std::map<std::string, std::vector<std::size_t>> positions_ SR_GUARDED_BY(mu_);
};

// Reports `phase` for layer `i` of `n` (total = its compressed size) when there is a callback.
void ReportProgress(const PullOptions& options, ProgressEvent::Phase phase, std::size_t i = 0,
                    std::size_t n = 0, std::uint64_t total = 0);

}  // namespace sealroot::image::internal
