// A private containerd 1.6 (Debian's) with the sealroot runtime, for the shim's tests: its own
// root, state, socket and config.toml in a temp dir (restrict_oom_score_adj, the CRI runtime
// `sealroot`), the built containerd-shim-sealroot-v2 on its PATH; and the material a pod's stub
// enclave needs: sealroot-boot and enclave-agent signed by a test key with their measured
// manifests (two agent manifests: two image owners' workload policies), the shim's configs, a
// loopback registry with busybox images whose default commands the tests run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace sealroot::testing::shim {

// The one pod command other than the image's that the owner's policy allows.
inline const std::vector<std::string> kOwnerAllowedCommand = {"sh", "-c", "echo owner-allowed; exit 4"};

// What volume_image writes into its volume (computed by its shell: the image config does not
// hold it).
inline constexpr char kVolumeMarker[] = "sealed-42-marker";

// Built once per test binary.
struct Material {
  Material();
  TempDir dir;
  Registry registry;
  std::string hello_image;    // prints a line with its working directory and exits 3
  std::string sleeper_image;  // prints "started", then sleeps
  std::string
      plain_image;  // prints "hello from cri" and exits 5 (not encrypted: the CRI pulls it on the host too)
  std::string limits_image;        // prints its cgroup's memory limit and exits 6
  std::string namespaces_image;    // prints its network, ipc and uts namespaces and its hostname
  std::string volume_image;        // writes kVolumeMarker to /data/marker, then sleeps
  std::string shim_config;         // no workload policy: the image's own command, no exec
  std::string policy_shim_config;  // the policy allows kOwnerAllowedCommand, three exec commands and
                                   // the volume /data
  std::string socket_root;
};
Material& M();

class Containerd {
 public:
  // `extra_config` is appended to config.toml (e.g. proxy_plugins, more CRI runtimes).
  explicit Containerd(bool cri = false, const std::string& extra_config = "");
  ~Containerd();
  // `ctr --address SOCK ARGS...` (namespace "shimtest" unless args name one).
  CommandResult Ctr(const std::vector<std::string>& args,
                    std::chrono::seconds timeout = std::chrono::seconds(180),
                    const std::string& stdin_data = "");
  // The `ctr run` arguments for the sealroot runtime, `image` named by annotation, an empty rootfs.
  std::vector<std::string> RunArgs(const std::string& image, const std::string& id,
                                   const std::string& shim_config = "") const;
  void Restart();
  std::string Log() const;
  const std::string& socket() const { return socket_; }
  const std::string& root() const { return dir_.path(); }

 private:
  void Start();
  TempDir dir_;
  std::string socket_;
  std::string bridge_;  // the CNI bridge of a CRI containerd (a host network interface)
  std::unique_ptr<BackgroundProcess> process_;
};

// Processes whose command line mentions `needle` (e.g. a pod's directory).
std::vector<int> ProcessesMentioning(const std::string& needle);
// The same after waiting up to 5 s for them to exit: a shim finishes its cleanup (the `delete`
// containerd runs) after the client's command has returned.
std::vector<int> ProcessesStillMentioning(const std::string& needle);
// A process's command line, its arguments separated by spaces (for failure messages).
std::string CommandLineOf(int pid);

}  // namespace sealroot::testing::shim
