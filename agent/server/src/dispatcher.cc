#include "agent/server/dispatcher.h"

#include <algorithm>
#include <array>
#include <functional>

#include "base/log.h"

namespace sealroot::agent {
namespace {

using Handler = std::function<RpcReply(AgentService&, std::string_view)>;

// Parses the request type of `method`, calls it, serializes its reply.
template <typename Request, typename Response>
Handler Unary(Result<Response> (AgentService::*method)(const Request&), std::string_view name) {
  return [method, name](AgentService& service, std::string_view payload) -> RpcReply {
    Request request;
    if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return {InvalidArgument(std::string(name) + ": malformed request (not a " +
                              std::string(Request::descriptor()->full_name()) + ")"),
              {}};
    }
    Result<Response> response = (service.*method)(request);
    if (!response.ok()) return {std::move(response).status(), {}};
    return {OkStatus(), response->SerializeAsString()};
  };
}

struct Route {
  std::string_view service;
  std::string_view method;
  Handler handler;
};

const std::vector<Route>& Routes() {
  using S = AgentService;
  static const std::vector<Route> routes = {
      {"grpc.Image", "PullImage", Unary(&S::PullImage, "PullImage")},
      {"grpc.Health", "Check", Unary(&S::Check, "Check")},
      {"grpc.Health", "Version", Unary(&S::Version, "Version")},
      {"grpc.AgentService", "CreateSandbox", Unary(&S::CreateSandbox, "CreateSandbox")},
      {"grpc.AgentService", "DestroySandbox", Unary(&S::DestroySandbox, "DestroySandbox")},
      {"grpc.AgentService", "CreateContainer", Unary(&S::CreateContainer, "CreateContainer")},
      {"grpc.AgentService", "StartContainer", Unary(&S::StartContainer, "StartContainer")},
      {"grpc.AgentService", "RemoveContainer", Unary(&S::RemoveContainer, "RemoveContainer")},
      {"grpc.AgentService", "ExecProcess", Unary(&S::ExecProcess, "ExecProcess")},
      {"grpc.AgentService", "SignalProcess", Unary(&S::SignalProcess, "SignalProcess")},
      {"grpc.AgentService", "WaitProcess", Unary(&S::WaitProcess, "WaitProcess")},
      {"grpc.AgentService", "ReadStdout", Unary(&S::ReadStdout, "ReadStdout")},
      {"grpc.AgentService", "ReadStderr", Unary(&S::ReadStderr, "ReadStderr")},
      {"grpc.AgentService", "WriteStdin", Unary(&S::WriteStdin, "WriteStdin")},
      {"grpc.AgentService", "CloseStdin", Unary(&S::CloseStdin, "CloseStdin")},
      {"grpc.AgentService", "TtyWinResize", Unary(&S::TtyWinResize, "TtyWinResize")},
      {"grpc.AgentService", "ListContainers", Unary(&S::ListContainers, "ListContainers")},
      {"grpc.AgentService", "UpdateContainer", Unary(&S::UpdateContainer, "UpdateContainer")},
      {"grpc.AgentService", "StatsContainer", Unary(&S::StatsContainer, "StatsContainer")},
  };
  return routes;
}

// kata-agent 3.x AgentService methods that a process-based enclave agent has no use for (VM
// networking, hotplug, guest memory, metrics...).
constexpr std::array<std::string_view, 24> kUnservedKataMethods = {
    "MemHotplugByProbe", "UpdateEphemeralMounts",
    "PauseContainer",    "ResumeContainer",
    "UpdateInterface",   "UpdateRoutes",
    "ListInterfaces",    "ListRoutes",
    "AddARPNeighbors",   "GetIPTables",
    "SetIPTables",       "GetMetrics",
    "OnlineCPUMem",      "ReseedRandomDev",
    "GetGuestDetails",   "SetGuestDateTime",
    "CopyFile",          "GetOOMEvent",
    "AddSwap",           "GetVolumeStats",
    "ResizeVolume",      "SetPolicy",
    "MemAgentMemcgSet",  "MemAgentCompactSet",
};

}  // namespace

RpcReply RpcDispatcher::Call(std::string_view service, std::string_view method,
                             std::string_view payload) const {
  for (const Route& route : Routes()) {
    if (route.service == service && route.method == method) return route.handler(service_, payload);
  }
  std::string name = std::string(service) + "/" + std::string(method);
  if (service == "grpc.AgentService" && std::find(kUnservedKataMethods.begin(), kUnservedKataMethods.end(),
                                                  method) != kUnservedKataMethods.end()) {
    return {Unimplemented(name + " is not implemented by the sealroot enclave-agent (process-based enclaves "
                                 "have no guest VM to manage)"),
            {}};
  }
  SR_LOG(kDebug) << "unknown method " << name.substr(0, 200);
  return {Unimplemented("unknown method " + name.substr(0, 200)), {}};
}

bool RpcDispatcher::IsBlocking(std::string_view service, std::string_view method) const {
  // Calls that wait for a process, a stream, a pull or an app enclave's attestation.
  static constexpr std::array<std::string_view, 7> kBlockingAgentMethods = {
      "WaitProcess",     "ReadStdout",     "ReadStderr",  "WriteStdin",
      "CreateContainer", "StartContainer", "ExecProcess",
  };
  if (service == "grpc.Image") return method == "PullImage";
  return service == "grpc.AgentService" &&
         std::find(kBlockingAgentMethods.begin(), kBlockingAgentMethods.end(), method) !=
             kBlockingAgentMethods.end();
}

}  // namespace sealroot::agent
