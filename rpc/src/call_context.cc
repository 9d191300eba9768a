#include "rpc/call_context.h"

#include <string>
#include <utility>

namespace sealroot::rpc {
namespace {

thread_local CancelFlag current_cancelled;
thread_local CallDeadline current_deadline;

}  // namespace

CallScope::CallScope(CancelFlag cancelled, CallDeadline deadline)
    : previous_cancelled_(std::exchange(current_cancelled, std::move(cancelled))),
      previous_deadline_(std::exchange(current_deadline, deadline)) {}

CallScope::~CallScope() {
  current_cancelled = std::move(previous_cancelled_);
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
