// The runc differential harness: Debian's runc 1.1 is the oracle for container isolation. Each
// case starts from `runc spec`'s config.json, changes what it is about, and runs
// tests/boot/runc_probe.sh, which prints one normalised "field: value" line per observation
// (capabilities, no_new_privs, seccomp, namespaces, ids, mounts, masked and read-only paths,
// /dev, mknod, the host's loopback, limits). tests/boot/runc_diff_test.cc compares runc with
// sealroot-boot's development form, tests/e2e/runc_diff_agent_test.cc with a container started
// through the agent. Functions throw std::runtime_error when a tool fails (a fixture bug).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fd.h"
#include "tests/support/process.h"

namespace sealroot::testing::runc_diff {

// The probe's root, the same for every runtime: busybox with its applets, /etc/passwd (root),
// /etc/group (root, tty) and /probe.sh.
void MakeProbeRoot(const std::string& dir);

// A copy of `root` at `dir` owned by the ids a user namespace's root maps to
// (kUserNamespaceHostId), as a rootless runtime has its root. Kept if it exists.
void MakeUserNamespaceRoot(const std::string& root, const std::string& dir);

// A TCP listener on the host's 127.0.0.1: a container with its own network must not reach it.
class LoopbackListener {
 public:
  LoopbackListener();
  int port() const { return port_; }

 private:
  UniqueFd fd_;
  int port_ = 0;
};

// `runc spec`'s default config.json (written into `work_dir`) running the probe on `root`, with
// the host's namespace inodes (HOST_NS_<type>), `port` (HOST_PORT) and no extra checks
// (PROBE_EXTRA) in its environment; not a terminal.
nlohmann::json ProbeSpec(const std::string& work_dir, const std::string& root, int port);

// The cases, each a change to a ProbeSpec.
// CAP_NET_ADMIN, CAP_MKNOD and CAP_SYS_PTRACE added; CAP_KILL inheritable and ambient;
// noNewPrivileges off.
void AddCapabilities(nlohmann::json& spec);
// A new user namespace mapping 0..65535 to kUserNamespaceHostId.. (uid and gid).
constexpr std::uint32_t kUserNamespaceHostId = 100000;
void AddUserNamespace(nlohmann::json& spec);
// A seccomp profile allowing everything but mkdir and mkdirat, which fail with EACCES.
void DenyMkdirWithErrno(nlohmann::json& spec);
// memory.limit and swap 64 MiB, pids.limit 20; the probe allocates past the memory limit and
// forks past the pids limit.
void LimitMemoryAndPids(nlohmann::json& spec);
// hostname "probe-host", namespaced sysctls (net.ipv4.ip_forward, kernel.shmmni), oomScoreAdj
// 500, and a writable root.
void SetHostnameSysctlsOomScore(nlohmann::json& spec);
// A terminal of 33x101 running TerminalProbeArgs() instead of the probe.
void UseTerminal(nlohmann::json& spec);
// What a terminal looks like from inside: stdio, size, the slave's name, owner and mode, the
// session, the controlling terminal, the line settings; stderr goes to the pty too.
std::vector<std::string> TerminalProbeArgs();

// Runs `spec` with `runc run` (its bundle under `work_dir`) and deletes the container.
CommandResult RunRunc(const nlohmann::json& spec, const std::string& work_dir);
// Runs a terminal `spec` with `runc run -d --console-socket` (its pty master handed over the
// socket, as containerd's shim has it); returns what the container wrote to its terminal.
std::string RunRuncWithConsole(const nlohmann::json& spec, const std::string& work_dir);

// The lines only runc printed ("- ") and only the other runtime printed ("+ "), for failure
// messages; "" when the outputs are equal.
std::string DiffLines(const std::string& runc, const std::string& other);

}  // namespace sealroot::testing::runc_diff
