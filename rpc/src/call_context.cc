#include "rpc/call_context.h"

#include <string>
#include <utility>

namespace sealroot::rpc {
namespace {

// Trivially destructible on purpose: a thread_local with a destructor registers it with the C
// library on first use, and the scope owns what the pointer points at anyway.
thread_local const std::atomic<bool>* current_cancelled = nullptr;
thread_local CallDeadline current_deadline;

}  // namespace

CallScope::CallScope(CancelFlag cancelled, CallDeadline deadline)
    : cancelled_(std::move(cancelled)),
      previous_cancelled_(std::exchange(current_cancelled, cancelled_.get())),
      previous_deadline_(std::exchange(current_deadline, deadline)) {}

CallScope::~CallScope() {
  current_cancelled = previous_cancelled_;
  current_deadline = previous_deadline_;
}

Status CallStatus(std::string_view what) {
  if (current_cancelled && current_cancelled->load()) {
    return Cancelled(std::string(what) + ": the client went away");
  }
  if (current_deadline && std::chrono::steady_clock::now() >= *current_deadline) {
    return DeadlineExceeded(std::string(what) + ": the call's deadline passed");
  }
  return OkStatus();
}

}  // namespace sealroot::rpc
