// Placeholder: replaced by the issue that builds these commands.
#include <iostream>

#include "agent/cli/commands.h"
#include "base/cli.h"

namespace sealroot::cli {

int Ctl(Args) {
  std::cerr << "sealroot: this command is not built yet\n";
  return kExitFailure;
}

}  // namespace sealroot::cli
