// The shim's command line, as containerd 1.6 runs it (runtime v2):
//
//   containerd-shim-sealroot-v2 -namespace NS -address SOCK -publish-binary BIN -id ID start
//       (cwd = bundle; runtime options on stdin; TTRPC_ADDRESS in the environment) prints the
//       ttrpc address of the pod's shim, starting it unless the pod (io.kubernetes.cri.sandbox-id)
//       has one already, and writes it to the bundle's `address` file.
//   containerd-shim-sealroot-v2 -namespace NS -address SOCK -id ID -bundle DIR delete
//       cleans up after a dead shim; prints a containerd.task.v2.DeleteResponse.
//
// `serve` (the daemon `start` spawns) and `pause` (a pod's pause process) are internal.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace sealroot::shim {

struct ShimFlags {
  std::string ns;
  std::string containerd_address;
  std::string publish_binary;
  std::string id;
  std::string bundle;
  std::string socket;       // serve: the address to listen on
  std::string config_path;  // serve: the shim config the start command found
  bool debug = false;
  std::string action;  // start | delete | serve | pause | "" (version)
};

Result<ShimFlags> ParseShimFlags(const std::vector<std::string>& args);

int StartCommand(const ShimFlags& flags);
int DeleteCommand(const ShimFlags& flags);
int ServeCommand(const ShimFlags& flags);

}  // namespace sealroot::shim
