// enclave-agent: the daemon a shim talks to (kata-agent-compatible API over ttrpc and gRPC).
// It runs inside the stub enclave; see design/api.md for its configuration and protocol. In an
// enclave its whole configuration is its measured manifest (--config is refused); only listen
// addresses and the state and store directories come from the command line.
#include <iostream>

#include "agent/server/agent.h"
#include "agent/server/config.h"
#include "base/args.h"
#include "base/cli.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "local-attest/manifest.h"
#include "local-attest/tee.h"

namespace {

using sealroot::agent::AgentConfig;
using sealroot::agent::ListenAddress;

sealroot::Status ApplyOverrides(const sealroot::ArgParser& args, AgentConfig& config) {
  if (args.Has("ttrpc") || args.Has("grpc")) {
    config.ttrpc.clear();
    config.grpc.clear();
  }
  for (const std::string& text : args.GetAll("ttrpc")) {
    SR_ASSIGN_OR_RETURN(ListenAddress address, ListenAddress::Parse(text));
    config.ttrpc.push_back(std::move(address));
  }
  for (const std::string& text : args.GetAll("grpc")) {
    SR_ASSIGN_OR_RETURN(ListenAddress address, ListenAddress::Parse(text));
    if (address.kind != ListenAddress::Kind::kUnix)
      return sealroot::InvalidArgument("--grpc: unix sockets only");
    config.grpc.push_back(std::move(address));
  }
  if (auto dir = args.Get("state-dir")) {
    // The default development seal key lives in the state directory: follow it.
    if (config.sealing.source == "file" && config.sealing.key_file == config.state_dir + "/seal.key") {
      config.sealing.key_file = *dir + "/seal.key";
    }
    config.state_dir = *dir;
  }
  if (auto dir = args.Get("store")) config.store_dir = *dir;
  if (config.ttrpc.empty() && config.grpc.empty())
    return sealroot::InvalidArgument("no listen address configured");
  return sealroot::OkStatus();
}

// In an enclave (a TEE opens), the configuration is the measured manifest and nothing else: a
// host-given file could name other app enclaves, keys and policies. Outside one (development,
// tests), --config FILE.
sealroot::Result<AgentConfig> LoadConfig(const sealroot::ArgParser& args) {
  if (sealroot::local_attest::sgx::OpenTee().ok()) {
    if (args.Has("config")) {
      return sealroot::PermissionDenied(
          "--config: an agent in an enclave reads its configuration only from its measured manifest");
    }
    SR_ASSIGN_OR_RETURN(std::optional<std::string> manifest,
                        sealroot::local_attest::sgx::ReadEnclaveManifest());
    if (!manifest) {
      return sealroot::FailedPrecondition(
          "this enclave has no measured manifest: launch the agent with one (sealroot enclave run --manifest "
          "FILE); it holds the agent's whole configuration");
    }
    return sealroot::agent::ParseAgentManifest(*manifest);
  }
  const bool default_path = !args.Has("config");
  return sealroot::agent::LoadAgentConfig(args.Get("config").value_or(sealroot::agent::kDefaultConfigPath),
                                          default_path);
}

}  // namespace

int main(int argc, char** argv) {
  sealroot::log::SetProgramName("enclave-agent");
  sealroot::log::SetLevel(sealroot::log::Level::kInfo);
  sealroot::ArgParser args(
      "enclave-agent", "",
      "Serve the kata-agent-compatible API (grpc.Image, grpc.AgentService, grpc.Health) over "
      "ttrpc and gRPC.");
  sealroot::cli::AddCommonFlags(args);
  args.Option("config", "FILE",
              std::string("agent configuration outside an enclave (default ") +
                  sealroot::agent::kDefaultConfigPath + "; in an enclave: the measured manifest)");
  args.Option("ttrpc", "ADDR", "ttrpc listen address, unix:///PATH or tcp://127.0.0.1:PORT (repeatable)");
  args.Option("grpc", "ADDR", "gRPC listen address, unix:///PATH (repeatable)");
  args.Option("state-dir", "DIR", "state directory (sealed records, container uppers)");
  args.Option("store", "DIR", "sealed store directory");
  std::vector<std::string> argv_list(argv + 1, argv + argc);
  if (auto exit_code = sealroot::cli::ParseCommandLine(args, argv_list)) return *exit_code;
  if (sealroot::Status s = args.ExpectPositionals(0, 0); !s.ok()) return sealroot::cli::ReportError(args, s);
  sealroot::InstallInterruptHandler();

  auto config = LoadConfig(args);
  if (!config.ok()) return sealroot::cli::ReportError(args, config.status());
  if (sealroot::Status s = ApplyOverrides(args, *config); !s.ok()) return sealroot::cli::ReportError(args, s);

  auto deps = sealroot::agent::MakeDefaultDeps(*config);
  if (!deps.ok()) return sealroot::cli::ReportError(args, deps.status());
  auto agent = sealroot::agent::Agent::Start(*config, std::move(*deps));
  if (!agent.ok()) return sealroot::cli::ReportError(args, agent.status());
  SR_LOG(kInfo) << "enclave-agent " << SEALROOT_VERSION << " serving";
  (*agent)->Wait();
  SR_LOG(kInfo) << "enclave-agent stopping";
  agent->reset();
  return 0;
}
