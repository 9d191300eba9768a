// BlockingCallLimit: bounds the calls that can wait for a long time (a process's exit, its
// output, a pull, an app enclave's attestation) per connection and in total, below the number
// of request threads, so that such calls can never take every thread: Health.Check and the
// other quick calls always find one. A call beyond either bound is refused at once with
// RESOURCE_EXHAUSTED instead of being queued.
//
// Thread-safety: TryAcquire and the slots' release may run on any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

namespace sealroot::rpc {

// What a refused call is told.
inline constexpr char kTooManyBlockingCalls[] =
    "too many blocking calls (waits, stream reads, pulls...) in flight, on this connection or in total";

// Which calls count is the handler's answer (RpcHandler::IsBlocking).
class BlockingCallLimit {
 public:
  BlockingCallLimit(std::size_t max_total, std::size_t max_per_connection)
      : max_total_(max_total), max_per_connection_(max_per_connection) {}

  // Held while a blocking call runs; releases both counts when destroyed.
  class Slot {
   public:
    Slot(std::atomic<std::size_t>& total, std::shared_ptr<std::atomic<std::size_t>> connection)
        : total_(total), connection_(std::move(connection)) {}
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    std::atomic<std::size_t>& total_;
    std::shared_ptr<std::atomic<std::size_t>> connection_;
  };

  // A slot counted against the total and `connection`'s count (nullptr: the total only), or
  // nullptr when either bound is reached. The limit must outlive its slots.
  std::unique_ptr<Slot> TryAcquire(std::shared_ptr<std::atomic<std::size_t>> connection);

 private:
  static bool TryIncrement(std::atomic<std::size_t>& count, std::size_t max);

  const std::size_t max_total_;
  const std::size_t max_per_connection_;
  std::atomic<std::size_t> total_{0};
};

}  // namespace sealroot::rpc
