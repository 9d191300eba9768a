// ttrpc servers. A Server owns its listening socket and threads: one accept thread, one reader
// thread per connection, handlers on an Executor, replies written under a per-connection lock
// (calls on one connection may complete out of order; the stream id pairs them up, as in
// containerd/ttrpc). A unix socket is listened on with base/socket.h's policy.
//
// TtrpcService is the whole kit for a daemon with one address (the containerd shim): a server
// with its own Executor and BlockingCallLimit sized from `limits`. The agent, which serves
// several addresses and gRPC over one executor, uses ServeTtrpc with its own.
//
// Thread-safety: Stop and the destructors from the owner; the handler is called from many
// threads.
#pragma once

#include <memory>

#include "base/status.h"
#include "rpc/address.h"
#include "rpc/blocking_calls.h"
#include "rpc/executor.h"
#include "rpc/handler.h"
#include "rpc/limits.h"

namespace sealroot::rpc {

class Server {
 public:
  virtual ~Server() = default;
  // Closes the listener and every connection; returns once no transport thread touches the
  // handler any more (handlers already queued on the Executor still finish there).
  virtual void Stop() = 0;
};

// ttrpc on one unix socket or loopback TCP address. Calls the handler names blocking take a
// slot of `blocking` (per connection and in total) or are refused with kTooManyBlockingCalls.
// `handler`, `limits`, `executor` and `blocking` must outlive the server.
Result<std::unique_ptr<Server>> ServeTtrpc(const ListenAddress& address, const RpcHandler& handler,
                                           const Limits& limits, Executor& executor,
                                           BlockingCallLimit& blocking);

class TtrpcService {
 public:
  static Result<std::unique_ptr<TtrpcService>> Start(const ListenAddress& address, const RpcHandler& handler,
                                                     const Limits& limits = {});
  ~TtrpcService();  // Stop()
  TtrpcService(const TtrpcService&) = delete;
  TtrpcService& operator=(const TtrpcService&) = delete;

  // Lets handlers in flight finish and reply, then closes the socket and every connection.
  void Stop();

  struct Impl;
  explicit TtrpcService(std::unique_ptr<Impl> impl);  // for Start(): Impl is private to it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealroot::rpc
