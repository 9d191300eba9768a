// A stage that runs the stages below it on their own thread: a bounded queue of chunks between
// a producer (read blob -> verify -> decrypt -> decompress -> DiffID) and the consumer (the tar
// walk and the sink's file writes), so hashing/decompression and filesystem work overlap.
#include <condition_variable>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "base/thread_annotations.h"
#include "image/stream.h"

namespace sealroot::image {
namespace {

class ReadAhead final : public Reader {
 public:
  ReadAhead(std::unique_ptr<Reader> inner, std::size_t chunk_size, std::size_t max_chunks)
      : inner_(std::move(inner)), chunk_size_(chunk_size), max_chunks_(max_chunks) {
    thread_ = std::thread([this] { Produce(); });
  }

  ~ReadAhead() override {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    if (current_pos_ >= current_.size()) {
      MutexLock lock(mu_);
      while (queue_.empty() && !finished_) changed_.wait(mu_);
      if (queue_.empty()) {
        if (!error_.ok()) return error_;
        return std::size_t{0};
      }
      current_ = std::move(queue_.front());
      queue_.pop_front();
      current_pos_ = 0;
      changed_.notify_all();
    }
    std::size_t n = std::min(out.size(), current_.size() - current_pos_);
    std::memcpy(out.data(), current_.data() + current_pos_, n);
    current_pos_ += n;
    return n;
  }

 private:
  void Produce() {
    while (true) {
      std::vector<std::uint8_t> chunk(chunk_size_);
      std::size_t filled = 0;
      Status error;
      bool eof = false;
      // Fill a whole chunk (stages return what they have, often less) to keep hand-offs rare.
      while (filled < chunk.size()) {
        auto n = inner_->Read(std::span(chunk).subspan(filled));
        if (!n.ok()) {
          error = n.status();
          break;
        }
        if (*n == 0) {
          eof = true;
          break;
        }
        filled += *n;
      }
      chunk.resize(filled);
      MutexLock lock(mu_);
      while (queue_.size() >= max_chunks_ && !stopping_) changed_.wait(mu_);
      if (stopping_) return;
      if (!chunk.empty()) queue_.push_back(std::move(chunk));
      if (!error.ok() || eof) {
        error_ = std::move(error);
        finished_ = true;
      }
      changed_.notify_all();
      if (finished_) return;
    }
  }

  std::unique_ptr<Reader> inner_;  // used only by the producer thread
  const std::size_t chunk_size_;
  const std::size_t max_chunks_;
  Mutex mu_;
  std::condition_variable_any changed_;
  std::deque<std::vector<std::uint8_t>> queue_ SR_GUARDED_BY(mu_);
  Status error_ SR_GUARDED_BY(mu_);
  bool finished_ SR_GUARDED_BY(mu_) = false;
  bool stopping_ SR_GUARDED_BY(mu_) = false;
  std::vector<std::uint8_t> current_;  // consumer side only
  std::size_t current_pos_ = 0;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Reader> MakeReadAhead(std::unique_ptr<Reader> inner, std::size_t chunk_size,
                                      std::size_t max_chunks) {
  return std::make_unique<ReadAhead>(std::move(inner), chunk_size, max_chunks);
}

}  // namespace sealroot::image
