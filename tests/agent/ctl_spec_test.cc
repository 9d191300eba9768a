// `sealroot ctl create --spec FILE` forwards the whole OCI config.json: a spec with
// capabilities, namespaces, resources, seccomp and mounts goes through ctl and the agent and
// comes out as the same boot spec document; a key grpc.Spec cannot carry is refused, not dropped.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/server/agent.h"
#include "agent/server/workload_policy.h"
#include "agent/spec/oci_spec.h"
#include "base/file.h"
#include "oci.pb.h"
#include "tests/agent/fakes.h"
#include "tests/agent/ttrpc_harness.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;
using sealroot::testing::BuiltProgram;

// Keeps the spec each Start receives, as BootRuntime would turn it into the boot spec.
class CapturingRuntime final : public ContainerRuntime {
 public:
  explicit CapturingRuntime(std::string* spec) : spec_(spec) {}
  Result<std::unique_ptr<Process>> Start(const ContainerLaunch& launch) override {
    *spec_ = launch.spec;
    return std::unique_ptr<Process>(std::make_unique<testing::EchoProcess>());
  }
  Result<std::unique_ptr<Process>> Exec(const std::string&, const std::string&) override {
    return Unimplemented("exec");
  }

 private:
  std::string* spec_;
};

const char kConfig[] = R"({
  "ociVersion": "1.0.2-dev",
  "process": {
    "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
    "args": ["/bin/probe"], "env": ["PATH=/bin"], "cwd": "/",
    "capabilities": {"bounding": ["CAP_KILL", "CAP_NET_ADMIN"], "effective": ["CAP_KILL", "CAP_NET_ADMIN"],
                     "permitted": ["CAP_KILL", "CAP_NET_ADMIN"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true, "oomScoreAdj": 100
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "probe",
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "resources": {"devices": [{"allow": false, "access": "rwm"}],
                  "memory": {"limit": 33554432}, "pids": {"limit": 32}, "cpu": {"shares": 256}},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                   {"type": "user"}],
    "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]},
    "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]
  }
})";

class CtlSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::TestConfig(dir_.path(), 0);
    // The image owner allows this spec's process (the fake image's own command is /bin/sh).
    auto workload = ParseWorkloadPolicy(R"({"args": [["/bin/probe"]], "env": ["PATH=/bin"], "cwd": ["/"],
        "users": [{"uid": 1000, "gid": 1000, "additionalGids": [10]}], "capabilities": ["CAP_NET_ADMIN"]})");
    ASSERT_TRUE(workload.ok()) << workload.status().ToString();
    config_.workload = *workload;
    ServiceDeps deps;
    deps.puller = std::make_unique<testing::FakePuller>();
    deps.runtime = std::make_unique<CapturingRuntime>(&captured_);
    deps.sealer = *MakeKeySealer(SecretBytes::Random(32));
    auto agent = Agent::Start(config_, std::move(deps));
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    agent_ = std::move(*agent);
    ASSERT_TRUE(Ctl({"pull", "registry/a:1", "--container-id", "c1"}).ok());
  }

  sealroot::testing::CommandResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {BuiltProgram("sealroot"), "ctl"});
    args.insert(args.end(), {"--address", config_.ttrpc[0].ToString()});
    return sealroot::testing::Run(args);
  }

  sealroot::testing::TempDir dir_;
  AgentConfig config_;
  std::string captured_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(CtlSpecTest, WholeSpecRoundTripsThroughCtlAndTheAgentIntoTheBootSpec) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "config.json", std::string_view(kConfig)).ok());
  auto created = Ctl({"create", "c1", "--spec", dir_ / "config.json"});
  ASSERT_TRUE(created.ok()) << created.err;
  auto started = Ctl({"start", "c1"});
  ASSERT_TRUE(started.ok()) << started.err;
  ::grpc::Spec spec;
  ASSERT_TRUE(spec.ParseFromString(captured_));
  const json boot_spec = SpecToOciConfig(spec, HostSpecDefaults(json()));
  EXPECT_EQ(boot_spec, json::parse(kConfig)) << boot_spec.dump(2);
}

TEST_F(CtlSpecTest, SpecKeyTheApiCannotCarryIsRefusedNotDropped) {
  json config = json::parse(kConfig);
  config["hooks"] = {{"prestart", json::array({{{"path", "/bin/true"}}})}};
  ASSERT_TRUE(WriteFileAtomic(dir_ / "config.json", config.dump()).ok());
  auto created = Ctl({"create", "c1", "--spec", dir_ / "config.json"});
  EXPECT_FALSE(created.ok());
  EXPECT_NE(created.err.find("spec.hooks"), std::string::npos) << created.err;
  EXPECT_TRUE(captured_.empty());
}

}  // namespace
}  // namespace sealroot::agent
