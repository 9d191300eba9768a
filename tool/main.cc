// sealroot — the standalone tool: pull, verify, decrypt and unpack images; seal, mount and check
// sealed roots; enclave tooling; and `ctl`, a client of the enclave-agent API.
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/cli.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "tool/src/commands.h"

namespace {

struct Command {
  std::string_view name;
  int (*run)(sealroot::tool::Args);
  std::string_view summary;
};

constexpr Command kCommands[] = {
    {"unpack", sealroot::tool::Unpack, "pull, verify and unpack an image into a bundle or a sealed store"},
    {"pull", sealroot::tool::Pull, "copy an image, verified, into an OCI layout"},
    {"inspect", sealroot::tool::Inspect, "show an image's manifest, config, layers, signatures"},
    {"mount", sealroot::tool::Mount, "mount a sealed root (FUSE)"},
    {"umount", sealroot::tool::Umount, "unmount a sealed root"},
    {"fsck", sealroot::tool::Fsck, "verify every object of a sealed root"},
    {"gc", sealroot::tool::Gc, "remove roots neither named nor mounted, and what only they used"},
    {"roots", sealroot::tool::Roots, "list, name and unname a sealed store's roots (ls|add|rm)"},
    {"df", sealroot::tool::Df, "show a store's space usage"},
    {"keyprovider", sealroot::tool::KeyProvider,
     "the owner's key broker: KBS attestation protocol (--kbs), or unwrapping for anyone (--dev-unwrap)"},
    {"enclave", sealroot::tool::Enclave, "measure, sign, verify and run (simulated) enclaves"},
    {"ctl", sealroot::tool::Ctl,
     "talk to an enclave-agent, as ctr does (pull, create, start, exec, ps, ...)"},
};

void PrintUsage(std::ostream& out) {
  out << "Usage: sealroot COMMAND [OPTIONS] [ARGS]\n\nCommands:\n";
  for (const Command& c : kCommands) {
    out << "  " << c.name << std::string(14 - c.name.size(), ' ') << c.summary << "\n";
  }
  out << "\nRun 'sealroot COMMAND --help' for a command's options.\n";
}

}  // namespace

int main(int argc, char** argv) {
  sealroot::log::SetProgramName("sealroot");
  sealroot::InstallInterruptHandler();
  if (argc < 2) {
    PrintUsage(std::cerr);
    return sealroot::cli::kExitUsage;
  }
  std::string_view word = argv[1];
  if (word == "--help" || word == "-h" || word == "help") {
    PrintUsage(std::cout);
    return 0;
  }
  if (word == "--version" || word == "version") {
    std::cout << "sealroot " << SEALROOT_VERSION << "\n";
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (c.name == word) return c.run(args);
  }
  std::cerr << "sealroot: unknown command '" << word << "'\n";
  PrintUsage(std::cerr);
  return sealroot::cli::kExitUsage;
}
