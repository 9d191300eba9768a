// The runc differential cases (tests/support/runc_diff.h) through the agent, on the real path:
// the probe's root as a one-layer image in a loopback registry; enclave-agent as a sim stub
// enclave (`sealroot enclave run`, its measured manifest holding the boot and the owner's
// workload policy); then `sealroot ctl pull` (verified and sealed), `ctl create --spec FILE`
// (the very config.json runc runs, forwarded whole), `ctl start` (sealroot-boot attested as the
// container's app enclave, given the key, booting from the sealed FUSE root), `ctl logs`,
// `ctl wait` and `ctl rm`. The probe's output must equal runc's; what differs by design is
// normalised in Normalise, each with its reason.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "agent/spec/oci_spec.h"
#include "boot/spec/seccomp_profile.h"
#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/runc_diff.h"

namespace sealroot::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace diff = runc_diff;

const std::vector<std::string> kProbeArgs = {"/bin/sh", "/probe.sh"};
// The enclaves' layout (part of MRENCLAVE): small, as the e2e tests' enclaves are.
const std::vector<std::string> kEnclaveLayout = {"--heap-size", "1M", "--threads", "2"};

void Check(const CommandResult& r, const std::string& what) {
  if (!r.ok())
    throw std::runtime_error(what + " failed (" + std::to_string(r.exit_code) + "): " + r.err + r.out);
}

// What differs through the agent by design, made equal here; everything else compares as is.
// - The root's filesystem type: runc's root is the bundle's directory on the host's filesystem,
//   the agent's is the sealed root, a FUSE mount ("fuse.sealfs") served by the container's boot.
//   Its mount point and per-mount options (ro/rw, nosuid, nodev, noexec, atime) still compare.
// (PID 1 is sealroot's init rather than the entrypoint, as in the boot's development form; the
// probe prints nothing that depends on pids.)
std::string Normalise(const std::string& probe_output) {
  std::istringstream lines(probe_output);
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("mount / ")) {
      const std::size_t type_end = line.find(' ', 8);
      line = "mount / <root filesystem>" + (type_end == std::string::npos ? "" : line.substr(type_end));
    }
    out += line + "\n";
  }
  return out;
}

// What the agent may run: the owner's workload policy allows the probe (and the terminal
// probe), the probe's environment, and the capabilities the cases add; the rest is the
// agent's default policy.
json WorkloadPolicy(const std::string& work_dir) {
  json spec = diff::ProbeSpec(work_dir, "/", 0);
  json env = json::array();
  for (const json& entry : spec["process"]["env"]) {
    const std::string text = entry.get<std::string>();
    env.push_back(text.substr(0, text.find('=')) + "=*");
  }
  diff::AddCapabilities(spec);
  std::set<std::string> caps;
  for (const auto& [set, names] : spec["process"]["capabilities"].items()) {
    for (const json& name : names) caps.insert(name.get<std::string>());
  }
  return {{"args", {kProbeArgs, diff::TerminalProbeArgs()}}, {"env", env}, {"capabilities", caps}};
}

// Built once: the root, the image in the registry, the signed boot and agent, the running agent.
struct Material {
  TempDir dir;
  std::string root = dir / "rootfs";
  diff::LoopbackListener listener;
  Registry registry;
  std::string image;
  std::string address = "unix://" + (dir / "agent.sock");
  std::unique_ptr<BackgroundProcess> agent;

  Material() {
    // A user namespace's root (an unprivileged host uid) must be able to reach runc's root.
    if (::chmod(dir.path().c_str(), 0755) != 0) throw std::runtime_error("chmod");
    diff::MakeProbeRoot(root);
    std::string layout = NewLayoutImage(dir / "layout", "probe");
    Check(Run({"tar", "-C", root, "-cf", dir / "probe.tar", "."}), "tar of the probe root");
    AddLayer(layout, dir / "probe.tar");
    ConfigureImage(layout,
                   {"--config.entrypoint=/bin/sh", "--config.cmd=/probe.sh", "--config.workingdir=/",
                    "--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
    registry.Push(layout, "runc-probe:1");
    image = registry.Ref("runc-probe:1");
    StartAgent();
  }

  // `sealroot enclave sign` with this suite's enclave layout; returns its --json identity.
  json Sign(const std::string& executable, const std::string& manifest, int prod_id, const std::string& out) {
    std::vector<std::string> argv = {BuiltProgram("sealroot"), "enclave", "sign", executable, "--key",
                                     dir / "signer.pem",       "--out",   out,    "--json"};
    argv.insert(argv.end(), {"--isv-prod-id", std::to_string(prod_id), "--isv-svn", "1"});
    argv.insert(argv.end(), kEnclaveLayout.begin(), kEnclaveLayout.end());
    if (!manifest.empty()) argv.insert(argv.end(), {"--manifest", manifest});
    CommandResult signed_ = Run(argv);
    Check(signed_, "sealroot enclave sign " + executable);
    return json::parse(signed_.out);
  }

  // The boot accepts keys only from an agent of this signer, product 1; the agent releases them
  // only to this boot. The agent's manifest is its whole configuration.
  void StartAgent() {
    Check(Run({BuiltProgram("sealroot"), "enclave", "keygen", dir / "signer.pem"}),
          "sealroot enclave keygen");
    const std::string boot = BuiltProgram("sealroot-boot");
    const json signer = Sign(boot, "", 2, dir / "unused.sig");
    std::ofstream(dir / "boot-manifest.json")
        << json{{"stub", {{"mrsigner", signer["mrsigner"]}, {"isv_prod_id", 1}, {"min_isv_svn", 1}}}}.dump();
    const json boot_id = Sign(boot, dir / "boot-manifest.json", 2, dir / "boot.sig");
    const json manifest = {{"registry", {{"tls_verify", false}}},
                           // Signatures are the trust tests' business: accept this image.
                           {"trust", {{"policy", {{"default", {{{"type", "insecureAcceptAnything"}}}}}}}},
                           {"app_enclaves", {{{"mrenclave", boot_id["mrenclave"]}}}},
                           {"workload", WorkloadPolicy(dir.path())},
                           {"boot",
                            {{"executable", boot},
                             {"sigstruct", dir / "boot.sig"},
                             {"manifest", dir / "boot-manifest.json"},
                             {"heap_size", 1 << 20},
                             {"threads", 2}}}};
    std::ofstream(dir / "agent-manifest.json") << manifest.dump();
    Sign(BuiltProgram("enclave-agent"), dir / "agent-manifest.json", 1, dir / "agent.sig");
    // Only addresses and directories come from argv.
    std::vector<std::string> argv = {BuiltProgram("sealroot"), "enclave", "run",
                                     BuiltProgram("enclave-agent")};
    argv.insert(argv.end(), {"--sigstruct", dir / "agent.sig", "--manifest", dir / "agent-manifest.json"});
    argv.insert(argv.end(), kEnclaveLayout.begin(), kEnclaveLayout.end());
    argv.insert(argv.end(),
                {"--", "--ttrpc", address, "--state-dir", dir / "state", "--store", dir / "store"});
    agent = std::make_unique<BackgroundProcess>(argv, dir / "agent.log");
    for (int i = 0; i < 300; ++i) {
      if (Run({BuiltProgram("sealroot"), "ctl", "--address", address, "health"}).ok()) return;
      std::this_thread::sleep_for(100ms);
    }
    throw std::runtime_error("the agent did not come up: " + Log());
  }

  std::string Log() const {
    std::ifstream in(dir / "agent.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};
Material* material = nullptr;

class RuncDiffAgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (material == nullptr) material = new Material;
  }
  static void TearDownTestSuite() {
    delete material;
    material = nullptr;
  }

  json ProbeSpec() { return diff::ProbeSpec(work_.path(), material->root, material->listener.port()); }

  CommandResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {BuiltProgram("sealroot"), "ctl", "--address", material->address});
    CommandOptions options;
    options.timeout = std::chrono::seconds(120);
    return testing::Run(args, options);
  }

  // PullImage, CreateContainer with `spec` as `sealroot ctl create --spec` forwards it,
  // StartContainer, the container's stdout, its exit status (exit_code) and stderr.
  CommandResult RunThroughAgent(const json& spec) {
    const std::string id = "runc-diff-" + std::to_string(++runs_);
    const std::string path = work_ / (id + ".json");
    std::ofstream(path) << spec.dump(2);
    CommandResult result;
    for (const auto& step :
         std::vector<std::vector<std::string>>{{"pull", material->image, "--container-id", id},
                                               {"create", id, "--spec", path},
                                               {"start", id}}) {
      CommandResult r = Ctl(step);
      if (!r.ok()) {
        result.err = "sealroot ctl " + step[0] + ": " + r.err + "\nagent log:\n" + material->Log();
        Ctl({"rm", id});
        return result;
      }
    }
    result.out = Ctl({"logs", id}).out;
    CommandResult waited = Ctl({"wait", id});
    result.exit_code = waited.ok() ? std::stoi(waited.out) : -1;
    result.err = Ctl({"logs", id, "--stderr"}).out;
    EXPECT_TRUE(Ctl({"rm", id}).ok());
    return result;
  }

  // Runs `spec` with runc and `agent_spec` (by default the same) through the agent and expects
  // the same probe output; returns the agent's.
  std::string ExpectSameAsRunc(const json& spec, const json& agent_spec = nullptr) {
    CommandResult runc = diff::RunRunc(spec, work_.path());
    CommandResult agent = RunThroughAgent(agent_spec.is_null() ? spec : agent_spec);
    EXPECT_EQ(runc.exit_code, 0) << runc.out << runc.err;
    EXPECT_NE(runc.out.find("\nCapBnd:"), std::string::npos) << "the probe did not run:\n" << runc.out;
    EXPECT_EQ(agent.exit_code, 0) << agent.err;
    const std::string expected = Normalise(runc.out), actual = Normalise(agent.out);
    EXPECT_EQ(actual, expected) << diff::DiffLines(expected, actual) << "runc stderr: " << runc.err
                                << "\ncontainer stderr: " << agent.err;
    return agent.out;
  }

  TempDir work_;
  int runs_ = 0;
};

TEST_F(RuncDiffAgentTest, RuncSpecDefault) {
  ExpectSameAsRunc(ProbeSpec());
}

TEST_F(RuncDiffAgentTest, ExtraCapabilities) {
  json spec = ProbeSpec();
  diff::AddCapabilities(spec);
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffAgentTest, UserNamespaceRootlessStyle) {
  // runc gets the root as a rootless runtime has it, owned by the ids root maps to; the agent's
  // is the image (owned by 0), which the boot presents shifted to those ids.
  const std::string mapped_root = material->dir / "rootfs-userns";
  diff::MakeUserNamespaceRoot(material->root, mapped_root);
  json spec = ProbeSpec();
  spec["root"]["path"] = mapped_root;
  diff::AddUserNamespace(spec);
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffAgentTest, SeccompDenyingOneSyscallWithErrno) {
  json spec = ProbeSpec();
  diff::DenyMkdirWithErrno(spec);
  ExpectSameAsRunc(spec);
}

// The agent API carries no umask (kata's grpc.User has none; `ctl create --spec` refuses it,
// design/api.md), so unlike the boot's suite this case leaves it out. runc writes to a copy of
// the root.
TEST_F(RuncDiffAgentTest, HostnameSysctlOomScoreWritableRoot) {
  const std::string writable_root = work_ / "rootfs-writable";
  ASSERT_TRUE(testing::Run({"cp", "-a", material->root, writable_root}).ok());
  json spec = ProbeSpec();
  spec["root"]["path"] = writable_root;
  diff::SetHostnameSysctlsOomScore(spec);
  const std::string out = ExpectSameAsRunc(spec);
  EXPECT_NE(out.find("hostname: probe-host\n"), std::string::npos) << out;
  EXPECT_NE(out.find("write /: ok\n"), std::string::npos) << out;
}

TEST_F(RuncDiffAgentTest, MemoryAndPidsLimits) {
  json spec = ProbeSpec();
  diff::LimitMemoryAndPids(spec);
  const std::string out = ExpectSameAsRunc(spec);
  EXPECT_NE(out.find("memory limit: 67108864\n"), std::string::npos) << out;
  EXPECT_NE(out.find("allocation past the limit: exit 137\n"), std::string::npos) << out;  // SIGKILL
  EXPECT_NE(out.find("pids limit: 20\n"), std::string::npos) << out;
  EXPECT_NE(out.find("fork bomb: stopped at the limit\n"), std::string::npos) << out;
}

// A client that sends only a process (kata's shims, `sealroot ctl create` without --spec) gets
// the agent's defaults, which are `runc spec`'s (design/api.md "The boot spec the agent writes")
// but for what that document says differs: containerd's 14 default capabilities and its
// default seccomp profile, no hostname, a writable root. runc runs `runc spec` with exactly
// those changes.
TEST_F(RuncDiffAgentTest, MinimalSpecGetsRuncsDefaults) {
  const std::string writable_root = work_ / "rootfs-writable";
  ASSERT_TRUE(testing::Run({"cp", "-a", material->root, writable_root}).ok());
  json runc = ProbeSpec();
  runc["root"] = {{"path", writable_root}, {"readonly", false}};
  runc.erase("hostname");
  runc["process"]["capabilities"] = agent::DefaultCapabilities();
  runc["linux"]["seccomp"] = boot::DefaultSeccompProfile();
  const json minimal = {{"ociVersion", runc["ociVersion"]},
                        {"process",
                         {{"args", runc["process"]["args"]},
                          {"env", runc["process"]["env"]},
                          {"cwd", runc["process"]["cwd"]},
                          {"user", runc["process"]["user"]}}}};
  const std::string out = ExpectSameAsRunc(runc, minimal);
  EXPECT_NE(out.find("NoNewPrivs:\t1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:\t2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("write /: ok\n"), std::string::npos) << out;
}

TEST_F(RuncDiffAgentTest, TerminalWithConsoleSize) {
  json spec = ProbeSpec();
  diff::UseTerminal(spec);
  const std::string runc = diff::RunRuncWithConsole(spec, work_.path());
  CommandResult agent = RunThroughAgent(spec);
  EXPECT_EQ(agent.exit_code, 0) << agent.err;
  EXPECT_NE(runc.find("33 101"), std::string::npos) << runc;
  EXPECT_EQ(agent.out, runc) << diff::DiffLines(runc, agent.out);
}

}  // namespace
}  // namespace sealroot::testing
