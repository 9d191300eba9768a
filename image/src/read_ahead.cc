// A stage that runs the stages below it on their own thread: a bounded queue of chunks between
// a producer (the stages below) and the consumer (the stages above), so that their work
// overlaps. The pipeline puts one before decompression and one after it (pull.cc).
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
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
    if (current_pos_ >= current_.size) {
      MutexLock lock(mu_);
      if (current_.bytes) spare_.push_back(std::move(current_.bytes));
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
    std::size_t n = std::min(out.size(), current_.size - current_pos_);
    std::memcpy(out.data(), current_.bytes.get() + current_pos_, n);
    current_pos_ += n;
    return n;
  }

 private:
  struct Chunk {
    std::unique_ptr<std::uint8_t[]> bytes;
    std::size_t size = 0;
  };

  // A buffer the consumer is done with, else a new one: at most max_chunks + 2 ever exist.
  std::unique_ptr<std::uint8_t[]> TakeBuffer() {
    MutexLock lock(mu_);
    if (spare_.empty()) return std::make_unique_for_overwrite<std::uint8_t[]>(chunk_size_);
    std::unique_ptr<std::uint8_t[]> buffer = std::move(spare_.back());
    spare_.pop_back();
    return buffer;
  }

  void Produce() {
    while (true) {
      Chunk chunk{TakeBuffer()};
      std::span<std::uint8_t> buffer(chunk.bytes.get(), chunk_size_);
      Status error;
      bool eof = false;
      // Fill a whole chunk (stages return what they have, often less) to keep hand-offs rare.
      while (chunk.size < buffer.size()) {
        auto n = inner_->Read(buffer.subspan(chunk.size));
        if (!n.ok()) {
          error = n.status();
          break;
        }
        if (*n == 0) {
          eof = true;
          break;
        }
        chunk.size += *n;
      }
      MutexLock lock(mu_);
      while (queue_.size() >= max_chunks_ && !stopping_) changed_.wait(mu_);
      if (stopping_) return;
      if (chunk.size > 0) queue_.push_back(std::move(chunk));
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
  std::deque<Chunk> queue_ SR_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<std::uint8_t[]>> spare_ SR_GUARDED_BY(mu_);
  Status error_ SR_GUARDED_BY(mu_);
  bool finished_ SR_GUARDED_BY(mu_) = false;
  bool stopping_ SR_GUARDED_BY(mu_) = false;
  Chunk current_;  // consumer side only
  std::size_t current_pos_ = 0;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Reader> MakeReadAhead(std::unique_ptr<Reader> inner, std::size_t chunk_size,
                                      std::size_t max_chunks) {
  return std::make_unique<ReadAhead>(std::move(inner), chunk_size, max_chunks);
}

}  // namespace sealroot::image
