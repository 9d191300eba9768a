// TtrpcService: the agent's ttrpc server for other daemons built on it (the containerd shim
// serves containerd.task.v2.Task with it). One listening address; each request goes to
// `handler` on the service's own executor, as in the agent (design/api.md "Protocol").
//
// Thread-safety: Stop and the destructor from the owner; `handler` is called from many threads.
#pragma once

#include <memory>

#include "agent/server/config.h"
#include "agent/server/dispatcher.h"
#include "base/status.h"

namespace sealroot::agent {

class TtrpcService {
 public:
  // Listens on `address` (a unix socket is created 0600, replacing a stale socket file).
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

}  // namespace sealroot::agent
