// sealroot-boot — the app enclave's second stage: run the container's entrypoint from its root.
// Development form (a plain directory as root, no attestation):
//   sealroot-boot --rootfs DIR --spec FILE [--spec-digest HEX] [--in-memory-upper]
// Exits with the entrypoint's exit code (128+N when signal N killed it); setup failures exit with
// the codes of base/cli.h and say why on stderr.
#include <iostream>
#include <string>
#include <vector>

#include "base/cli.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/log.h"
#include "boot/container.h"
#include "boot/process_spec.h"

namespace {

using namespace sealroot;

Result<boot::ContainerOptions> LoadOptions(const ArgParser& args) {
  auto rootfs = args.Get("rootfs");
  auto spec_path = args.Get("spec");
  if (!rootfs || !spec_path) return InvalidArgument("--rootfs and --spec are required");
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(*spec_path));
  if (auto expected = args.Get("spec-digest")) {
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> want, HexDecode(*expected));
    Sha256Digest got = boot::BootSpecDigest(text);
    if (!ConstantTimeEqual(want, got)) {
      return PermissionDenied("boot spec " + *spec_path + " does not match the released digest");
    }
  }
  SR_ASSIGN_OR_RETURN(boot::BootSpec spec, boot::ParseBootSpec(text));
  boot::ContainerOptions options;
  SR_ASSIGN_OR_RETURN(options.process, boot::ResolveProcess(spec));
  options.root = *rootfs;
  options.hostname = spec.hostname;
  options.in_memory_upper = args.Bool("in-memory-upper");
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  log::SetProgramName("sealroot-boot");
  ArgParser args("sealroot-boot", "",
                 "Run a container's entrypoint from its root (the app enclave's second stage).");
  cli::AddCommonFlags(args);
  args.Option("rootfs", "DIR", "the container's root directory");
  args.Option("spec", "FILE", "the boot spec (JSON, design/boot.md)");
  args.Option("spec-digest", "HEX", "refuse a spec whose SHA-256 differs");
  args.Flag("in-memory-upper", "leave the root untouched: writes go to a tmpfs layer");
  if (argc >= 2 && std::string_view(argv[1]) == "--version") {
    std::cout << "sealroot-boot " << SEALROOT_VERSION << "\n";
    return 0;
  }
  std::vector<std::string> list(argv + 1, argv + argc);
  if (auto exit_code = cli::ParseCommandLine(args, list)) return *exit_code;

  auto options = LoadOptions(args);
  if (!options.ok()) return cli::ReportError(args, options.status());
  if (Status entered = boot::EnterContainerNamespaces(); !entered.ok())
    return cli::ReportError(args, entered);
  auto exit_code = boot::RunContainer(*options);
  if (!exit_code.ok()) return cli::ReportError(args, exit_code.status());
  return *exit_code;
}
