// Cold start of a container's app enclave, phase by phase: the sealed busybox root is prepared
// once; then, per iteration, AppEnclave::Launch (spec file, key-release server, measuring and
// launching sealroot-boot), local attestation, mounting the sealed root, and the entrypoint's
// first output byte; "total" also covers the exit and the cleanup. bench/e2e/run.sh runs it next to `ctr run
// --rm` of the same image.
//
//   cold_start --boot PATH [--iterations N] [--work DIR]
// Prints one line per phase: "<phase> median_ms=<x> p90_ms=<y>", then "boot_max_rss_kb=<k>".
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/args.h"
#include "base/file.h"
#include "boot/spec/seccomp_profile.h"
#include "local-attest/sim.h"
#include "stub-enclave/app_enclave.h"
#include "stub-enclave/measure.h"
#include "stub-enclave/sigstruct.h"
#include "tests/e2e/sealed_image.h"

namespace {

using namespace sealroot;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// "sealroot-boot: info: phase attest 3.2 ms" lines -> {"attest": 3.2}
std::map<std::string, double> BootPhases(const std::string& log) {
  std::map<std::string, double> out;
  std::size_t pos = 0;
  while ((pos = log.find("phase ", pos)) != std::string::npos) {
    pos += 6;
    std::size_t space = log.find(' ', pos);
    out[log.substr(pos, space - pos)] = std::stod(log.substr(space + 1));
  }
  return out;
}

struct Setup {
  std::string store;
  SecretBytes key = SecretBytes::Random(32);
  Sha256Digest root{};
  stub_enclave::EnclaveConfig config{.heap_size = 1 << 20, .threads = 2};
  local_attest::sgx::Sigstruct sig{};
  local_attest::sgx::Measurement mr_enclave{};
  std::unique_ptr<local_attest::sgx::Tee> stub_tee;
};

Result<Setup> Prepare(const std::string& work, const std::string& boot) {
  Setup s;
  testing::MakeBusyboxRoot(work + "/rootfs", "bench");
  s.store = work + "/store";
  SR_ASSIGN_OR_RETURN(s.root, testing::SealDirectory(s.store, s.key, work + "/rootfs",
                                                     R"({"config":{"Cmd":["echo","hello"]}})"));
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr signing_key, stub_enclave::GenerateSigningKey());
  SR_ASSIGN_OR_RETURN(stub_enclave::EnclaveImage image, stub_enclave::EnclaveImage::Load(boot, s.config));
  s.mr_enclave = image.measurement().mr_enclave;
  SR_ASSIGN_OR_RETURN(s.sig, stub_enclave::SignEnclave(signing_key.get(), s.mr_enclave, {.isv_prod_id = 2}));
  local_attest::sgx::EnclaveIdentity stub;
  stub.mr_enclave = Sha256Of(std::string_view("bench stub"));
  stub.mr_signer = stub_enclave::MrSignerOf(s.sig);
  stub.attributes.flags = local_attest::sgx::kFlagMode64Bit;
  stub.attributes.xfrm = 0x3;
  stub.isv_prod_id = 1;
  SR_ASSIGN_OR_RETURN(local_attest::sgx::SimCpu cpu, local_attest::sgx::SimCpu::Create(stub));
  s.stub_tee = local_attest::sgx::NewInProcessSimTee(std::move(cpu));
  return s;
}

// The isolation `runc spec` gives (and `ctr run` applies): new namespaces, the 14 default
// capabilities, no_new_privs, masked and read-only /proc paths, the default seccomp profile.
std::string RuncLikeSpec() {
  const nlohmann::json caps = {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
                               "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
                               "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                               "CAP_KILL",    "CAP_AUDIT_WRITE"};
  nlohmann::json namespaces = nlohmann::json::array();
  for (const char* type : {"pid", "network", "ipc", "uts", "mount"}) namespaces.push_back({{"type", type}});
  return nlohmann::json{
      {"process",
       {{"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"noNewPrivileges", true}}},
      {"linux",
       {{"namespaces", namespaces},
        {"seccomp", boot::DefaultSeccompProfile()},
        {"maskedPaths", {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"}},
        {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}}
      .dump();
}

Result<std::map<std::string, double>> OneStart(Setup& s, const std::string& boot, const std::string& state) {
  stub_enclave::AppEnclaveSpec spec;
  spec.container_id = "bench";
  spec.boot_spec = RuncLikeSpec();
  spec.upper_key = SecretBytes::Random(32);
  spec.exec_key = SecretBytes::Random(32);
  spec.store_dir = s.store;
  spec.root_hash = s.root;
  spec.key = s.key.Clone();
  spec.state_dir = state;
  spec.boot_executable = boot;
  spec.enclave_config = s.config;
  spec.sigstruct = s.sig;
  spec.boot_args = {"--stub-prod-id", "1", "--log-level", "info"};
  spec.app_policy.mr_enclave = s.mr_enclave;
  auto t0 = Clock::now();
  SR_ASSIGN_OR_RETURN(auto app, stub_enclave::AppEnclave::Launch(*s.stub_tee, std::move(spec)));
  auto launched = Clock::now();
  SR_ASSIGN_OR_RETURN(std::string first, app->ReadStdout(1));
  auto first_output = Clock::now();
  if (first != "h") return Internal("unexpected output '" + first + "'");
  std::string log;
  while (true) {
    SR_ASSIGN_OR_RETURN(std::string chunk, app->ReadStderr(4096));
    if (chunk.empty()) break;
    log += chunk;
  }
  SR_ASSIGN_OR_RETURN(int code, app->Wait());
  if (code != 0) return Internal("boot exited " + std::to_string(code) + ": " + log);
  app.reset();  // RemoveContainer: release server stopped, state directory removed
  auto removed = Clock::now();
  std::map<std::string, double> phases = BootPhases(log);
  phases["launch"] = Ms(launched - t0);
  phases["first_output"] = Ms(first_output - t0);
  phases["total"] = Ms(removed - t0);
  phases["run_after_mount"] = phases["first_output"] - phases["launch"] - phases["attest"] - phases["mount"];
  return phases;
}

}  // namespace

int main(int argc, char** argv) {
  ArgParser args("cold_start", "", "Cold start of an attested sealroot-boot, by phase.");
  args.Option("boot", "PATH", "the sealroot-boot executable");
  args.Option("iterations", "N", "starts to measure (default 20)");
  args.Option("work", "DIR", "working directory (default: a new one under /tmp)");
  if (Status parsed = args.Parse(argc, argv); !parsed.ok() || !args.Has("boot")) {
    std::cerr << (parsed.ok() ? "--boot is required" : parsed.message()) << "\n" << args.Help();
    return 2;
  }
  std::string work = args.Get("work").value_or("");
  if (work.empty()) {
    char tmpl[] = "/tmp/sealroot-cold-start-XXXXXX";
    work = ::mkdtemp(tmpl);
  }
  std::string boot = *args.Get("boot");
  auto setup = Prepare(work, boot);
  if (!setup.ok()) {
    std::cerr << "preparing: " << setup.status().ToString() << "\n";
    return 1;
  }
  int iterations = std::stoi(args.Get("iterations").value_or("20"));
  std::map<std::string, std::vector<double>> samples;
  for (int i = 0; i < iterations; ++i) {
    auto phases = OneStart(*setup, boot, work + "/state");
    if (!phases.ok()) {
      std::cerr << "iteration " << i << ": " << phases.status().ToString() << "\n";
      return 1;
    }
    for (const auto& [name, ms] : *phases) samples[name].push_back(ms);
  }
  for (const char* name : {"launch", "attest", "mount", "run_after_mount", "first_output", "total"}) {
    std::vector<double>& v = samples[name];
    std::sort(v.begin(), v.end());
    std::printf("%s median_ms=%.2f p90_ms=%.2f\n", name, v[v.size() / 2], v[v.size() * 9 / 10]);
  }
  rusage children{};
  ::getrusage(RUSAGE_CHILDREN, &children);
  std::printf("boot_max_rss_kb=%ld\n", children.ru_maxrss);
  (void)RemoveTree(work);
  return 0;
}
