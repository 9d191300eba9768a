#include "image/src/progress.h"

namespace sealroot::image::internal {
namespace {

constexpr std::uint64_t kProgressStep = 64u << 10;

// Counts bytes as they pass; reports every kProgressStep and at the end.
class ProgressReader final : public Reader {
 public:
  ProgressReader(std::unique_ptr<Reader> inner, const ProgressCallback& cb, ProgressEvent event)
      : inner_(std::move(inner)), cb_(cb), event_(event) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    SR_ASSIGN_OR_RETURN(std::size_t n, inner_->Read(out));
    event_.bytes += n;
    if (event_.bytes - reported_ >= kProgressStep || (n == 0 && event_.bytes != reported_)) {
      reported_ = event_.bytes;
      cb_(event_);
    }
    return n;
  }

 private:
  std::unique_ptr<Reader> inner_;
  const ProgressCallback& cb_;
  ProgressEvent event_;
  std::uint64_t reported_ = 0;
};

}  // namespace

ProgressSource::ProgressSource(ImageSource& inner, const std::vector<Descriptor>& layers,
                               const ProgressCallback& callback)
    : inner_(inner), callback_(callback), count_(layers.size()) {
  MutexLock lock(mu_);
  for (std::size_t i = layers.size(); i-- > 0;) positions_[layers[i].digest.str()].push_back(i);
}

Result<std::unique_ptr<Reader>> ProgressSource::OpenBlob(const Descriptor& descriptor) {
  std::size_t layer = 0;
  {
    MutexLock lock(mu_);
    auto it = positions_.find(descriptor.digest.str());
    if (!callback_ || it == positions_.end()) return inner_.OpenBlob(descriptor);
    layer = it->second.back();  // the lowest position not yet opened (the last one stays)
    if (it->second.size() > 1) it->second.pop_back();
  }
  std::uint64_t total = static_cast<std::uint64_t>(descriptor.size);
  if (inner_.HasLocalCopy(descriptor)) {
    callback_(ProgressEvent{ProgressEvent::Phase::kLayerCached, layer, count_, total, total});
    return inner_.OpenBlob(descriptor);
  }
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, inner_.OpenBlob(descriptor));
  return std::unique_ptr<Reader>(std::make_unique<ProgressReader>(
      std::move(blob), callback_, ProgressEvent{ProgressEvent::Phase::kLayerBytes, layer, count_, 0, total}));
}

void ReportProgress(const PullOptions& options, ProgressEvent::Phase phase, std::size_t i, std::size_t n,
                    std::uint64_t total) {
  if (options.progress) options.progress(ProgressEvent{phase, i, n, 0, total});
}

}  // namespace sealroot::image::internal
