// The call a request handler serves, as far as blocking waits need to know: whether it is still
// wanted. A transport opens a CallScope around each handler with the call's cancel flag (ttrpc:
// the connection's, set when it closes; gRPC: the call's, set by OnCancel, which gRPC also calls
// when the client's deadline passes) and its deadline (ttrpc: the request's timeout_nano). Waits
// that may last (WaitProcess, ReadStdout) poll CallStatus() and give up with what it says, so a
// client that went away or stopped waiting no longer holds a request thread.
//
// Thread-safety: the flag is shared and atomic; the scope is per thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

#include "base/status.h"

namespace sealroot::rpc {

using CancelFlag = std::shared_ptr<const std::atomic<bool>>;
using CallDeadline = std::optional<std::chrono::steady_clock::time_point>;

class CallScope {
 public:
  // `deadline`: none, the call waits as long as its client stays.
  explicit CallScope(CancelFlag cancelled, CallDeadline deadline = std::nullopt);
  ~CallScope();
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  CancelFlag cancelled_;
  const std::atomic<bool>* previous_cancelled_;
  CallDeadline previous_deadline_;
};

// OK while the current thread's call is wanted (and outside any call); kCancelled once its
// client went away, kDeadlineExceeded once its deadline passed. `what` names the wait.
Status CallStatus(std::string_view what);

}  // namespace sealroot::rpc
