// The call a request handler serves, as far as blocking waits need to know: whether its client
// is still there. A transport opens a CallScope around each handler with the call's cancel
// flag (ttrpc: the connection's, set when it closes; gRPC: the call's, set by OnCancel); waits
// that may last (WaitProcess) poll CallCancelled() and give up, so a client that went away
// stops holding a request thread.
//
// Thread-safety: the flag is shared and atomic; the scope is per thread.
#pragma once

#include <atomic>
#include <memory>

namespace sealroot::rpc {

using CancelFlag = std::shared_ptr<const std::atomic<bool>>;

class CallScope {
 public:
  explicit CallScope(CancelFlag cancelled);
  ~CallScope();
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  CancelFlag previous_;
};

// True when the current thread's call was abandoned by its client (false outside any call).
bool CallCancelled();

}  // namespace sealroot::rpc
