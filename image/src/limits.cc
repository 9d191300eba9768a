#include "image/src/limits.h"

#include <algorithm>
#include <string>

namespace sealroot::image::internal {
namespace {

class CountingReader final : public Reader {
 public:
  CountingReader(std::unique_ptr<Reader> in, std::shared_ptr<LayerMeter> meter)
      : in_(std::move(in)), meter_(std::move(meter)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    SR_ASSIGN_OR_RETURN(std::size_t n, in_->Read(out));
    meter_->AddCompressed(n);
    return n;
  }

 private:
  std::unique_ptr<Reader> in_;
  std::shared_ptr<LayerMeter> meter_;
};

class LimitingReader final : public Reader {
 public:
  LimitingReader(std::unique_ptr<Reader> in, std::shared_ptr<LayerMeter> meter)
      : in_(std::move(in)), meter_(std::move(meter)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    SR_ASSIGN_OR_RETURN(std::size_t n, in_->Read(out));
    SR_RETURN_IF_ERROR(meter_->Add(n));
    return n;
  }

 private:
  std::unique_ptr<Reader> in_;
  std::shared_ptr<LayerMeter> meter_;
};

Status Exceeded(const std::string& what, const char* limit, std::uint64_t value) {
  return ResourceExhausted(what + ": exceeds the limit " + limit + " = " + std::to_string(value) +
                           " (a decompression bomb?)");
}

}  // namespace

std::unique_ptr<Reader> LayerMeter::Compressed(std::unique_ptr<Reader> in) {
  return std::make_unique<CountingReader>(std::move(in), shared_from_this());
}

std::unique_ptr<Reader> LayerMeter::Decompressed(std::unique_ptr<Reader> in) {
  return std::make_unique<LimitingReader>(std::move(in), shared_from_this());
}

Status LayerMeter::Add(std::uint64_t more) {
  decompressed_ += more;
  const std::uint64_t image = budget_.decompressed.fetch_add(more, std::memory_order_relaxed) + more;
  const std::uint64_t compressed = compressed_.load(std::memory_order_relaxed);
  // Saturating: a ratio times a huge compressed size must not wrap around.
  const std::uint64_t ratio = std::max<std::uint64_t>(options_.max_decompression_ratio, 1);
  const std::uint64_t allowed =
      compressed > (UINT64_MAX - kRatioAllowance) / ratio ? UINT64_MAX : compressed * ratio + kRatioAllowance;
  auto layer = [&] {
    return "the layer's " + std::to_string(decompressed_) + " decompressed bytes (from " +
           std::to_string(compressed) + " compressed)";
  };
  if (decompressed_ > options_.max_layer_size)
    return Exceeded(layer(), "max_layer_size", options_.max_layer_size);
  if (decompressed_ > allowed) return Exceeded(layer(), "max_decompression_ratio", ratio);
  if (image > options_.max_image_size) {
    return Exceeded("the image's " + std::to_string(image) + " decompressed bytes", "max_image_size",
                    options_.max_image_size);
  }
  return OkStatus();
}

}  // namespace sealroot::image::internal
