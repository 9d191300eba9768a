// containerd-shim-sealroot-v2: the containerd runtime v2 shim that runs a pod's containers in a
// sealroot stub enclave (design/shim.md). Invoked by containerd; see shim/bootstrap.h.
#include <iostream>

#include "base/log.h"
#include "shim/bootstrap.h"
#include "shim/pod.h"

int main(int argc, char** argv) {
  sealroot::log::SetProgramName("containerd-shim-sealroot-v2");
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = sealroot::shim::ParseShimFlags(args);
  if (!flags.ok()) {
    std::cerr << "containerd-shim-sealroot-v2: " << flags.status().message() << "\n";
    return 2;
  }
  const std::string& action = flags->action;
  if (action == "start") return sealroot::shim::StartCommand(*flags);
  if (action == "delete") return sealroot::shim::DeleteCommand(*flags);
  if (action == "serve") return sealroot::shim::ServeCommand(*flags);
  if (action == "pause") return sealroot::shim::PauseMain();
  if (action == "version") {
    std::cout << "containerd-shim-sealroot-v2 " << SEALROOT_VERSION << "\n";
    return 0;
  }
  std::cerr << "usage: containerd-shim-sealroot-v2 -namespace NS -address ADDR -id ID start|delete\n";
  return 2;
}
