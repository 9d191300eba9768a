// sealroot-boot — the app enclave's second stage: run the container's entrypoint from its root.
//
// As the agent launches it, inside a (sim) enclave:
//   sealroot-boot --attest-socket SOCK --store DIR --spec FILE --scratch DIR [--upper DIR]
//                 [--exec-socket SOCK]
// The stub (agent) it accepts keys from comes from its measured manifest, {"stub": {"mrenclave",
// "mrsigner", "isv_prod_id", "min_isv_svn"}} (launched with one, the flags below are refused);
// without a manifest (development) from
//                 [--stub-prod-id N] [--stub-min-svn N] [--stub-mrsigner HEX] [--stub-mrenclave HEX]
// For development, with a plain directory as root and no attestation:
//   sealroot-boot --rootfs DIR --spec FILE [--spec-digest HEX] [--in-memory-upper]
//
// Exits with the entrypoint's exit code (128+N when signal N killed it); when the container
// cannot start, exits with the codes of base/cli.h and says why on stderr.
#include <unistd.h>

#include <charconv>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/cli.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/log.h"
#include "boot/attested.h"
#include "boot/container.h"
#include "boot/spec/process_spec.h"
#include "local-attest/manifest.h"

namespace {

using namespace sealroot;

Result<local_attest::sgx::Measurement> ParseMeasurement(const std::string& flag, const std::string& hex) {
  if (!IsLowerHex(hex, 64)) return InvalidArgument("--" + flag + ": expected 64 lowercase hex characters");
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, HexDecode(hex));
  local_attest::sgx::Measurement out;
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

Result<std::uint16_t> ParseU16(const ArgParser& args, const std::string& flag) {
  std::uint16_t value = 0;
  std::string text = args.Get(flag).value_or("0");
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    return InvalidArgument("--" + flag + ": expected 0..65535");
  return value;
}

// The stub identity of the boot's measured manifest; nullopt when launched without one.
Result<std::optional<boot::StubIdentity>> ManifestStub() {
  SR_ASSIGN_OR_RETURN(std::optional<std::string> manifest, local_attest::sgx::ReadEnclaveManifest());
  if (!manifest) return std::optional<boot::StubIdentity>();
  using nlohmann::json;
  json doc = json::parse(*manifest, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || doc.size() != 1 || !doc.contains("stub") ||
      !doc["stub"].is_object())
    return InvalidArgument("boot manifest: expected {\"stub\": {...}}");
  boot::StubIdentity stub;
  for (const auto& [key, value] : doc["stub"].items()) {
    if (key == "mrenclave" || key == "mrsigner") {
      if (!value.is_string()) return InvalidArgument("boot manifest: stub." + key + " is a hex string");
      SR_ASSIGN_OR_RETURN(local_attest::sgx::Measurement m,
                          ParseMeasurement("stub." + key, value.get<std::string>()));
      (key == "mrenclave" ? stub.mr_enclave : stub.mr_signer) = m;
    } else if (key == "isv_prod_id" || key == "min_isv_svn") {
      if (!value.is_number_unsigned() || value.get<std::uint64_t>() > 0xffff)
        return InvalidArgument("boot manifest: stub." + key + " is 0..65535");
      (key == "isv_prod_id" ? stub.isv_prod_id : stub.min_isv_svn) = value.get<std::uint16_t>();
    } else {
      return InvalidArgument("boot manifest: unknown key stub." + key);
    }
  }
  return std::optional<boot::StubIdentity>(stub);
}

Result<boot::ContainerOptions> DirectoryRootOptions(const ArgParser& args, const std::string& spec_path) {
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(spec_path));
  if (auto expected = args.Get("spec-digest")) {
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> want, HexDecode(*expected));
    if (!ConstantTimeEqual(want, boot::BootSpecDigest(text))) {
      return PermissionDenied("boot spec " + spec_path + " does not match the released digest");
    }
  }
  SR_ASSIGN_OR_RETURN(boot::BootSpec spec, boot::ParseBootSpec(text));
  boot::ContainerOptions options;
  SR_ASSIGN_OR_RETURN(options.process, boot::ResolveProcess(spec));
  options.root = *args.Get("rootfs");
  options.container_id = "dev-" + std::to_string(::getpid());
  options.spec = std::move(spec);
  options.spec_text = std::move(text);
  options.in_memory_upper = args.Bool("in-memory-upper");
  return options;
}

Result<boot::AttestedBootOptions> AttestedOptions(const ArgParser& args, const std::string& spec_path) {
  boot::AttestedBootOptions options;
  options.socket_path = *args.Get("attest-socket");
  auto store = args.Get("store");
  auto scratch = args.Get("scratch");
  if (!store || !scratch) return InvalidArgument("--attest-socket needs --store and --scratch");
  options.store_dir = *store;
  options.scratch_dir = *scratch;
  options.spec_path = spec_path;
  options.upper_dir = args.Get("upper").value_or("");
  options.exec_socket = args.Get("exec-socket").value_or("");
  SR_ASSIGN_OR_RETURN(std::optional<boot::StubIdentity> measured, ManifestStub());
  if (measured) {
    for (const char* flag : {"stub-prod-id", "stub-min-svn", "stub-mrsigner", "stub-mrenclave"}) {
      if (args.Has(flag)) {
        return PermissionDenied(
            std::string("--") + flag +
            ": this boot's stub identity comes from its measured manifest, not its command line");
      }
    }
    options.stub = *measured;
    return options;
  }
  SR_LOG(kInfo) << "no measured manifest: the stub identity comes from the command line (development form)";
  SR_ASSIGN_OR_RETURN(options.stub.isv_prod_id, ParseU16(args, "stub-prod-id"));
  SR_ASSIGN_OR_RETURN(options.stub.min_isv_svn, ParseU16(args, "stub-min-svn"));
  if (auto hex = args.Get("stub-mrsigner")) {
    SR_ASSIGN_OR_RETURN(options.stub.mr_signer, ParseMeasurement("stub-mrsigner", *hex));
  }
  if (auto hex = args.Get("stub-mrenclave")) {
    SR_ASSIGN_OR_RETURN(options.stub.mr_enclave, ParseMeasurement("stub-mrenclave", *hex));
  }
  return options;
}

Result<int> Run(const ArgParser& args) {
  auto spec_path = args.Get("spec");
  if (!spec_path) return InvalidArgument("--spec is required");
  if (args.Has("attest-socket") == args.Has("rootfs")) {
    return InvalidArgument("give exactly one of --attest-socket (enclave) and --rootfs (development)");
  }
  if (args.Has("rootfs")) {
    SR_ASSIGN_OR_RETURN(boot::ContainerOptions options, DirectoryRootOptions(args, *spec_path));
    SR_RETURN_IF_ERROR(boot::EnterContainerNamespaces());
    return boot::RunContainer(options);
  }
  SR_ASSIGN_OR_RETURN(boot::AttestedBootOptions options, AttestedOptions(args, *spec_path));
  // Before anything can start a thread: unsharing a mount namespace needs a single thread.
  SR_RETURN_IF_ERROR(boot::EnterContainerNamespaces());
  SR_ASSIGN_OR_RETURN(std::unique_ptr<local_attest::sgx::Tee> tee, local_attest::sgx::OpenTee());
  return boot::RunAttestedBoot(*tee, options);
}

}  // namespace

int main(int argc, char** argv) {
  // The container's init: a fresh exec of this program, holding nothing of the boot's memory.
  if (argc == 2 && std::string_view(argv[1]) == boot::kInitFlag) return boot::RunContainerInitMode();
  log::SetProgramName("sealroot-boot");
  if (argc >= 2 && std::string_view(argv[1]) == "--version") {
    std::cout << "sealroot-boot " << SEALROOT_VERSION << "\n";
    return 0;
  }
  ArgParser args("sealroot-boot", "",
                 "Run a container's entrypoint from its root (the app enclave's second stage).");
  cli::AddCommonFlags(args);
  args.Option("spec", "FILE", "the boot spec (JSON, design/boot.md)");
  args.Option("attest-socket", "PATH", "the agent's key-release socket for this container");
  args.Option("store", "DIR", "the sealed store holding the container's root");
  args.Option("scratch", "DIR", "an empty directory for the boot's private mounts");
  args.Option("upper", "DIR", "the container's persistent writable layer (default: in memory)");
  args.Option("exec-socket", "PATH", "serve the agent's authenticated exec requests there");
  args.Option("stub-prod-id", "N", "the agent enclave's ISVPRODID (default 0)");
  args.Option("stub-min-svn", "N", "the agent enclave's minimum ISVSVN (default 0)");
  args.Option("stub-mrsigner", "HEX", "the agent enclave's MRSIGNER (default: this enclave's own)");
  args.Option("stub-mrenclave", "HEX", "pin the agent enclave's MRENCLAVE");
  args.Option("rootfs", "DIR", "development: a plain directory as the container's root");
  args.Option("spec-digest", "HEX", "development: refuse a spec whose SHA-256 differs");
  args.Flag("in-memory-upper", "development: leave the root untouched, writes go to a tmpfs layer");
  std::vector<std::string> list(argv + 1, argv + argc);
  if (auto exit_code = cli::ParseCommandLine(args, list)) return *exit_code;
  auto exit_code = Run(args);
  if (!exit_code.ok()) return cli::ReportError(args, exit_code.status());
  return *exit_code;
}
