// Pod: one pod's stub enclave. The shim launches enclave-agent through the sim launcher
// (`sealroot enclave run`, with the agent's SIGSTRUCT, layout and measured manifest: its whole
// configuration) with only the pod's own ttrpc socket, state directory and sealed store on its
// command line. The agent listens on that unix socket only.
//
//   <state_root>/<pod key>/            agent state (sealed), store/, agent.log, launcher.pid
//   <socket_root>/<pod key>.agent      the agent's ttrpc socket
//
// The pod key is a digest of (namespace, pod id), so that containerd's delete command, which
// knows only the bundle, finds the same directories (PodPaths).
//
// Thread-safety: const methods from any thread; Stop once, by the owner.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "base/status.h"
#include "shim/agent_client.h"
#include "shim/config.h"
#include "shim/spec.h"

namespace sealroot::shim {

struct PodPaths {
  std::string dir;
  std::string agent_socket;
  std::string launcher_pid_file;
};
PodPaths PodPathsFor(const ShimConfig& config, std::string_view ns, std::string_view pod_id);

class Pod {
 public:
  // Launches the agent and waits until it answers Health.Check (or exits: its log is quoted).
  static Result<std::unique_ptr<Pod>> Launch(const ShimConfig& config, const std::string& ns,
                                             const std::string& pod_id);
  ~Pod();  // Stop()
  Pod(const Pod&) = delete;
  Pod& operator=(const Pod&) = delete;

  const AgentClient& agent() const { return agent_; }
  pid_t pid() const { return launcher_pid_; }
  // DestroySandbox (the agent replies, then exits cleanly), waits for the launcher; a launcher
  // that does not exit in time is killed. Removes the pod's directories.
  Status Stop();

 private:
  Pod(PodPaths paths, pid_t launcher_pid);
  Status WaitLauncher(std::chrono::milliseconds timeout);
  PodPaths paths_;
  pid_t launcher_pid_;
  bool stopped_ = false;
  AgentClient agent_;
};

// Cleanup after a dead shim (containerd's `delete`): kills the pod's launcher and agent if they
// still run, unmounts what is left under the pod's directory and removes it.
Status CleanupPod(const PodPaths& paths);

// The pause process of a pod sandbox: a child of the shim, outside any enclave, that holds the
// pod's namespaces (`namespaces`: joined or new; a new network namespace gets its loopback up, a
// new uts namespace `hostname`) and nothing else, and waits for SIGTERM/SIGINT (exit 0) or
// SIGKILL; it dies with the shim. A namespace it cannot take on fails the spawn.
Result<pid_t> SpawnPause(const std::string& self_executable, std::span<const PodNamespace> namespaces,
                         const std::string& hostname);
// Its main (the shim's hidden `pause` subcommand).
int PauseMain();

}  // namespace sealroot::shim
