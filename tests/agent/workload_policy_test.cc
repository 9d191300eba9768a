// The workload policy: a host's CreateContainer/ExecProcess spec against the signed image config
// and the owner's policy. Each refusal names the field; each attack is one test.
#include "agent/server/workload_policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "oci.pb.h"

namespace sealroot::agent {
namespace {

const ImageRunConfig kImage{{"/docker-entrypoint.sh"},
                            {"nginx", "-g", "daemon off;"},
                            {"PATH=/usr/local/bin:/usr/bin:/bin", "NGINX_VERSION=1.25"},
                            "/srv",
                            ""};

::grpc::Spec ImageSpec() {
  ::grpc::Spec spec;
  ::grpc::Process& p = *spec.mutable_process();
  for (const char* arg : {"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}) p.add_args(arg);
  for (const char* env : {"PATH=/usr/local/bin:/usr/bin:/bin", "NGINX_VERSION=1.25", "HOSTNAME=web-1",
                          "TERM=xterm", "KUBERNETES_SERVICE_HOST=10.96.0.1",
                          "KUBERNETES_SERVICE_PORT_HTTPS=443", "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1"}) {
    p.add_env(env);
  }
  p.set_cwd("/srv");
  p.mutable_user()->set_uid(0);
  p.mutable_user()->set_gid(0);
  for (const char* cap : {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"})
    p.mutable_capabilities()->add_bounding(cap);
  for (auto [dest, type] : std::initializer_list<std::pair<const char*, const char*>>{
           {"/proc", "proc"}, {"/dev", "tmpfs"}, {"/dev/pts", "devpts"}, {"/sys", "sysfs"}}) {
    ::grpc::Mount& m = *spec.add_mounts();
    m.set_destination(dest);
    m.set_type(type);
    m.set_source(type);
  }
  ::grpc::Mount& hosts = *spec.add_mounts();
  hosts.set_destination("/etc/hosts");
  hosts.set_type("bind");
  hosts.set_source("/var/lib/containerd/pod/hosts");
  for (const char* ns : {"pid", "ipc", "mount", "uts", "network"})
    spec.mutable_linux()->add_namespaces()->set_type(ns);
  ::grpc::LinuxDeviceCgroup& deny = *spec.mutable_linux()->mutable_resources()->add_devices();
  deny.set_allow(false);
  deny.set_access("rwm");
  ::grpc::LinuxDeviceCgroup& null = *spec.mutable_linux()->mutable_resources()->add_devices();
  null.set_allow(true);
  null.set_type("c");
  null.set_major(1);
  null.set_minor(3);
  null.set_access("rwm");
  return spec;
}

void ExpectDenied(const Status& status, std::string_view field) {
  EXPECT_EQ(status.code(), Code::kPermissionDenied) << status.ToString();
  EXPECT_NE(status.message().find(field), std::string::npos) << status.ToString();
}

TEST(WorkloadPolicyTest, TheImagesOwnProcessWithRuntimeAdditionsIsAccepted) {
  EXPECT_TRUE(CheckContainerSpec({}, kImage, ImageSpec()).ok())
      << CheckContainerSpec({}, kImage, ImageSpec()).ToString();
  ::grpc::Spec empty;  // nothing given: the image's process and the agent's defaults
  EXPECT_TRUE(CheckContainerSpec({}, kImage, empty).ok());
}

TEST(WorkloadPolicyTest, HostChosenArgsAreRefused) {
  ::grpc::Spec spec = ImageSpec();
  spec.mutable_process()->clear_args();
  for (const char* arg : {"/bin/tar", "c", "/"}) spec.mutable_process()->add_args(arg);
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "process.args");
}

TEST(WorkloadPolicyTest, OwnerPolicyAllowsExactlyTheListedArgv) {
  WorkloadPolicy policy = *ParseWorkloadPolicy(R"({"args": [["nginx", "-T"]]})");
  ::grpc::Spec spec = ImageSpec();
  spec.mutable_process()->clear_args();
  spec.mutable_process()->add_args("nginx");
  spec.mutable_process()->add_args("-T");
  EXPECT_TRUE(CheckContainerSpec(policy, kImage, spec).ok());
  spec.mutable_process()->add_args("-q");  // one more argument is another command
  ExpectDenied(CheckContainerSpec(policy, kImage, spec), "process.args");
  EXPECT_FALSE(policy.PinsToImage());
  EXPECT_TRUE(ParseWorkloadPolicy(R"({"exec": [["ls"]]})")->PinsToImage());
}

TEST(WorkloadPolicyTest, InjectedOrChangedEnvironmentIsRefusedByName) {
  for (const std::string env : {"LD_PRELOAD=/tmp/x.so", "PATH=/tmp/evil:/usr/bin", "NGINX_VERSION=0.1"}) {
    ::grpc::Spec spec = ImageSpec();
    spec.mutable_process()->add_env(env);
    ExpectDenied(CheckContainerSpec({}, kImage, spec), "process.env: " + env.substr(0, env.find('=')));
  }
  WorkloadPolicy policy = *ParseWorkloadPolicy(R"({"env": ["MODE=fast", "DEBUG=*"]})");
  ::grpc::Spec spec = ImageSpec();
  spec.mutable_process()->add_env("MODE=fast");
  spec.mutable_process()->add_env("DEBUG=anything");
  EXPECT_TRUE(CheckContainerSpec(policy, kImage, spec).ok());
  spec.mutable_process()->add_env("MODE=slow");
  ExpectDenied(CheckContainerSpec(policy, kImage, spec), "process.env: MODE");
}

TEST(WorkloadPolicyTest, DefaultPathIsNotAnOverrideWhenTheImageHasNone) {
  ImageRunConfig image{{}, {"sh"}, {}, "", ""};
  ::grpc::Spec spec;
  spec.mutable_process()->add_env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  spec.mutable_process()->set_cwd("/");
  EXPECT_TRUE(CheckContainerSpec({}, image, spec).ok());
}

TEST(WorkloadPolicyTest, OtherCwdOrUserIsRefused) {
  ::grpc::Spec spec = ImageSpec();
  spec.mutable_process()->set_cwd("/etc");
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "process.cwd");
  spec = ImageSpec();
  spec.mutable_process()->mutable_user()->set_uid(1000);
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "process.user");
  WorkloadPolicy policy = *ParseWorkloadPolicy(R"({"users": [{"uid": 1000, "gid": 0}], "cwd": ["/etc"]})");
  spec.mutable_process()->set_cwd("/etc");
  EXPECT_TRUE(CheckContainerSpec(policy, kImage, spec).ok());
  spec.mutable_process()->mutable_user()->add_additionalgids(6);  // "disk"
  ExpectDenied(CheckContainerSpec(policy, kImage, spec), "process.user");
}

TEST(WorkloadPolicyTest, HostPidNamespaceOrAJoinedOneIsRefused) {
  ::grpc::Spec spec = ImageSpec();
  spec.mutable_linux()->clear_namespaces();
  for (const char* ns : {"ipc", "mount", "network"}) spec.mutable_linux()->add_namespaces()->set_type(ns);
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "linux.namespaces: no pid namespace");
  spec = ImageSpec();
  spec.mutable_linux()->mutable_namespaces(0)->set_path("/proc/1/ns/pid");
  ExpectDenied(CheckContainerSpec({}, kImage, spec),
               "linux.namespaces: the pid namespace joins /proc/1/ns/pid");
  spec = ImageSpec();
  spec.mutable_linux()->mutable_namespaces(4)->set_path("/var/run/netns/pod");  // the pod's network: fine
  EXPECT_TRUE(CheckContainerSpec({}, kImage, spec).ok());
}

// The host's network namespace by any path (PID 1's, this process's, which is the host's here)
// is refused unless the owner lists the path.
TEST(WorkloadPolicyTest, HostNetworkNamespacePathIsRefusedUnlessTheOwnerListsIt) {
  for (const std::string& path :
       {std::string("/proc/1/ns/net"), std::string("/proc/self/ns/net"),
        "/proc/" + std::to_string(::getpid()) + "/ns/net", std::string("/dev/null")}) {
    ::grpc::Spec spec = ImageSpec();
    spec.mutable_linux()->mutable_namespaces(4)->set_path(path);
    ExpectDenied(CheckContainerSpec({}, kImage, spec),
                 "linux.namespaces: the network namespace joins " + path);
  }
  Result<WorkloadPolicy> policy = ParseWorkloadPolicy(R"({"namespaces": {"network": ["/proc/1/ns/net"]}})");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  ::grpc::Spec spec = ImageSpec();
  spec.mutable_linux()->mutable_namespaces(4)->set_path("/proc/1/ns/net");
  EXPECT_TRUE(CheckContainerSpec(*policy, kImage, spec).ok());
  EXPECT_FALSE(ParseWorkloadPolicy(R"({"namespaces": {"mount": ["/proc/1/ns/mnt"]}})").ok());
}

TEST(WorkloadPolicyTest, ResourceBoundsHoldAtCreationAndOnUpdate) {
  Result<WorkloadPolicy> policy =
      ParseWorkloadPolicy(R"({"resources": {"memory": 1048576, "pids": 10, "cpus": 1}})");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  ::grpc::Spec spec = ImageSpec();
  ExpectDenied(CheckContainerSpec(*policy, kImage, spec), "linux.resources.memory.limit: not set");
  ::grpc::LinuxResources* r = spec.mutable_linux()->mutable_resources();
  r->mutable_memory()->set_limit(1048576);
  r->mutable_pids()->set_limit(10);
  r->mutable_cpu()->set_quota(50000);
  r->mutable_cpu()->set_period(100000);
  EXPECT_TRUE(CheckContainerSpec(*policy, kImage, spec).ok());
  r->mutable_cpu()->set_quota(200000);
  ExpectDenied(CheckContainerSpec(*policy, kImage, spec), "linux.resources.cpu.quota: 2 CPUs");
  ::grpc::LinuxResources update;
  update.mutable_pids()->set_limit(-1);
  ExpectDenied(CheckResourceUpdate(*policy, update), "linux.resources.pids.limit: unlimited");
  update.mutable_pids()->set_limit(5);
  EXPECT_TRUE(CheckResourceUpdate(*policy, update).ok()) << "memory and cpu keep their checked values";
  update.add_devices()->set_allow(true);
  ExpectDenied(CheckResourceUpdate(*policy, update), "linux.resources.devices");
  EXPECT_TRUE(CheckResourceUpdate({}, ::grpc::LinuxResources()).ok());
}

TEST(WorkloadPolicyTest, ExtraCapabilityIsRefusedUnlessTheOwnerAllowsIt) {
  ::grpc::Spec spec = ImageSpec();
  spec.mutable_process()->mutable_capabilities()->add_effective("CAP_SYS_ADMIN");
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "process.capabilities.effective: CAP_SYS_ADMIN");
  EXPECT_TRUE(
      CheckContainerSpec(*ParseWorkloadPolicy(R"({"capabilities": ["CAP_SYS_ADMIN"]})"), kImage, spec).ok());
}

TEST(WorkloadPolicyTest, DevicesAndPrivilegedStyleSpecsAreRefused) {
  ::grpc::Spec spec = ImageSpec();
  ::grpc::LinuxDevice& disk = *spec.mutable_linux()->add_devices();
  disk.set_path("/dev/sda");
  disk.set_type("b");
  disk.set_major(8);
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "linux.devices: /dev/sda");
  spec = ImageSpec();
  ::grpc::LinuxDeviceCgroup& all = *spec.mutable_linux()->mutable_resources()->add_devices();
  all.set_allow(true);
  all.set_major(-1);
  all.set_minor(-1);
  all.set_access("rwm");
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "linux.resources.devices");
  spec = ImageSpec();
  ::grpc::LinuxDeviceCgroup& mem = *spec.mutable_linux()->mutable_resources()->add_devices();  // /dev/mem
  mem.set_allow(true);
  mem.set_type("c");
  mem.set_major(1);
  mem.set_minor(1);
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "linux.resources.devices");
  spec = ImageSpec();
  spec.mutable_linux()->mutable_seccomp()->set_defaultaction("SCMP_ACT_ALLOW");
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "linux.seccomp");
}

TEST(WorkloadPolicyTest, BindMountsOtherThanCriFilesAndDeclaredVolumesAreRefused) {
  ::grpc::Spec spec = ImageSpec();
  ::grpc::Mount& root = *spec.add_mounts();
  root.set_destination("/host");
  root.set_source("/");
  root.set_type("bind");
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "bind mount of / on /host");
  root.set_destination("/data/");
  root.set_type("none");
  root.add_options("rbind");
  ExpectDenied(CheckContainerSpec({}, kImage, spec), "bind mount of / on /data");
  EXPECT_TRUE(CheckContainerSpec(*ParseWorkloadPolicy(R"({"volumes": ["/data"]})"), kImage, spec).ok());
}

TEST(WorkloadPolicyTest, NoMountCoversASealedPath) {
  for (auto [dest, type] :
       std::initializer_list<std::pair<const char*, const char*>>{{"/", "tmpfs"},
                                                                  {"/usr/bin", "tmpfs"},
                                                                  {"/etc", "proc"},
                                                                  {"/dev/shm", "bind"},
                                                                  {"/etc/../etc", "tmpfs"}}) {
    ::grpc::Spec spec = ImageSpec();
    ::grpc::Mount& m = *spec.add_mounts();
    m.set_destination(dest);
    m.set_type(type);
    m.set_source("/host/dir");
    ExpectDenied(CheckContainerSpec(*ParseWorkloadPolicy(R"({"volumes": ["/data"]})"), kImage, spec),
                 "mounts[");
  }
}

TEST(WorkloadPolicyTest, ExecRunsOnlyListedCommands) {
  ::grpc::Process exec;
  exec.add_args("sh");
  ExpectDenied(CheckExecProcess({}, kImage, exec), "process.args");
  WorkloadPolicy policy = *ParseWorkloadPolicy(R"({"exec": [["sh"]]})");
  EXPECT_TRUE(CheckExecProcess(policy, kImage, exec).ok());
  exec.add_env("LD_PRELOAD=/tmp/x.so");
  ExpectDenied(CheckExecProcess(policy, kImage, exec), "process.env: LD_PRELOAD");
  EXPECT_EQ(CheckExecProcess(policy, kImage, ::grpc::Process()).code(), Code::kInvalidArgument);
}

TEST(WorkloadPolicyTest, MalformedPoliciesAreRefused) {
  for (const char* text :
       {R"({"args": [[]]})", R"({"arg": []})", R"({"env": ["NOEQUALS"]})", R"({"cwd": ["rel"]})",
        R"({"volumes": ["/"]})", R"({"capabilities": ["SYS_ADMIN"]})", R"({"users": [{"uid": 1}]})",
        R"({"exec": "sh"})", "[]"}) {
    EXPECT_EQ(ParseWorkloadPolicy(text).status().code(), Code::kInvalidArgument) << text;
  }
}

}  // namespace
}  // namespace sealroot::agent
