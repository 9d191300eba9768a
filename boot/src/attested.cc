#include "boot/attested.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "base/file.h"
#include "base/log.h"
#include "boot/container.h"
#include "boot/spec/exec.h"
#include "boot/spec/process_spec.h"
#include "boot/src/exec_server.h"
#include "boot/src/sealed_root.h"
#include "local-attest/release.h"

namespace sealroot::boot {
namespace {

// The name of the container's root filesystem in a key release (design/boot.md).
constexpr std::string_view kRootName = "rootfs";

Result<local_attest::IdentityPolicy> StubPolicy(local_attest::sgx::Tee& tee, const StubIdentity& stub) {
  local_attest::IdentityPolicy policy;
  local_attest::SignerPolicy signer;
  if (stub.mr_signer) {
    signer.mr_signer = *stub.mr_signer;
  } else {
    SR_ASSIGN_OR_RETURN(local_attest::sgx::Report self,
                        tee.CreateReport(local_attest::sgx::TargetInfo{}, local_attest::sgx::ReportData{}));
    signer.mr_signer = self.body.mr_signer;
  }
  signer.isv_prod_id = stub.isv_prod_id;
  signer.min_isv_svn = stub.min_isv_svn;
  policy.signer = signer;
  policy.mr_enclave = stub.mr_enclave;
  return policy;
}

Result<local_attest::ReleasedRoot*> FindRoot(local_attest::KeyRelease& release) {
  for (local_attest::ReleasedRoot& root : release.roots) {
    if (root.name == kRootName) return &root;
  }
  return InvalidArgument("the key release has no root named '" + std::string(kRootName) + "'");
}

// The container's writable layer as the agent released it: its key, its owner, the state it must
// be in, and the report of each commit back to the agent over the attested session.
Result<SealedUpper> ContainerUpper(const AttestedBootOptions& options,
                                   local_attest::ReleaseSession& session) {
  local_attest::KeyRelease& release = session.release();
  if (options.upper_dir.empty() && release.upper_root) {
    return FailedPrecondition("container " + release.container_id +
                              ": the agent expects a committed upper, but no --upper was given");
  }
  SealedUpper upper;
  upper.dir = options.upper_dir;
  upper.key = std::move(release.upper_key);
  upper.owner = release.container_id;
  upper.expected_root = release.upper_root;
  upper.report = [&session](const std::optional<fusefs::Hash32>& previous, const fusefs::Hash32& root) {
    return session.ReportUpperCommit({.previous = previous, .root = root});
  };
  return upper;
}

// The boot's own mount points live in a tmpfs of its private mount namespace: the host sees an
// empty directory, and nothing of the container is ever written to host storage by the boot.
Result<std::string> MountScratch(const std::string& dir) {
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=700") != 0) {
    return ErrnoStatus("mounting the boot's scratch tmpfs on " + dir, errno);
  }
  std::string lower = JoinPath(dir, "root");
  if (::mkdir(lower.c_str(), 0755) != 0) return ErrnoStatus("creating " + lower, errno);
  return lower;
}

// With a new user namespace the sealed root presents the image's ids 0..N as the host ids the
// container's root maps to, so that inside they read as the image has them.
fusefs::FuseMountOptions::IdShift IdShiftFor(const BootSpec& spec) {
  fusefs::FuseMountOptions::IdShift shift;
  bool new_user_namespace = false;
  for (const SpecNamespace& ns : spec.linux.namespaces.value_or(std::vector<SpecNamespace>{})) {
    new_user_namespace = new_user_namespace || (ns.type == "user" && ns.path.empty());
  }
  if (!new_user_namespace) return shift;
  for (const IdMapping& m : spec.linux.uid_mappings) {
    if (m.container_id == 0) shift = {m.host_id, 0, m.size};
  }
  for (const IdMapping& m : spec.linux.gid_mappings) {
    if (m.container_id == 0) {
      shift.host_gid = m.host_id;
      shift.size = std::min(shift.size, m.size);
    }
  }
  return shift;
}

// Logs how long each boot phase took (bench/e2e reads these at --log-level info).
class PhaseTimer {
 public:
  void Done(std::string_view phase) {
    auto now = std::chrono::steady_clock::now();
    SR_LOG(kInfo) << "phase " << phase << " "
                  << std::chrono::duration<double, std::milli>(now - start_).count() << " ms";
    start_ = now;
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

Result<int> RunAttestedBoot(local_attest::sgx::Tee& tee, const AttestedBootOptions& options) {
  PhaseTimer timer;
  SR_ASSIGN_OR_RETURN(std::string spec_text, ReadFile(options.spec_path));
  SR_ASSIGN_OR_RETURN(local_attest::IdentityPolicy stub_policy, StubPolicy(tee, options.stub));
  local_attest::FetchOptions fetch;
  fetch.timeout = options.attest_timeout;
  // Open for the whole boot: each commit of the container's upper is reported over it, the
  // last one when the mount (destroyed before the session) ends.
  SR_ASSIGN_OR_RETURN(std::unique_ptr<local_attest::ReleaseSession> session,
                      local_attest::OpenReleaseSession(tee, options.socket_path, stub_policy, fetch));
  local_attest::KeyRelease& release = session->release();
  timer.Done("attest");
  const std::string ctx = "container " + release.container_id;
  // The host hands the spec over; only its digest came through the attested channel.
  if (!ConstantTimeEqual(BootSpecDigest(spec_text), release.spec_digest)) {
    return PermissionDenied(ctx + ": boot spec " + options.spec_path + " does not match the released digest");
  }
  SR_ASSIGN_OR_RETURN(BootSpec spec, ParseBootSpec(spec_text));
  SR_ASSIGN_OR_RETURN(local_attest::ReleasedRoot * root, FindRoot(release));

  SR_ASSIGN_OR_RETURN(SealedUpper upper, ContainerUpper(options, *session));

  SR_ASSIGN_OR_RETURN(std::string lower, MountScratch(options.scratch_dir));
  SecretBytes exec_key = std::move(release.exec_key);
  auto mount = SealedRootMount::Create(options.store_dir, root->root_hash, std::move(root->key), lower,
                                       std::move(upper), IdShiftFor(spec));
  if (!mount.ok()) return std::move(mount).status().WithContext(ctx);
  // Entrypoint, Cmd, Env, WorkingDir and User come from the config sealed with the root, so the
  // host cannot substitute another image's.
  auto image = ParseImageConfig((*mount)->config_json());
  if (!image.ok()) return std::move(image).status().WithContext(ctx);
  spec.image = std::move(*image);
  SR_ASSIGN_OR_RETURN(ProcessSpec process, ResolveProcess(spec));
  timer.Done("mount");

  ContainerOptions container;
  container.root = lower;
  container.in_memory_upper = !(*mount)->writable();
  container.container_id = release.container_id;
  container.spec = spec;
  container.spec_text = spec_text;
  container.process = std::move(process);
  std::unique_ptr<ExecServer> exec_server;  // outlives the container: stopped after it ends
  if (!options.exec_socket.empty()) {
    container.on_started = [&](std::shared_ptr<ContainerInit> init) {
      auto server = ExecServer::Start(options.exec_socket, std::move(exec_key), std::move(init));
      if (server.ok()) {
        exec_server = std::move(*server);
      } else {
        SR_LOG(kError) << ctx << ": exec unavailable: " << server.status().message();
      }
    };
  }
  return RunContainer(container);
}

}  // namespace sealroot::boot
