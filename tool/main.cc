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
  out << "Usage: sealroot [OPTIONS] COMMAND [OPTIONS] [ARGS]\n\nCommands:\n";
  for (const Command& c : kCommands) {
    out << "  " << c.name << std::string(14 - c.name.size(), ' ') << c.summary << "\n";
  }
  out << "\n"
         "SOURCE is docker://host[:port]/repo[:tag][@digest] (or host/repo..., a short name searched as\n"
         "registries.conf says), oci:DIR[:TAG] or oci-archive:FILE[:TAG].\n"
         "Signature policy: --policy FILE, else ~/.config/containers/policy.json, else\n"
         "/etc/containers/policy.json; --insecure-policy accepts any image.\n"
         "Registries: --registries-conf FILE, else $CONTAINERS_REGISTRIES_CONF,\n"
         "~/.config/containers/registries.conf or /etc/containers/registries.conf (+ registries.conf.d).\n"
         "Blob cache: $XDG_CACHE_HOME/sealroot/blobs (else ~/.cache/sealroot/blobs); --no-blob-cache.\n"
         "Exit codes: 0 ok, 1 failure, 2 usage error, 3 verification failed, 4 not found, 130 interrupted.\n"
         "\n"
         "Options may come before the command, as skopeo's do (sealroot --insecure-policy inspect\n"
         "SOURCE); they are the command's options. Run 'sealroot COMMAND --help' (or -h) for them.\n";
}

const Command* FindCommand(std::string_view word) {
  for (const Command& c : kCommands) {
    if (c.name == word) return &c;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  sealroot::log::SetProgramName("sealroot");
  sealroot::InstallInterruptHandler();
  if (argc < 2) {
    PrintUsage(std::cerr);
    return sealroot::cli::kExitUsage;
  }
  // Options before the command word ("sealroot --insecure-policy inspect X") are handed to the
  // command ahead of its own arguments; its parser knows them.
  std::vector<std::string> leading;
  int at = 1;
  for (; at < argc && argv[at][0] == '-' && argv[at] != std::string_view("-"); ++at) {
    std::string_view option = argv[at];
    if (option == "--help" || option == "-h") {
      PrintUsage(std::cout);
      return 0;
    }
    if (option == "--version") {
      std::cout << "sealroot " << SEALROOT_VERSION << "\n";
      return 0;
    }
    leading.emplace_back(option);
    // An option's value ("--policy FILE") is the next word, unless that word is a command.
    if (option.find('=') == std::string_view::npos && at + 1 < argc && argv[at + 1][0] != '-' &&
        FindCommand(argv[at + 1]) == nullptr) {
      leading.emplace_back(argv[++at]);
    }
  }
  if (at >= argc) {
    std::cerr << "sealroot: no command given\n";
    PrintUsage(std::cerr);
    return sealroot::cli::kExitUsage;
  }
  std::string_view word = argv[at];
  if (word == "help") {
    PrintUsage(std::cout);
    return 0;
  }
  if (word == "version") {
    std::cout << "sealroot " << SEALROOT_VERSION << "\n";
    return 0;
  }
  std::vector<std::string> args = leading;
  args.insert(args.end(), argv + at + 1, argv + argc);
  if (const Command* c = FindCommand(word)) return c->run(args);
  std::cerr << "sealroot: unknown command '" << word << "'\n";
  PrintUsage(std::cerr);
  return sealroot::cli::kExitUsage;
}
