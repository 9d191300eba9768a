#include "rpc/blocking_calls.h"

namespace sealroot::rpc {

bool BlockingCallLimit::TryIncrement(std::atomic<std::size_t>& count, std::size_t max) {
  std::size_t seen = count.load();
  do {
    if (seen >= max) return false;
  } while (!count.compare_exchange_weak(seen, seen + 1));
  return true;
}

std::unique_ptr<BlockingCallLimit::Slot> BlockingCallLimit::TryAcquire(
    std::shared_ptr<std::atomic<std::size_t>> connection) {
  if (connection != nullptr && !TryIncrement(*connection, max_per_connection_)) return nullptr;
  if (!TryIncrement(total_, max_total_)) {
    if (connection != nullptr) --*connection;
    return nullptr;
  }
  return std::make_unique<Slot>(total_, std::move(connection));
}

BlockingCallLimit::Slot::~Slot() {
  --total_;
  if (connection_ != nullptr) --*connection_;
}

}  // namespace sealroot::rpc
