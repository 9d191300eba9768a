// grpc.Spec <-> OCI config.json: every declared field under its OCI name, runc's `runc spec`
// defaults for a minimal spec (checked against Debian's runc itself), strict refusal of what
// grpc.Spec cannot carry, and the checks that keep the agent's API out of a container's reach.
#include "agent/spec/oci_spec.h"

#include <gtest/gtest.h>

#include "agent/server/src/reachability.h"
#include "agent/server/src/validate.h"
#include "tests/support/process.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;

const SpecDefaults kDefaults{json{{"defaultAction", "SCMP_ACT_ERRNO"}, {"syscalls", json::array()}}, false};

::grpc::Spec MinimalSpec() {
  ::grpc::Spec spec;
  spec.mutable_process()->add_args("/bin/sh");
  return spec;
}

std::vector<std::string> NamespaceTypes(const json& config) {
  std::vector<std::string> types;
  for (const json& ns : config["linux"]["namespaces"]) types.push_back(ns["type"]);
  return types;
}

// Every field the agent API carries, in canonical form (what SpecToOciConfig writes back).
const char kFullConfig[] = R"({
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": true, "consoleSize": {"height": 24, "width": 80},
    "user": {"uid": 1000, "gid": 1000, "additionalGids": [5, 10]},
    "args": ["/bin/probe", "--all"], "env": ["PATH=/bin", "A=b"], "cwd": "/srv",
    "capabilities": {"bounding": ["CAP_KILL", "CAP_SYS_ADMIN"], "effective": ["CAP_KILL"],
                     "inheritable": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_SYS_ADMIN"],
                     "ambient": ["CAP_KILL"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}],
    "noNewPrivileges": true, "oomScoreAdj": 500,
    "apparmorProfile": "unconfined", "selinuxLabel": "system_u:system_r:container_t:s0"
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "probe",
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}],
  "annotations": {"io.kubernetes.cri.container-type": "container"},
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"},
    "resources": {
      "devices": [{"allow": false, "access": "rwm"},
                  {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                  {"allow": true, "type": "c", "major": 136, "access": "rw"}],
      "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "kernel": 1048576,
                 "kernelTCP": 524288, "swappiness": 10, "disableOOMKiller": true},
      "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 950,
              "realtimePeriod": 1000, "cpus": "0-1", "mems": "0"},
      "pids": {"limit": 64},
      "blockIO": {"weight": 500, "leafWeight": 300,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                  "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                  "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]}
    },
    "cgroupsPath": "/sealroot/probe",
    "namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/pod"}, {"type": "ipc"},
                   {"type": "uts"}, {"type": "mount"}, {"type": "user"}, {"type": "cgroup"}],
    "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
                 "uid": 0, "gid": 0}],
    "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                             {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                                       {"index": 1, "value": 4, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"}]}]},
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/kcore", "/proc/keys"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
  }
})";

TEST(OciSpecTest, EveryCarriedFieldRoundTripsUnderItsOciName) {
  const json config = json::parse(kFullConfig);
  Result<::grpc::Spec> spec = SpecFromOciConfig(config);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(SpecToOciConfig(*spec, kDefaults), config) << SpecToOciConfig(*spec, kDefaults).dump(2);
}

TEST(OciSpecTest, KataWildcardDeviceNumbersAreLeftOut) {
  ::grpc::Spec spec = MinimalSpec();
  ::grpc::LinuxDeviceCgroup* rule = spec.mutable_linux()->mutable_resources()->add_devices();
  rule->set_allow(true);
  rule->set_type("c");
  rule->set_major(-1);
  rule->set_minor(-1);
  rule->set_access("m");
  json out = SpecToOciConfig(spec, kDefaults);
  EXPECT_EQ(out["linux"]["resources"]["devices"][0], (json{{"allow", true}, {"type", "c"}, {"access", "m"}}));
}

TEST(OciSpecTest, MinimalSpecGetsRuncDefaults) {
  json out = SpecToOciConfig(MinimalSpec(), kDefaults);
  EXPECT_EQ(NamespaceTypes(out), (std::vector<std::string>{"pid", "network", "ipc", "uts", "mount"}));
  const json& caps = out["process"]["capabilities"];
  EXPECT_EQ(caps["bounding"].size(), 14u);
  EXPECT_EQ(caps["effective"], caps["bounding"]);
  EXPECT_EQ(caps["permitted"], caps["bounding"]);
  EXPECT_FALSE(caps.contains("inheritable"));
  EXPECT_FALSE(caps.contains("ambient"));
  for (const char* granted : {"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_SETUID"}) {
    EXPECT_NE(std::find(caps["bounding"].begin(), caps["bounding"].end(), granted), caps["bounding"].end());
  }
  for (const char* withheld : {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_NET_ADMIN", "CAP_SYS_MODULE"}) {
    EXPECT_EQ(std::find(caps["bounding"].begin(), caps["bounding"].end(), withheld), caps["bounding"].end());
  }
  EXPECT_EQ(out["process"]["noNewPrivileges"], true);
  EXPECT_EQ(out["linux"]["seccomp"], kDefaults.seccomp);
  EXPECT_EQ(out["mounts"], DefaultMounts());
  // What the image supplies stays unset: its user, env and working directory apply.
  EXPECT_FALSE(out["process"].contains("user"));
  EXPECT_FALSE(out["process"].contains("env"));
  EXPECT_FALSE(out["process"].contains("cwd"));
  EXPECT_FALSE(out.contains("root"));  // a writable root (the sealed upper)
  EXPECT_EQ(out["process"]["args"], json({"/bin/sh"}));
}

TEST(OciSpecTest, DefaultsAreWhatDebiansRuncSpecWrites) {
  sealroot::testing::TempDir dir;
  auto made = sealroot::testing::Shell("cd " + dir.path() + " && runc spec");
  ASSERT_TRUE(made.ok()) << made.err;
  auto text = sealroot::testing::Shell("cat " + (dir / "config.json"));
  const json runc = json::parse(text.out);
  const json ours = SpecToOciConfig(MinimalSpec(), {json(), false});
  for (const char* key : {"namespaces", "maskedPaths", "readonlyPaths", "resources"}) {
    EXPECT_EQ(ours["linux"][key], runc["linux"][key]) << key;
  }
  EXPECT_FALSE(ours["linux"].contains("seccomp"));
  EXPECT_EQ(ours["mounts"], runc["mounts"]);
  EXPECT_EQ(ours["process"]["rlimits"], runc["process"]["rlimits"]);
  EXPECT_EQ(ours["process"]["noNewPrivileges"], runc["process"]["noNewPrivileges"]);
  EXPECT_EQ(ours["ociVersion"], runc["ociVersion"]);
}

TEST(OciSpecTest, CgroupNamespaceWhereTheHostIsUnified) {
  json out = SpecToOciConfig(MinimalSpec(), {json(), true});
  EXPECT_EQ(NamespaceTypes(out).back(), "cgroup");
}

TEST(OciSpecTest, FullSpecIsTakenAsGivenWithoutDefaults) {
  ::grpc::Spec spec = MinimalSpec();
  spec.mutable_linux()->add_namespaces()->set_type("mount");
  json out = SpecToOciConfig(spec, kDefaults);
  EXPECT_EQ(NamespaceTypes(out), (std::vector<std::string>{"mount"}));
  EXPECT_FALSE(out["linux"].contains("seccomp"));
  EXPECT_FALSE(out.contains("mounts"));
  EXPECT_FALSE(out["process"].contains("noNewPrivileges"));
  EXPECT_FALSE(out["process"].contains("rlimits"));
}

TEST(OciSpecTest, AbsentCapabilitiesGetTheDefaultSetAndEmptyMeansNone) {
  ::grpc::Spec spec = MinimalSpec();
  spec.mutable_linux();
  EXPECT_EQ(SpecToOciConfig(spec, kDefaults)["process"]["capabilities"], DefaultCapabilities());
  spec.mutable_process()->mutable_capabilities();
  EXPECT_EQ(SpecToOciConfig(spec, kDefaults)["process"]["capabilities"], json::object());
  EXPECT_EQ(ProcessToOci(::grpc::Process())["capabilities"], DefaultCapabilities());
}

TEST(OciSpecTest, WhatGrpcSpecCannotCarryIsRefusedByName) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"hooks": {}})", "spec.hooks"},
      {R"({"domainname": "example.com"})", "spec.domainname"},
      {R"({"process": {"user": {"uid": 0, "umask": 18}}})", "process.user.umask"},
      {R"({"linux": {"intelRdt": {}}})", "linux.intelRdt"},
      {R"({"linux": {"resources": {"hugepageLimits": []}}})", "linux.resources.hugepageLimits"},
      {R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}}})",
       "defaultErrnoRet"},
      {R"({"process": {"args": "sh"}})", "wrong JSON type"},
  };
  for (const auto& [text, named] : cases) {
    Result<::grpc::Spec> spec = SpecFromOciConfig(json::parse(text));
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_EQ(spec.status().code(), Code::kInvalidArgument);
    EXPECT_NE(spec.status().message().find(named), std::string::npos) << spec.status().message();
  }
  EXPECT_TRUE(SpecFromOciConfig(json::parse(R"({"linux": {"seccomp": {"defaultErrnoRet": 1}}})")).ok());
}

TEST(OciSpecTest, ValidationRefusesUnknownOrRepeatedNamespacesAndRelativePaths) {
  auto invalid = [](const char* text) {
    Result<::grpc::Spec> spec = SpecFromOciConfig(json::parse(text));
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return spec.ok() ? ValidateSpec(*spec).code() == Code::kInvalidArgument : false;
  };
  EXPECT_TRUE(invalid(R"({"process": {}, "linux": {"namespaces": [{"type": "time"}]}})"));
  EXPECT_TRUE(invalid(R"({"process": {}, "linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}]}})"));
  EXPECT_TRUE(invalid(R"({"process": {}, "linux": {"namespaces": [{"type": "net", "path": "ns"}]}})"));
  EXPECT_TRUE(invalid(R"({"process": {}, "linux": {"maskedPaths": ["proc/kcore"]}})"));
  EXPECT_TRUE(invalid(R"({"process": {"rlimits": [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]}})"));
  ::grpc::Spec ok = *SpecFromOciConfig(json::parse(kFullConfig));
  EXPECT_TRUE(ValidateSpec(ok).ok()) << ValidateSpec(ok).ToString();
}

class ReachabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.ttrpc = {*ListenAddress::Parse("unix://" + (dir_ / "run/agent.sock")),
                     *ListenAddress::Parse("tcp://127.0.0.1:7788")};
    config_.grpc = {*ListenAddress::Parse("unix://" + (dir_ / "grpc/agent-grpc.sock"))};
    config_.state_dir = dir_ / "state";
    config_.store_dir = dir_ / "store";
  }

  ::grpc::Spec FullSpec(std::vector<std::pair<std::string, std::string>> namespaces) {
    ::grpc::Spec spec = MinimalSpec();
    for (const auto& [type, path] : namespaces) {
      ::grpc::LinuxNamespace* ns = spec.mutable_linux()->add_namespaces();
      ns->set_type(type);
      ns->set_path(path);
    }
    return spec;
  }

  static void AddBind(::grpc::Spec& spec, const std::string& source) {
    ::grpc::Mount* mount = spec.add_mounts();
    mount->set_destination("/mnt");
    mount->set_type("bind");
    mount->set_source(source);
    mount->add_options("rbind");
  }

  sealroot::testing::TempDir dir_;
  AgentConfig config_;
};

TEST_F(ReachabilityTest, ContainerSharingTheAgentsNetworkWhileTcpListensIsRefused) {
  Status shared = CheckAgentUnreachable(FullSpec({{"mount", ""}}), config_);
  EXPECT_EQ(shared.code(), Code::kPermissionDenied) << shared.ToString();
  Status joined = CheckAgentUnreachable(FullSpec({{"mount", ""}, {"network", "/proc/self/ns/net"}}), config_);
  EXPECT_EQ(joined.code(), Code::kPermissionDenied) << joined.ToString();
  EXPECT_TRUE(CheckAgentUnreachable(FullSpec({{"mount", ""}, {"network", ""}}), config_).ok());
  EXPECT_TRUE(CheckAgentUnreachable(MinimalSpec(), config_).ok());  // defaults: a new network namespace
  config_.ttrpc.pop_back();                                         // unix sockets only
  EXPECT_TRUE(CheckAgentUnreachable(FullSpec({{"mount", ""}}), config_).ok());
}

TEST_F(ReachabilityTest, ContainerInTheAgentsMountNamespaceIsRefused) {
  EXPECT_EQ(CheckAgentUnreachable(FullSpec({{"network", ""}}), config_).code(), Code::kPermissionDenied);
  EXPECT_EQ(
      CheckAgentUnreachable(FullSpec({{"network", ""}, {"mount", "/proc/self/ns/mnt"}}), config_).code(),
      Code::kPermissionDenied);
}

TEST_F(ReachabilityTest, BindMountOfTheAgentsSocketsOrStateIsRefused) {
  for (const std::string& source :
       {dir_ / "run", dir_ / "grpc/agent-grpc.sock", dir_.path(), std::string("/"),
        dir_ / "state/boot/0123456789abcdef", dir_ / "./store/../run/"}) {
    ::grpc::Spec spec = MinimalSpec();
    AddBind(spec, source);
    EXPECT_EQ(CheckAgentUnreachable(spec, config_).code(), Code::kPermissionDenied) << source;
  }
  ::grpc::Spec spec = MinimalSpec();
  AddBind(spec, dir_ / "data");
  EXPECT_TRUE(CheckAgentUnreachable(spec, config_).ok());
}

}  // namespace
}  // namespace sealroot::agent
