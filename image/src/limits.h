// The pull's limits on decompressed bytes (design/image.md "Limits"): per layer, per image, and
// the ratio of a layer's decompressed to compressed bytes. They are checked as the bytes stream
// past, so a decompression bomb stops after at most
// max_decompression_ratio × compressed + kRatioAllowance bytes, before its files reach a sink.
//
// Thread-safety: the two readers of one layer may run on different threads (the compressed side
// under a read-ahead); the counters they share are atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "base/reader.h"
#include "image/pull.h"

namespace sealroot::image::internal {

// Bytes any layer may expand to beyond the ratio: small layers are never bombs (an empty tar is
// 10 KiB from a 30-byte gzip stream).
inline constexpr std::uint64_t kRatioAllowance = 1u << 20;

// Shared by the layers of one pull.
struct ImageBudget {
  std::atomic<std::uint64_t> decompressed{0};
};

// One layer: wrap its compressed stream with Compressed(), its decompressed stream with
// Decompressed(). The meter must outlive both readers (they share it).
class LayerMeter : public std::enable_shared_from_this<LayerMeter> {
 public:
  LayerMeter(const PullOptions& options, ImageBudget& budget) : options_(options), budget_(budget) {}

  std::unique_ptr<Reader> Compressed(std::unique_ptr<Reader> in);
  std::unique_ptr<Reader> Decompressed(std::unique_ptr<Reader> in);
  // kResourceExhausted naming the limit when `more` decompressed bytes exceed one.
  Status Add(std::uint64_t more);
  void AddCompressed(std::uint64_t more) { compressed_.fetch_add(more, std::memory_order_relaxed); }

 private:
  const PullOptions& options_;
  ImageBudget& budget_;
  std::atomic<std::uint64_t> compressed_{0};
  std::uint64_t decompressed_ = 0;  // only the decompressed side's thread
};

}  // namespace sealroot::image::internal
