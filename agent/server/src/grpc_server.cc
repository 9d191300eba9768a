// The gRPC server: a generic callback service, so every method path — the ones we serve, kata's
// others, and unknown ones — reaches the RpcDispatcher and is answered the same way as over
// ttrpc. Handlers run on the Executor, never on gRPC's callback threads (they may block for a
// whole pull).
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "agent/server/src/servers.h"
#include "base/log.h"
#include "base/socket.h"
#include "rpc/call_context.h"

namespace sealroot::agent {
namespace {

class UnaryReactor final : public ::grpc::ServerGenericBidiReactor {
 public:
  UnaryReactor(::grpc::GenericCallbackServerContext* context, const RpcDispatcher& dispatcher,
               Executor& executor, BlockingCallLimit& blocking)
      : context_(context), dispatcher_(dispatcher), executor_(executor), blocking_(blocking) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    Result<std::pair<std::string, std::string>> names = rpc::SplitMethodPath(context_->method());
    if (!names.ok()) {
      Finish(::grpc::Status(::grpc::StatusCode::UNIMPLEMENTED, "bad method path"));
      return;
    }
    if (dispatcher_.IsBlocking(names->first, names->second)) {
      slot_ = blocking_.TryAcquire(nullptr);
      if (!slot_) {
        Finish(::grpc::Status(::grpc::StatusCode::RESOURCE_EXHAUSTED, rpc::kTooManyBlockingCalls));
        return;
      }
    }
    bool queued = executor_.Submit([this, names = std::move(*names)] { Handle(names.first, names.second); });
    if (!queued)
      Finish(::grpc::Status(::grpc::StatusCode::RESOURCE_EXHAUSTED, "too many requests in flight"));
  }

  void OnWriteDone(bool /*ok*/) override {}
  // The client went away (or the deadline passed): a blocking handler gives up.
  void OnCancel() override { *cancelled_ = true; }
  void OnDone() override { delete this; }  // gRPC's reactor contract: the reactor owns itself

 private:
  void Handle(const std::string& service, const std::string& method) {
    std::string payload;
    std::vector<::grpc::Slice> slices;
    if (request_.Dump(&slices).ok()) {
      for (const ::grpc::Slice& s : slices)
        payload.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    RpcReply reply;
    {
      rpc::CallScope call(cancelled_);
      reply = dispatcher_.Call(service, method, payload);
    }
    if (!reply.status.ok()) {
      Finish(::grpc::Status(static_cast<::grpc::StatusCode>(reply.status.code()), reply.status.message()));
      return;
    }
    ::grpc::Slice slice(reply.payload);
    response_ = ::grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_, ::grpc::WriteOptions(), ::grpc::Status::OK);
  }

  ::grpc::GenericCallbackServerContext* context_;
  const RpcDispatcher& dispatcher_;
  Executor& executor_;
  BlockingCallLimit& blocking_;
  std::unique_ptr<BlockingCallLimit::Slot> slot_;  // released with the reactor (OnDone)
  const std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  ::grpc::ByteBuffer request_;
  ::grpc::ByteBuffer response_;
};

class GenericService final : public ::grpc::CallbackGenericService {
 public:
  GenericService(const RpcDispatcher& dispatcher, Executor& executor, BlockingCallLimit& blocking)
      : dispatcher_(dispatcher), executor_(executor), blocking_(blocking) {}
  ::grpc::ServerGenericBidiReactor* CreateReactor(::grpc::GenericCallbackServerContext* context) override {
    return new UnaryReactor(context, dispatcher_, executor_, blocking_);  // deleted in OnDone
  }

 private:
  const RpcDispatcher& dispatcher_;
  Executor& executor_;
  BlockingCallLimit& blocking_;
};

class GrpcServer final : public Server {
 public:
  GrpcServer(std::unique_ptr<GenericService> service, std::unique_ptr<::grpc::Server> server)
      : service_(std::move(service)), server_(std::move(server)) {}
  ~GrpcServer() override { Stop(); }
  void Stop() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }

 private:
  std::unique_ptr<GenericService> service_;
  std::unique_ptr<::grpc::Server> server_;
};

}  // namespace

Result<std::unique_ptr<Server>> ServeGrpc(const std::vector<ListenAddress>& addresses,
                                          const RpcDispatcher& dispatcher, const Limits& limits,
                                          Executor& executor, BlockingCallLimit& blocking) {
  auto service = std::make_unique<GenericService>(dispatcher, executor, blocking);
  ::grpc::ServerBuilder builder;
  for (const ListenAddress& address : addresses) {
    if (address.kind != ListenAddress::Kind::kUnix) return InvalidArgument("gRPC serves unix sockets only");
    SR_RETURN_IF_ERROR(PrepareUnixSocketPath(address.path));
    builder.AddListeningPort("unix:" + address.path, ::grpc::InsecureServerCredentials());
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.max_message_size));
  builder.SetMaxSendMessageSize(static_cast<int>(limits.max_message_size));
  builder.RegisterCallbackGenericService(service.get());
  // gRPC creates the socket files itself: make them 0600 from the start. Agent startup is
  // single-threaded as far as file creation goes, so the process-wide umask change is safe here.
  mode_t old_mask = umask(0177);
  std::unique_ptr<::grpc::Server> server = builder.BuildAndStart();
  umask(old_mask);
  if (!server) return Unavailable("gRPC server failed to start on the configured sockets");
  for (const ListenAddress& address : addresses) SR_LOG(kInfo) << "gRPC listening on " << address.ToString();
  return std::unique_ptr<Server>(std::make_unique<GrpcServer>(std::move(service), std::move(server)));
}

}  // namespace sealroot::agent
