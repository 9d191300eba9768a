#include "rpc/server.h"

namespace sealroot::rpc {

struct TtrpcService::Impl {
  explicit Impl(const Limits& l)
      : limits(l),
        executor(l.max_requests_in_flight, l.max_requests_in_flight),
        blocking(l.max_blocking_calls, l.max_blocking_calls_per_connection) {}
  const Limits limits;
  Executor executor;
  BlockingCallLimit blocking;
  std::unique_ptr<Server> server;
};

Result<std::unique_ptr<TtrpcService>> TtrpcService::Start(const ListenAddress& address,
                                                          const RpcHandler& handler, const Limits& limits) {
  auto impl = std::make_unique<Impl>(limits);
  SR_ASSIGN_OR_RETURN(impl->server,
                      ServeTtrpc(address, handler, impl->limits, impl->executor, impl->blocking));
  return std::make_unique<TtrpcService>(std::move(impl));
}

TtrpcService::TtrpcService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TtrpcService::~TtrpcService() {
  Stop();
}

void TtrpcService::Stop() {
  if (!impl_->server) return;
  impl_->executor.Shutdown();
  impl_->server->Stop();
  impl_->server.reset();
}

}  // namespace sealroot::rpc
