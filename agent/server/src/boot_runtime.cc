#include "agent/server/src/boot_runtime.h"

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "agent/server/src/private_dir.h"
#include "agent/server/src/validate.h"
#include "agent/spec/oci_spec.h"
#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/log.h"
#include "base/thread_annotations.h"
#include "boot/spec/seccomp_profile.h"
#include "oci.pb.h"
#include "stub-enclave/app_enclave.h"
#include "stub-enclave/sigstruct.h"

namespace sealroot::agent {
namespace {

constexpr std::chrono::milliseconds kAttestTimeout{10'000};

// A container's init (the AppEnclave itself, shared with the runtime for ExecProcess) or one of
// its execs: every method forwards.
class BootProcess final : public Process {
 public:
  explicit BootProcess(std::shared_ptr<stub_enclave::EnclaveProcess> process)
      : process_(std::move(process)) {}
  Result<std::int32_t> Wait() override { return process_->Wait(); }
  Status Signal(int signal) override { return process_->Signal(signal); }
  Result<std::string> ReadStdout(std::size_t max_len) override { return process_->ReadStdout(max_len); }
  Result<std::string> ReadStderr(std::size_t max_len) override { return process_->ReadStderr(max_len); }
  Result<std::size_t> WriteStdin(std::string_view data) override { return process_->WriteStdin(data); }
  Status CloseStdin() override { return process_->CloseStdin(); }
  Status ResizeTerminal(unsigned rows, unsigned columns) override {
    return process_->ResizeTerminal(rows, columns);
  }

 private:
  std::shared_ptr<stub_enclave::EnclaveProcess> process_;
};

local_attest::IdentityPolicy ToPolicy(const EnclaveIdentity& id) {
  local_attest::IdentityPolicy policy;
  policy.mr_enclave = id.mrenclave;
  if (id.mrsigner) policy.signer = local_attest::SignerPolicy{*id.mrsigner, id.isv_prod_id, id.min_isv_svn};
  return policy;
}

// Whether the boot has exited, without reaping it (the AppEnclave does that).
bool BootExited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

// StartContainer answers once the container's key went to an attested app enclave, so that a
// refused boot (an impostor, a wrong policy) fails the call with the reason instead of leaving a
// "running" container that never ran. A boot that dies before attesting (a crash, a layout its
// SIGSTRUCT does not cover) fails it too, after a short grace for the release server to record
// a refusal that made the boot exit.
Status AwaitRelease(const stub_enclave::AppEnclave& app, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  constexpr std::chrono::milliseconds kExitGrace{500};
  auto deadline = Clock::now() + timeout;
  bool exited = false;
  while (true) {
    Status status = app.release_status();
    if (status.code() != Code::kUnavailable) return status;
    if (!exited && BootExited(app.pid())) {
      exited = true;
      deadline = std::min(deadline, Clock::now() + kExitGrace);
    }
    if (Clock::now() >= deadline) {
      if (exited) return FailedPrecondition("the app enclave exited before it attested");
      return Status(Code::kDeadlineExceeded,
                    "the app enclave did not attest within " + std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

class BootRuntime final : public ContainerRuntime {
 public:
  BootRuntime(const AgentConfig& config, std::unique_ptr<local_attest::sgx::Tee> tee,
              local_attest::sgx::Sigstruct sigstruct, const local_attest::sgx::ReportBody& self,
              std::string boot_manifest)
      : config_(config),
        tee_(std::move(tee)),
        sigstruct_(sigstruct),
        boot_manifest_(std::move(boot_manifest)) {
    // A boot with a manifest reads the stub it accepts from there (measured, so the SIGSTRUCT
    // covers it); the development form gets this very agent's identity on its command line.
    if (boot_manifest_.empty()) {
      stub_args_ = {"--stub-prod-id",   std::to_string(self.isv_prod_id),
                    "--stub-mrenclave", HexEncode(self.mr_enclave),
                    "--stub-mrsigner",  HexEncode(self.mr_signer)};
    }
  }

  Result<std::unique_ptr<Process>> Start(const ContainerLaunch& launch) override {
    const std::string ctx = "StartContainer " + launch.container_id;
    ::grpc::Spec oci;
    if (!oci.ParseFromString(launch.spec)) return Internal(ctx + ": the stored OCI spec does not parse");
    nlohmann::json spec = SpecToOciConfig(oci, spec_defaults_);
    spec["pinToImage"] = launch.pin_to_image;

    stub_enclave::AppEnclaveSpec app;
    app.container_id = launch.container_id;
    app.boot_spec = spec.dump();
    app.store_dir = launch.store_dir;
    app.root_hash = launch.root_hash;
    if (launch.key == nullptr || launch.upper_key == nullptr || launch.exec_key == nullptr)
      return Internal(ctx + ": no image or container keys");
    app.key = launch.key->Clone();
    app.upper_key = launch.upper_key->Clone();
    app.exec_key = launch.exec_key->Clone();
    app.upper_root = launch.upper_root;
    app.on_upper_commit = launch.on_upper_commit;
    SR_ASSIGN_OR_RETURN(app.state_dir, StateDir(launch.container_id));
    app.upper_dir = launch.upper_dir;
    app.boot_executable = config_.boot.executable;
    app.enclave_config = {.heap_size = config_.boot.heap_size, .threads = config_.boot.threads};
    app.sigstruct = sigstruct_;
    app.boot_args = stub_args_;
    app.boot_manifest = boot_manifest_;
    Result<local_attest::IdentityPolicy> policy = AppPolicy(launch.allowed_enclaves);
    if (!policy.ok()) return std::move(policy).status().WithContext(ctx);
    app.app_policy = std::move(*policy);
    app.attest_timeout = kAttestTimeout;

    Result<std::unique_ptr<stub_enclave::AppEnclave>> launched =
        stub_enclave::AppEnclave::Launch(*tee_, std::move(app));
    if (!launched.ok()) return std::move(launched).status().WithContext(ctx);
    std::shared_ptr<stub_enclave::AppEnclave> enclave = std::move(*launched);
    // Dropping `enclave` on failure kills the boot and removes its state directory.
    SR_RETURN_IF_ERROR_CTX(AwaitRelease(*enclave, kAttestTimeout), ctx + ": key release");
    SR_LOG(kInfo) << ctx << ": app enclave pid " << enclave->pid();
    MutexLock lock(mu_);
    std::erase_if(running_, [](const auto& entry) { return entry.second.expired(); });
    running_[launch.container_id] = enclave;
    return std::unique_ptr<Process>(std::make_unique<BootProcess>(std::move(enclave)));
  }

  Result<boot::CgroupStats> Stats(const std::string& container_id) override {
    std::shared_ptr<stub_enclave::AppEnclave> enclave = Running(container_id);
    if (!enclave)
      return FailedPrecondition("StatsContainer " + container_id +
                                ": the container's app enclave is not running");
    return enclave->CgroupStats();
  }

  Status Update(const std::string& container_id, const nlohmann::json& resources) override {
    std::shared_ptr<stub_enclave::AppEnclave> enclave = Running(container_id);
    if (!enclave)
      return FailedPrecondition("UpdateContainer " + container_id +
                                ": the container's app enclave is not running");
    return enclave->UpdateResources(resources);
  }

  Result<std::unique_ptr<Process>> Exec(const std::string& container_id,
                                        const std::string& process_spec) override {
    const std::string ctx = "ExecProcess in " + container_id;
    std::shared_ptr<stub_enclave::AppEnclave> enclave = Running(container_id);
    if (!enclave) return FailedPrecondition(ctx + ": the container's app enclave is not running");
    ::grpc::Process oci;
    if (!oci.ParseFromString(process_spec)) return InvalidArgument(ctx + ": malformed process");
    if (oci.args().empty()) return InvalidArgument(ctx + ": process.args is empty");
    SR_RETURN_IF_ERROR_CTX(ValidateProcess(oci), ctx);
    const nlohmann::json spec = {{"process", ProcessToOci(oci)}};
    Result<std::unique_ptr<stub_enclave::EnclaveProcess>> exec = enclave->Exec(spec.dump());
    if (!exec.ok()) return std::move(exec).status().WithContext(ctx);
    return std::unique_ptr<Process>(
        std::make_unique<BootProcess>(std::shared_ptr<stub_enclave::EnclaveProcess>(std::move(*exec))));
  }

 private:
  std::shared_ptr<stub_enclave::AppEnclave> Running(const std::string& container_id) {
    MutexLock lock(mu_);
    auto it = running_.find(container_id);
    return it != running_.end() ? it->second.lock() : nullptr;
  }

  // Sockets live in the state directory, and unix socket paths are short (108 bytes): a
  // container id can be 64+ characters, so the directory is named by a digest of it.
  Result<std::string> StateDir(const std::string& container_id) const {
    const std::string parent = JoinPath(config_.state_dir, "boot");
    SR_RETURN_IF_ERROR_CTX(MakePrivateDir(parent), "creating " + parent);
    return JoinPath(parent, HexEncode(Sha256Of(container_id)).substr(0, 16));
  }

  // The release server checks one policy: the configured identity naming this boot (by
  // MRENCLAVE, or by signer and product), else the first one; none configured: exactly the
  // configured boot's SIGSTRUCT (its MRENCLAVE, signer, product and minimum SVN).
  Result<local_attest::IdentityPolicy> AppPolicy(const std::vector<EnclaveIdentity>& allowed) const {
    const local_attest::sgx::Measurement boot_signer = stub_enclave::MrSignerOf(sigstruct_);
    if (allowed.empty()) {
      local_attest::IdentityPolicy policy;
      policy.mr_enclave = sigstruct_.enclave_hash;
      policy.signer = local_attest::SignerPolicy{stub_enclave::MrSignerOf(sigstruct_), sigstruct_.isv_prod_id,
                                                 sigstruct_.isv_svn};
      return policy;
    }
    auto names_boot = [&](const EnclaveIdentity& id) {
      return id.mrenclave == sigstruct_.enclave_hash ||
             (!id.mrenclave && id.mrsigner == boot_signer && id.isv_prod_id == sigstruct_.isv_prod_id);
    };
    auto it = std::find_if(allowed.begin(), allowed.end(), names_boot);
    return ToPolicy(it != allowed.end() ? *it : allowed.front());
  }

  const AgentConfig config_;
  std::unique_ptr<local_attest::sgx::Tee>
      tee_;  // outlives every AppEnclave: they are owned by records the service drops first
  const local_attest::sgx::Sigstruct sigstruct_;
  const std::string boot_manifest_;
  const SpecDefaults spec_defaults_ = HostSpecDefaults(boot::DefaultSeccompProfile());
  std::vector<std::string> stub_args_;
  Mutex mu_;
  std::map<std::string, std::weak_ptr<stub_enclave::AppEnclave>> running_ SR_GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<ContainerRuntime>> MakeBootRuntime(const AgentConfig& config,
                                                          std::unique_ptr<local_attest::sgx::Tee> tee) {
  const std::string& path = config.boot.sigstruct;
  Result<std::string> bytes = ReadFile(path, sizeof(local_attest::sgx::Sigstruct) + 1);
  if (!bytes.ok()) return std::move(bytes).status().WithContext("reading the boot's SIGSTRUCT");
  SR_ASSIGN_OR_RETURN(local_attest::sgx::Sigstruct sigstruct,
                      local_attest::sgx::StructFromBytes<local_attest::sgx::Sigstruct>(
                          AsBytes(*bytes), ("SIGSTRUCT " + path).c_str()));
  std::string boot_manifest;
  if (!config.boot.manifest.empty()) {
    // Read once: what the launcher measures for every boot is what the agent started with.
    Result<std::string> text = ReadFile(config.boot.manifest, 1u << 20);
    if (!text.ok()) return std::move(text).status().WithContext("reading the boot's manifest");
    boot_manifest = std::move(*text);
  }
  Result<local_attest::sgx::Report> self =
      tee->CreateReport(local_attest::sgx::TargetInfo{}, local_attest::sgx::ReportData{});
  if (!self.ok()) return std::move(self).status().WithContext("the agent's own report");
  return std::unique_ptr<ContainerRuntime>(
      std::make_unique<BootRuntime>(config, std::move(tee), sigstruct, self->body, std::move(boot_manifest)));
}

}  // namespace sealroot::agent
