// AgentClient: the pod's enclave-agent over ttrpc (the kata-compatible API of design/api.md).
// Each call opens its own connection, so calls from many threads never wait on each other
// (a WaitProcess or a ReadStdout blocks for as long as the container runs).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "agent.pb.h"
#include "base/status.h"
#include "rpc/address.h"

namespace sealroot::shim {

class AgentClient {
 public:
  explicit AgentClient(rpc::ListenAddress address) : address_(std::move(address)) {}

  Status Health() const;
  // Returns the digest-pinned reference.
  Result<std::string> PullImage(const std::string& image, const std::string& container_id) const;
  Status CreateSandbox(const std::string& sandbox_id, const std::string& hostname) const;
  Status DestroySandbox() const;
  Status CreateContainer(const ::grpc::CreateContainerRequest& request) const;
  Status StartContainer(const std::string& container_id) const;
  Status RemoveContainer(const std::string& container_id) const;
  Status ExecProcess(const ::grpc::ExecProcessRequest& request) const;
  Status SignalProcess(const std::string& container_id, const std::string& exec_id,
                       std::uint32_t signal) const;
  Result<std::int32_t> WaitProcess(const std::string& container_id, const std::string& exec_id) const;
  // Up to `max_len` bytes of stdout (or stderr); empty at end of stream.
  Result<std::string> Read(const std::string& container_id, const std::string& exec_id, bool stderr_stream,
                           std::uint32_t max_len) const;
  Result<std::uint32_t> WriteStdin(const std::string& container_id, const std::string& exec_id,
                                   std::string_view data) const;
  Status CloseStdin(const std::string& container_id, const std::string& exec_id) const;
  Result<::grpc::StatsContainerResponse> StatsContainer(const std::string& container_id) const;
  Status UpdateContainer(const ::grpc::UpdateContainerRequest& request) const;

  const rpc::ListenAddress& address() const { return address_; }

 private:
  Result<std::string> Call(std::string_view service, std::string_view method,
                           const google::protobuf::Message& request) const;
  rpc::ListenAddress address_;
};

}  // namespace sealroot::shim
