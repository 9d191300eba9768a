// Placeholder: replaced by the issue that builds these commands.
#include <iostream>

#include "agent/cli/commands.h"
#include "base/cli.h"

namespace sealroot::cli {

int Mount(Args) {
  std::cerr << "sealroot: this command is not built yet\n";
  return kExitFailure;
}

int Umount(Args) {
  std::cerr << "sealroot: this command is not built yet\n";
  return kExitFailure;
}

int Fsck(Args) {
  std::cerr << "sealroot: this command is not built yet\n";
  return kExitFailure;
}

int Gc(Args) {
  std::cerr << "sealroot: this command is not built yet\n";
  return kExitFailure;
}

int Df(Args) {
  std::cerr << "sealroot: this command is not built yet\n";
  return kExitFailure;
}

}  // namespace sealroot::cli
