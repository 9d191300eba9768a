#include "tool/src/agent_client.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "rpc/ttrpc.h"

namespace sealroot::tool {
namespace {

class TtrpcAgentClient final : public AgentClient {
 public:
  explicit TtrpcAgentClient(std::unique_ptr<rpc::ttrpc::Client> client) : client_(std::move(client)) {}
  Result<std::string> Call(std::string_view service, std::string_view method,
                           std::string_view payload) override {
    return client_->Call(service, method, payload);
  }

 private:
  std::unique_ptr<rpc::ttrpc::Client> client_;
};

class GrpcAgentClient final : public AgentClient {
 public:
  explicit GrpcAgentClient(std::shared_ptr<::grpc::Channel> channel)
      : channel_(std::move(channel)), stub_(channel_) {}

  Result<std::string> Call(std::string_view service, std::string_view method,
                           std::string_view payload) override {
    const std::string path = "/" + std::string(service) + "/" + std::string(method);
    ::grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
    ::grpc::Slice slice(payload.data(), payload.size());
    ::grpc::ByteBuffer request(&slice, 1);
    ::grpc::CompletionQueue queue;
    std::unique_ptr<::grpc::GenericClientAsyncResponseReader> call =
        stub_.PrepareUnaryCall(&context, path, request, &queue);
    call->StartCall();
    ::grpc::ByteBuffer response;
    ::grpc::Status status;
    call->Finish(&response, &status, this);
    void* tag = nullptr;
    bool ok = false;
    if (!queue.Next(&tag, &ok) || !ok) return Unavailable(path + ": the gRPC call did not complete");
    queue.Shutdown();
    while (queue.Next(&tag, &ok)) {
    }
    if (!status.ok()) return Status(static_cast<Code>(status.error_code()), status.error_message());
    std::vector<::grpc::Slice> slices;
    if (!response.Dump(&slices).ok()) return Internal(path + ": unreadable gRPC response");
    std::string out;
    for (const ::grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
    return out;
  }

 private:
  std::shared_ptr<::grpc::Channel> channel_;
  ::grpc::GenericStub stub_;
};

}  // namespace

Result<std::unique_ptr<AgentClient>> ConnectAgent(const AgentEndpoint& endpoint) {
  if (endpoint.grpc) {
    if (!endpoint.address.starts_with("unix:///"))
      return InvalidArgument("--grpc: the agent serves gRPC on unix sockets only (unix:///PATH), got '" +
                             endpoint.address + "'");
    auto channel = ::grpc::CreateChannel(endpoint.address, ::grpc::InsecureChannelCredentials());
    return std::unique_ptr<AgentClient>(std::make_unique<GrpcAgentClient>(std::move(channel)));
  }
  SR_ASSIGN_OR_RETURN(rpc::ListenAddress address, rpc::ListenAddress::Parse(endpoint.address));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<rpc::ttrpc::Client> client, rpc::ttrpc::Client::Connect(address));
  return std::unique_ptr<AgentClient>(std::make_unique<TtrpcAgentClient>(std::move(client)));
}

}  // namespace sealroot::tool
