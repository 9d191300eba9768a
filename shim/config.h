// The shim's configuration: a JSON file (default /etc/sealroot/shim.json, or the path containerd
// passes in the runtime options' ConfigPath). It names the programs a pod's stub enclave runs
// and where each pod keeps its state; design/shim.md documents every key. The agent's whole
// configuration is its measured manifest, passed to each pod's stub enclave unchanged.
//
// Thread-safety: a value type.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace sealroot::shim {

inline constexpr char kDefaultConfigPath[] = "/etc/sealroot/shim.json";

// An enclave executable and the SIGSTRUCT it was signed with, for the layout the SIGSTRUCT covers.
struct EnclaveProgram {
  std::string executable;
  std::string sigstruct;
  std::uint64_t heap_size = 64ull << 20;
  std::uint32_t threads = 4;
};

struct ShimConfig {
  std::string launcher = "/usr/bin/sealroot";  // runs `sealroot enclave run` (the sim launcher)
  EnclaveProgram agent;                        // enclave-agent, one per pod
  EnclaveProgram boot;                         // sealroot-boot: must match the manifest's "boot"
  // The agent's measured manifest (`enclave run --manifest`): its whole configuration, part of
  // MRENCLAVE, so the agent's SIGSTRUCT is made with it.
  std::string manifest;
  std::string state_root = "/var/lib/sealroot/pods";  // per pod: state, sealed store, log
  std::string socket_root = "/run/sealroot/s";        // the shims' and agents' sockets (short paths)
  std::string image_annotation = "io.kubernetes.cri.image-name";
  std::chrono::milliseconds agent_start_timeout{60'000};
  std::string log_level = "info";
};

Result<ShimConfig> ParseShimConfig(std::string_view json_text);
// A missing file is an error: the shim cannot run a pod without an agent to launch.
Result<ShimConfig> LoadShimConfig(const std::string& path);

}  // namespace sealroot::shim
