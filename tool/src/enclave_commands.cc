// `sealroot enclave keygen|measure|sign|verify|run`: enclave tooling over stub-enclave/
// (design/attestation.md "CLI").
//   keygen KEY.pem                         an RSA-3072 (e=3) signing key, mode 0600
//   measure EXE [layout]                   MRENCLAVE of EXE (+ its libraries, + its manifest)
//   sign EXE --key K --out SIG [identity]  SIGSTRUCT for EXE's MRENCLAVE
//   verify EXE --sigstruct SIG [layout]    checks SIG against EXE, prints the identity
//   run EXE --sigstruct SIG [layout] [--container-id ID --spec-digest HEX | --config-id HEX]
//       [--env NAME=VALUE]... -- ARGS...   launches EXE as a sim enclave, exits with its status
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/cli.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/interrupt.h"
#include "local-attest/policy.h"
#include "stub-enclave/launcher.h"
#include "stub-enclave/sigstruct.h"
#include "tool/src/commands.h"

extern char** environ;

namespace sealroot::tool {
namespace {

using stub_enclave::EnclaveConfig;

void AddLayoutOptions(ArgParser& p) {
  p.Option("heap-size", "BYTES", "enclave heap size (suffixes K, M, G; default 64M)");
  p.Option("threads", "N", "enclave threads / TCS pages (default 4)");
  p.Option("ssa-pages", "N", "SSA frame pages per thread (default 1)");
  p.Option("manifest", "FILE", "the enclave's manifest: measured into MRENCLAVE, handed to the enclave");
}

// The --manifest document (empty: none). Part of the measured layout like the options above.
Result<std::string> ManifestFrom(const ArgParser& p) {
  auto path = p.Get("manifest");
  if (!path) return std::string();
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(*path, 1u << 20));
  if (text.empty()) return InvalidArgument("--manifest " + *path + ": empty");
  return text;
}

Result<std::uint64_t> ParseNumber(const std::string& text, const std::string& what, std::uint64_t max) {
  std::uint64_t value = 0, scale = 1;
  std::string digits = text;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'K':
        scale = 1ull << 10;
        break;
      case 'M':
        scale = 1ull << 20;
        break;
      case 'G':
        scale = 1ull << 30;
        break;
      default:
        break;
    }
    if (scale != 1) digits.pop_back();
  }
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value > max / scale) {
    return InvalidArgument("--" + what + ": not a number up to " + std::to_string(max) + ": '" + text + "'");
  }
  return value * scale;
}

Result<EnclaveConfig> LayoutFrom(const ArgParser& p) {
  EnclaveConfig c;
  if (auto v = p.Get("heap-size")) {
    SR_ASSIGN_OR_RETURN(c.heap_size, ParseNumber(*v, "heap-size", 64ull << 30));
  }
  if (auto v = p.Get("threads")) {
    SR_ASSIGN_OR_RETURN(std::uint64_t n, ParseNumber(*v, "threads", 1024));
    c.threads = static_cast<std::uint32_t>(n);
  }
  if (auto v = p.Get("ssa-pages")) {
    SR_ASSIGN_OR_RETURN(std::uint64_t n, ParseNumber(*v, "ssa-pages", 16));
    c.ssa_frame_pages = static_cast<std::uint32_t>(n);
  }
  SR_RETURN_IF_ERROR(c.Validate());
  return c;
}

// A SIGSTRUCT of the wrong size is a SIGSTRUCT that does not verify (DATA_LOSS, exit 3), like one
// whose bytes were changed; a file that cannot be read keeps its own error.
Result<local_attest::sgx::Sigstruct> ReadSigstruct(const std::string& path) {
  constexpr std::size_t kSize = sizeof(local_attest::sgx::Sigstruct);
  Result<std::string> bytes = ReadFile(path, kSize);
  if (!bytes.ok() && bytes.status().code() == Code::kResourceExhausted) {
    return DataLoss("SIGSTRUCT " + path + ": longer than " + std::to_string(kSize) + " bytes");
  }
  if (!bytes.ok()) return std::move(bytes).status().WithContext("reading SIGSTRUCT " + path);
  if (bytes->size() != kSize) {
    return DataLoss("SIGSTRUCT " + path + ": " + std::to_string(bytes->size()) + " bytes, a SIGSTRUCT has " +
                    std::to_string(kSize));
  }
  return local_attest::sgx::StructFromBytes<local_attest::sgx::Sigstruct>(AsBytes(*bytes),
                                                                          ("SIGSTRUCT " + path).c_str());
}

template <std::size_t N>
Result<std::array<std::uint8_t, N>> HexArray(const std::string& text, const std::string& what) {
  SR_ASSIGN_OR_RETURN(auto bytes, HexDecode(text));
  if (bytes.size() != N) return InvalidArgument(what + ": expected " + std::to_string(2 * N) + " hex digits");
  std::array<std::uint8_t, N> out;
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

nlohmann::json IdentityJson(const local_attest::sgx::EnclaveIdentity& id) {
  return {{"mrenclave", HexEncode(id.mr_enclave)},
          {"mrsigner", HexEncode(id.mr_signer)},
          {"isv_prod_id", id.isv_prod_id},
          {"isv_svn", id.isv_svn},
          {"debug", (id.attributes.flags & local_attest::sgx::kFlagDebug) != 0},
          {"attributes", id.attributes.flags}};
}

// Waits for a launched enclave; on SIGINT/SIGTERM to the launcher, passes SIGTERM on once (the
// enclave cannot outlive the simulated CPU that this process is). Repeated signals change
// nothing: the launcher exits with its enclave, never before it. (A terminal's Ctrl-C reaches
// the enclave itself too; a parent's PR_SET_PDEATHSIG may come once per thread of the parent.)
Result<int> WaitForwardingInterrupts(stub_enclave::LaunchedEnclave& launched) {
  InstallInterruptHandler(RepeatedInterrupt::kIgnored);
  bool forwarded = false;
  for (;;) {
    SR_ASSIGN_OR_RETURN(std::optional<int> code, launched.Poll());
    if (code) return *code;
    if (Interrupted() && !forwarded) {
      (void)launched.Kill(SIGTERM);
      forwarded = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Runs `body` with a parser set up by `setup`, mapping errors to the CLI conventions.
template <typename Setup, typename Body>
int Command(const char* name, const char* synopsis, const char* summary, Args args, Setup setup, Body body) {
  ArgParser p(std::string("sealroot enclave ") + name, synopsis, summary);
  cli::AddCommonFlags(p);
  setup(p);
  if (auto exit = cli::ParseCommandLine(p, args)) return *exit;
  Result<int> r = body(p);
  if (!r.ok()) return cli::ReportError(p, r.status());
  return *r;
}

int Keygen(Args args) {
  return Command(
      "keygen", "KEY.pem", "Create an RSA-3072 (e=3) enclave signing key (mode 0600).", args,
      [](ArgParser&) {},
      [](ArgParser& p) -> Result<int> {
        SR_RETURN_IF_ERROR(p.ExpectPositionals(1, 1));
        const std::string& path = p.positionals()[0];
        if (::access(path.c_str(), F_OK) == 0) return AlreadyExists(path + " already exists");
        SR_ASSIGN_OR_RETURN(EvpPkeyPtr key, stub_enclave::GenerateSigningKey());
        SR_ASSIGN_OR_RETURN(std::string pem, stub_enclave::SigningKeyToPem(key.get()));
        Status s = WriteFileAtomic(path, pem, 0600);
        SecureWipe({reinterpret_cast<std::uint8_t*>(pem.data()), pem.size()});
        SR_RETURN_IF_ERROR(s);
        return cli::kExitOk;
      });
}

int Measure(Args args) {
  return Command("measure", "EXECUTABLE", "Print the MRENCLAVE of an enclave executable.", args,
                 AddLayoutOptions, [](ArgParser& p) -> Result<int> {
                   SR_RETURN_IF_ERROR(p.ExpectPositionals(1, 1));
                   SR_ASSIGN_OR_RETURN(EnclaveConfig config, LayoutFrom(p));
                   SR_ASSIGN_OR_RETURN(std::string manifest, ManifestFrom(p));
                   SR_ASSIGN_OR_RETURN(
                       auto image, stub_enclave::EnclaveImage::Load(p.positionals()[0], config, manifest));
                   const stub_enclave::EnclaveMeasurement& m = image.measurement();
                   if (!p.Bool("json")) {
                     std::cout << HexEncode(m.mr_enclave) << "\n";
                     return cli::kExitOk;
                   }
                   nlohmann::json libs = nlohmann::json::array();
                   for (const auto& lib : m.libraries)
                     libs.push_back({{"path", lib.path}, {"size", lib.size}});
                   std::cout << nlohmann::json{{"mrenclave", HexEncode(m.mr_enclave)},
                                               {"enclave_size", m.enclave_size},
                                               {"measured_bytes", m.measured_bytes},
                                               {"manifest_size", m.manifest_size},
                                               {"libraries", libs}}
                                    .dump()
                             << "\n";
                   return cli::kExitOk;
                 });
}

int Sign(Args args) {
  auto setup = [](ArgParser& p) {
    AddLayoutOptions(p);
    p.Option("key", "KEY.pem", "RSA-3072 (e=3) signing key (sealroot enclave keygen)");
    p.Option("out", "FILE", "where to write the 1808-byte SIGSTRUCT");
    p.Option("isv-prod-id", "N", "ISVPRODID (default 0)");
    p.Option("isv-svn", "N", "ISVSVN (default 0)");
    p.Flag("debug", "sign a DEBUG enclave (refused by release policies unless allowed)");
  };
  return Command(
      "sign", "EXECUTABLE", "Measure an enclave executable and sign its SIGSTRUCT.", args, setup,
      [](ArgParser& p) -> Result<int> {
        SR_RETURN_IF_ERROR(p.ExpectPositionals(1, 1));
        if (!p.Get("key") || !p.Get("out")) return InvalidArgument("--key and --out are required");
        SR_ASSIGN_OR_RETURN(EnclaveConfig config, LayoutFrom(p));
        stub_enclave::SigningParams params;
        SR_ASSIGN_OR_RETURN(std::uint64_t prod,
                            ParseNumber(p.Get("isv-prod-id").value_or("0"), "isv-prod-id", 0xffff));
        SR_ASSIGN_OR_RETURN(std::uint64_t svn,
                            ParseNumber(p.Get("isv-svn").value_or("0"), "isv-svn", 0xffff));
        params.isv_prod_id = static_cast<std::uint16_t>(prod);
        params.isv_svn = static_cast<std::uint16_t>(svn);
        params.debug = p.Bool("debug");
        SR_ASSIGN_OR_RETURN(SecretBytes pem, ReadSecretFile(*p.Get("key"), 64 * 1024));
        Result<EvpPkeyPtr> key =
            stub_enclave::ParseSigningKey({reinterpret_cast<const char*>(pem.data()), pem.size()});
        if (!key.ok()) return std::move(key).status().WithContext(*p.Get("key"));
        SR_ASSIGN_OR_RETURN(std::string manifest, ManifestFrom(p));
        SR_ASSIGN_OR_RETURN(auto image,
                            stub_enclave::EnclaveImage::Load(p.positionals()[0], config, manifest));
        SR_ASSIGN_OR_RETURN(local_attest::sgx::Sigstruct sig,
                            stub_enclave::SignEnclave(key->get(), image.measurement().mr_enclave, params));
        SR_RETURN_IF_ERROR(WriteFileAtomic(*p.Get("out"), local_attest::sgx::BytesOf(sig), 0644));
        SR_ASSIGN_OR_RETURN(local_attest::sgx::EnclaveIdentity id, stub_enclave::IdentityFor(image, sig));
        if (p.Bool("json")) {
          std::cout << IdentityJson(id).dump() << "\n";
        } else {
          std::cout << "mrenclave " << HexEncode(id.mr_enclave) << "\nmrsigner " << HexEncode(id.mr_signer)
                    << "\n";
        }
        return cli::kExitOk;
      });
}

int Verify(Args args) {
  auto setup = [](ArgParser& p) {
    AddLayoutOptions(p);
    p.Option("sigstruct", "FILE", "the SIGSTRUCT to check");
  };
  return Command(
      "verify", "EXECUTABLE", "Check a SIGSTRUCT against an executable; print the identity.", args, setup,
      [](ArgParser& p) -> Result<int> {
        SR_RETURN_IF_ERROR(p.ExpectPositionals(1, 1));
        if (!p.Get("sigstruct")) return InvalidArgument("--sigstruct is required");
        SR_ASSIGN_OR_RETURN(EnclaveConfig config, LayoutFrom(p));
        SR_ASSIGN_OR_RETURN(local_attest::sgx::Sigstruct sig, ReadSigstruct(*p.Get("sigstruct")));
        SR_ASSIGN_OR_RETURN(std::string manifest, ManifestFrom(p));
        SR_ASSIGN_OR_RETURN(auto image,
                            stub_enclave::EnclaveImage::Load(p.positionals()[0], config, manifest));
        SR_ASSIGN_OR_RETURN(local_attest::sgx::EnclaveIdentity id, stub_enclave::IdentityFor(image, sig));
        if (p.Bool("json")) {
          std::cout << IdentityJson(id).dump() << "\n";
        } else {
          std::cout << "ok mrenclave " << HexEncode(id.mr_enclave) << " mrsigner " << HexEncode(id.mr_signer)
                    << " prodid " << id.isv_prod_id << " svn " << id.isv_svn
                    << ((id.attributes.flags & local_attest::sgx::kFlagDebug) ? " DEBUG" : "") << "\n";
        }
        return cli::kExitOk;
      });
}

int Run(Args args) {
  auto setup = [](ArgParser& p) {
    AddLayoutOptions(p);
    p.Option("sigstruct", "FILE", "the enclave's SIGSTRUCT");
    p.Option("config-id", "HEX", "KSS CONFIGID (up to 64 bytes)");
    p.Option("container-id", "ID", "bind to a container: CONFIGID = SHA-256(ID || spec digest)");
    p.Option("spec-digest", "HEX", "SHA-256 of the OCI process spec (with --container-id)");
    p.Option("env", "NAME=VALUE", "add to the enclave's environment (LD_* are always removed)");
  };
  return Command("run", "EXECUTABLE [-- ARGS...]", "Launch an executable as a simulated SGX enclave.", args,
                 setup, [](ArgParser& p) -> Result<int> {
                   if (p.positionals().empty()) return InvalidArgument("missing EXECUTABLE");
                   if (!p.Get("sigstruct")) return InvalidArgument("--sigstruct is required");
                   stub_enclave::LaunchSpec spec;
                   spec.executable = p.positionals()[0];
                   spec.args.assign(p.positionals().begin() + 1, p.positionals().end());
                   SR_ASSIGN_OR_RETURN(spec.config, LayoutFrom(p));
                   SR_ASSIGN_OR_RETURN(spec.sigstruct, ReadSigstruct(*p.Get("sigstruct")));
                   SR_ASSIGN_OR_RETURN(spec.manifest, ManifestFrom(p));
                   if (auto id = p.Get("container-id")) {
                     SR_ASSIGN_OR_RETURN(auto digest,
                                         HexArray<32>(p.Get("spec-digest").value_or(""), "--spec-digest"));
                     spec.config_id = local_attest::ContainerConfigId(*id, digest);
                   } else if (auto hex = p.Get("config-id")) {
                     SR_ASSIGN_OR_RETURN(auto bytes, HexDecode(*hex));
                     if (bytes.size() > spec.config_id.size())
                       return InvalidArgument("--config-id: at most 64 bytes");
                     std::copy(bytes.begin(), bytes.end(), spec.config_id.begin());
                   }
                   for (char** e = environ; *e; ++e) spec.env.emplace_back(*e);
                   for (const std::string& e : p.GetAll("env")) spec.env.push_back(e);
                   SR_ASSIGN_OR_RETURN(auto launched, stub_enclave::LaunchEnclave(spec));
                   return WaitForwardingInterrupts(*launched);
                 });
}

}  // namespace

int Enclave(Args args) {
  struct Sub {
    const char* name;
    int (*run)(Args);
  };
  static constexpr Sub kSubs[] = {
      {"keygen", Keygen}, {"measure", Measure}, {"sign", Sign}, {"verify", Verify}, {"run", Run}};
  if (!args.empty()) {
    for (const Sub& s : kSubs) {
      if (args[0] == s.name) return s.run(args.subspan(1));
    }
  }
  std::ostream& out = (!args.empty() && (args[0] == "--help" || args[0] == "help")) ? std::cout : std::cerr;
  out << "Usage: sealroot enclave keygen|measure|sign|verify|run [OPTIONS] ...\n"
         "  keygen KEY.pem                          create an RSA-3072 (e=3) signing key\n"
         "  measure EXECUTABLE                      print MRENCLAVE\n"
         "  sign EXECUTABLE --key K --out SIG       write a SIGSTRUCT\n"
         "  verify EXECUTABLE --sigstruct SIG       check a SIGSTRUCT, print the identity\n"
         "  run EXECUTABLE --sigstruct SIG -- ARGS  launch as a simulated enclave\n"
         "Run 'sealroot enclave COMMAND --help' for options.\n";
  return &out == &std::cout ? cli::kExitOk : cli::kExitUsage;
}

}  // namespace sealroot::tool
