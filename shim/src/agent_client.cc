#include "shim/agent_client.h"

#include "health.pb.h"
#include "image.pb.h"
#include "rpc/ttrpc.h"

namespace sealroot::shim {
namespace {

constexpr char kAgentService[] = "grpc.AgentService";

template <typename Response>
Result<Response> Parse(Result<std::string> bytes, std::string_view method) {
  if (!bytes.ok()) return std::move(bytes).status();
  Response response;
  if (!response.ParseFromString(*bytes))
    return Internal(std::string(method) + ": malformed reply from the agent");
  return response;
}

}  // namespace

Result<std::string> AgentClient::Call(std::string_view service, std::string_view method,
                                      const google::protobuf::Message& request) const {
  SR_ASSIGN_OR_RETURN(auto client, rpc::ttrpc::Client::Connect(address_));
  // No deadline of our own: a pull or a wait lasts as long as it lasts; containerd bounds its calls.
  Result<std::string> reply =
      client->Call(service, method, request.SerializeAsString(), std::chrono::hours(24 * 365));
  if (!reply.ok()) return std::move(reply).status().WithContext("agent " + std::string(method));
  return reply;
}

Status AgentClient::Health() const {
  return Call("grpc.Health", "Check", ::grpc::CheckRequest()).status();
}

Result<std::string> AgentClient::PullImage(const std::string& image, const std::string& container_id) const {
  ::grpc::PullImageRequest request;
  request.set_image(image);
  request.set_container_id(container_id);
  SR_ASSIGN_OR_RETURN(
      auto reply, Parse<::grpc::PullImageResponse>(Call("grpc.Image", "PullImage", request), "PullImage"));
  return reply.image_ref();
}

Status AgentClient::CreateSandbox(const std::string& sandbox_id, const std::string& hostname) const {
  ::grpc::CreateSandboxRequest request;
  request.set_sandbox_id(sandbox_id);
  request.set_hostname(hostname);
  return Call(kAgentService, "CreateSandbox", request).status();
}

Status AgentClient::DestroySandbox() const {
  return Call(kAgentService, "DestroySandbox", ::grpc::DestroySandboxRequest()).status();
}

Status AgentClient::CreateContainer(const ::grpc::CreateContainerRequest& request) const {
  return Call(kAgentService, "CreateContainer", request).status();
}

Status AgentClient::StartContainer(const std::string& container_id) const {
  ::grpc::StartContainerRequest request;
  request.set_container_id(container_id);
  return Call(kAgentService, "StartContainer", request).status();
}

Status AgentClient::RemoveContainer(const std::string& container_id) const {
  ::grpc::RemoveContainerRequest request;
  request.set_container_id(container_id);
  return Call(kAgentService, "RemoveContainer", request).status();
}

Status AgentClient::ExecProcess(const ::grpc::ExecProcessRequest& request) const {
  return Call(kAgentService, "ExecProcess", request).status();
}

Status AgentClient::SignalProcess(const std::string& container_id, const std::string& exec_id,
                                  std::uint32_t signal) const {
  ::grpc::SignalProcessRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  request.set_signal(signal);
  return Call(kAgentService, "SignalProcess", request).status();
}

Result<std::int32_t> AgentClient::WaitProcess(const std::string& container_id,
                                              const std::string& exec_id) const {
  ::grpc::WaitProcessRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  SR_ASSIGN_OR_RETURN(auto reply, Parse<::grpc::WaitProcessResponse>(
                                      Call(kAgentService, "WaitProcess", request), "WaitProcess"));
  return reply.status();
}

Result<std::string> AgentClient::Read(const std::string& container_id, const std::string& exec_id,
                                      bool stderr_stream, std::uint32_t max_len) const {
  ::grpc::ReadStreamRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  request.set_len(max_len);
  const char* method = stderr_stream ? "ReadStderr" : "ReadStdout";
  SR_ASSIGN_OR_RETURN(auto reply,
                      Parse<::grpc::ReadStreamResponse>(Call(kAgentService, method, request), method));
  return std::move(*reply.mutable_data());
}

Result<std::uint32_t> AgentClient::WriteStdin(const std::string& container_id, const std::string& exec_id,
                                              std::string_view data) const {
  ::grpc::WriteStreamRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  request.set_data(std::string(data));
  SR_ASSIGN_OR_RETURN(auto reply, Parse<::grpc::WriteStreamResponse>(
                                      Call(kAgentService, "WriteStdin", request), "WriteStdin"));
  return reply.len();
}

Status AgentClient::CloseStdin(const std::string& container_id, const std::string& exec_id) const {
  ::grpc::CloseStdinRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  return Call(kAgentService, "CloseStdin", request).status();
}

Result<::grpc::StatsContainerResponse> AgentClient::StatsContainer(const std::string& container_id) const {
  ::grpc::StatsContainerRequest request;
  request.set_container_id(container_id);
  return Parse<::grpc::StatsContainerResponse>(Call(kAgentService, "StatsContainer", request),
                                               "StatsContainer");
}

Status AgentClient::UpdateContainer(const ::grpc::UpdateContainerRequest& request) const {
  return Call(kAgentService, "UpdateContainer", request).status();
}

}  // namespace sealroot::shim
