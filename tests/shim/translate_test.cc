// The shim's pure parts: its configuration file and the translation of containerd's bundle
// config.json into the agent's grpc.Spec.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "shim/config.h"
#include "shim/spec.h"

namespace sealroot::shim {
namespace {

using nlohmann::json;

constexpr char kAgent[] = R"("agent": {"executable": "/a/enclave-agent", "sigstruct": "/a/agent.sig"})";

TEST(ShimConfigTest, ParsesAndDefaults) {
  auto config = ParseShimConfig(std::string("{") + kAgent + R"(, "manifest": "/etc/a.json"})");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->agent.executable, "/a/enclave-agent");
  EXPECT_EQ(config->agent.heap_size, 64ull << 20);
  EXPECT_EQ(config->manifest, "/etc/a.json");
  EXPECT_EQ(config->image_annotation, "io.kubernetes.cri.image-name");
  EXPECT_EQ(config->socket_root, "/run/sealroot/s");
}

TEST(ShimConfigTest, RefusesTyposRelativePathsAndAnAgentWithoutManifest) {
  auto typo = ParseShimConfig(std::string("{") + kAgent + R"(, "manifest": "/a.json", "stateroot": "/x"})");
  EXPECT_EQ(typo.status().code(), Code::kInvalidArgument);
  EXPECT_NE(typo.status().message().find("stateroot"), std::string::npos);
  auto relative = ParseShimConfig(std::string("{") + kAgent + R"(, "manifest": "a.json"})");
  EXPECT_EQ(relative.status().code(), Code::kInvalidArgument);
  // An agent in an enclave reads no config file: the host could edit it.
  auto config_file = ParseShimConfig(std::string("{") + kAgent + R"(, "agent_config": "/a.json"})");
  EXPECT_EQ(config_file.status().code(), Code::kInvalidArgument);
  auto neither = ParseShimConfig(std::string("{") + kAgent + "}");
  EXPECT_EQ(neither.status().code(), Code::kInvalidArgument);
  auto long_sockets = ParseShimConfig(
      std::string("{") + kAgent +
      R"(, "manifest": "/m.json", "socket_root": "/a/very/long/directory/for/unix/sockets/x"})");
  EXPECT_EQ(long_sockets.status().code(), Code::kInvalidArgument);
}

TEST(ShimSpecTest, CarriesTheProcessMountsAndLinuxButNotTheHostRoot) {
  json config = json::parse(R"({
    "ociVersion": "1.0.2", "hostname": "pod1",
    "process": {"args": ["sh", "-c", "true"], "env": ["A=1"], "cwd": "/work", "terminal": false,
                "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
                "noNewPrivileges": true, "oomScoreAdj": 5},
    "root": {"path": "/run/containerd/io.containerd.runtime.v2.task/k8s.io/x/rootfs", "readonly": true},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]}],
    "annotations": {"io.kubernetes.cri.container-type": "container"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc", "path": "/proc/42/ns/ipc"},
                             {"type": "network", "path": "/var/run/netns/cni-1"}],
              "resources": {"memory": {"limit": 1048576}, "pids": {"limit": 10},
                            "devices": [{"allow": false, "access": "rwm"}]},
              "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
              "maskedPaths": ["/proc/kcore"], "cgroupsPath": "/k8s/x"}})");
  auto spec = SpecFromOci(config);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->process().args_size(), 3);
  EXPECT_EQ(spec->process().cwd(), "/work");
  EXPECT_EQ(spec->process().user().uid(), 1000u);
  EXPECT_EQ(spec->process().user().additionalgids(0), 10u);
  EXPECT_EQ(spec->process().capabilities().bounding(0), "CAP_KILL");
  EXPECT_EQ(spec->process().rlimits(0).soft(), 512u);
  EXPECT_TRUE(spec->process().nonewprivileges());
  EXPECT_EQ(spec->process().oomscoreadj(), 5);
  EXPECT_EQ(spec->root().path(), "");  // the host's rootfs is never handed on
  EXPECT_TRUE(spec->root().readonly());
  EXPECT_EQ(spec->hostname(), "pod1");
  EXPECT_EQ(spec->mounts(0).destination(), "/proc");
  EXPECT_EQ(spec->annotations().at("io.kubernetes.cri.container-type"), "container");
  ASSERT_EQ(spec->linux().namespaces_size(), 3);
  EXPECT_EQ(spec->linux().namespaces(1).path(), "/proc/42/ns/ipc");  // JoinPodNamespaces decides
  EXPECT_EQ(spec->linux().namespaces(2).path(), "/var/run/netns/cni-1");
  EXPECT_EQ(spec->linux().resources().memory().limit(), 1048576);
  EXPECT_EQ(spec->linux().resources().pids().limit(), 10);
  EXPECT_EQ(spec->linux().resources().devices(0).major(), -1);  // absent: any
  EXPECT_EQ(spec->linux().seccomp().syscalls(0).names(0), "read");
  EXPECT_EQ(spec->linux().maskedpaths(0), "/proc/kcore");
}

TEST(ShimSpecTest, CtrDefaultsGiveWayToTheImage) {
  auto spec = SpecFromOci(json::parse(R"({"process": {"user": {"uid": 0, "gid": 0}, "cwd": "/"},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
               {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]}]})"));
  ASSERT_TRUE(spec.ok());
  LeaveImageDefaults(*spec);
  EXPECT_FALSE(spec->process().has_user());
  EXPECT_EQ(spec->process().cwd(), "");
  DropRunTmpfs(*spec);
  // containerd's /run tmpfs goes (the image's /run stays, as through the CRI); the rest is kept.
  ASSERT_EQ(spec->mounts_size(), 2);
  EXPECT_EQ(spec->mounts(0).destination(), "/proc");
  EXPECT_EQ(spec->mounts(1).destination(), "/data");
  auto chosen = SpecFromOci(json::parse(R"({"process": {"user": {"uid": 7, "gid": 0}, "cwd": "/srv"}})"));
  ASSERT_TRUE(chosen.ok());
  LeaveImageDefaults(*chosen);
  EXPECT_EQ(chosen->process().user().uid(), 7u);
  EXPECT_EQ(chosen->process().cwd(), "/srv");
}

TEST(ShimSpecTest, TheSandboxsDevShmBecomesTheContainersOwn) {
  auto spec = SpecFromOci(json::parse(R"({"mounts": [
    {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts", "options": ["rbind"]},
    {"destination": "/dev/shm", "type": "bind", "source": "/run/containerd/x/shm", "options": ["rbind", "rw"]}]})"));
  ASSERT_TRUE(spec.ok());
  PrivateDevShm(*spec);
  EXPECT_EQ(spec->mounts(0).type(), "bind");
  EXPECT_EQ(spec->mounts(1).type(), "tmpfs");
  EXPECT_EQ(spec->mounts(1).source(), "shm");
  EXPECT_EQ(spec->mounts(1).options(0), "nosuid");
}

TEST(ShimSpecTest, TheSandboxsNetworkIpcAndUtsNamespacesAreThePausesToHold) {
  auto held = SandboxNamespaces(json::parse(R"({"linux": {"namespaces": [
    {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
    {"type": "network", "path": "/var/run/netns/cni-1"}]}})"));
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 3u);
  EXPECT_EQ((*held)[0].type, "ipc");
  EXPECT_EQ((*held)[0].path, "");
  EXPECT_EQ((*held)[2].type, "network");
  EXPECT_EQ((*held)[2].path, "/var/run/netns/cni-1");
  // A host-network pod: no network (nor uts) namespace of its own.
  auto host =
      SandboxNamespaces(json::parse(R"({"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}]}})"));
  ASSERT_TRUE(host.ok());
  ASSERT_EQ(host->size(), 1u);
  EXPECT_EQ((*host)[0].type, "ipc");
}

TEST(ShimSpecTest, ContainersJoinWhatThePauseHolds) {
  auto spec = SpecFromOci(json::parse(R"({"linux": {"namespaces": [
    {"type": "pid", "path": "/proc/42/ns/pid"}, {"type": "ipc", "path": "/proc/42/ns/ipc"},
    {"type": "uts", "path": "/proc/42/ns/uts"}, {"type": "mount"},
    {"type": "network", "path": "/proc/42/ns/net"}, {"type": "cgroup", "path": "/proc/7/ns/cgroup"}]}})"));
  ASSERT_TRUE(spec.ok());
  // The pause (pid 42) holds the pod's ipc and network namespaces; the pod's uts is the host's.
  const std::vector<PodNamespace> held = {{"ipc", ""}, {"network", "/var/run/netns/cni-1"}};
  JoinPodNamespaces(*spec, 42, held);
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& ns : spec->linux().namespaces()) got.emplace_back(ns.type(), ns.path());
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{{"pid", ""},
                                                                   {"ipc", "/proc/42/ns/ipc"},
                                                                   {"mount", ""},
                                                                   {"network", "/proc/42/ns/net"},
                                                                   {"cgroup", ""}}));
  // Another process's namespace is never joined: a new one.
  auto other = SpecFromOci(
      json::parse(R"({"linux": {"namespaces": [{"type": "network", "path": "/proc/43/ns/net"}]}})"));
  ASSERT_TRUE(other.ok());
  JoinPodNamespaces(*other, 42, held);
  ASSERT_EQ(other->linux().namespaces_size(), 1);
  EXPECT_EQ(other->linux().namespaces(0).path(), "");
  // Without a pause (a ctr pod of its own) every /proc path becomes a new namespace.
  auto alone =
      SpecFromOci(json::parse(R"({"linux": {"namespaces": [{"type": "ipc", "path": "/proc/42/ns/ipc"}]}})"));
  ASSERT_TRUE(alone.ok());
  JoinPodNamespaces(*alone, 0, {});
  EXPECT_EQ(alone->linux().namespaces(0).path(), "");
}

TEST(ShimSpecTest, EmptyDirsAndAnnotatedVolumesAreSealed) {
  auto spec = SpecFromOci(json::parse(R"({"mounts": [
    {"destination": "/cache", "type": "bind", "options": ["rbind", "rw"],
     "source": "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/cache"},
    {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts", "options": ["rbind"]},
    {"destination": "/config", "type": "bind", "source": "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/c"},
    {"destination": "/sub", "type": "bind", "source": "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/a/b"},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]}]})"));
  ASSERT_TRUE(spec.ok());
  ASSERT_TRUE(SealVolumes(*spec, {{"io.sealroot.sealed-volumes", "/data,/scratch/"}}).ok());
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& m : spec->mounts()) got.emplace_back(m.destination(), m.type());
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{{"/cache", "sealroot.volume"},
                                                                   {"/etc/hosts", "bind"},
                                                                   {"/config", "bind"},
                                                                   {"/sub", "bind"},
                                                                   {"/data", "sealroot.volume"},
                                                                   {"/scratch", "sealroot.volume"}}));
  EXPECT_EQ(spec->mounts(0).options_size(), 0);
  EXPECT_EQ(spec->mounts(0).source(), "sealroot");  // nothing of the host's directory
  for (const char* bad : {"data", "/", "/a/../etc"}) {
    EXPECT_EQ(SealVolumes(*spec, {{"io.sealroot.sealed-volumes", bad}}).code(), Code::kInvalidArgument)
        << bad;
  }
}

TEST(ShimSpecTest, WrongTypesAreRefused) {
  auto spec = SpecFromOci(json::parse(R"({"process": {"args": "sh"}})"));
  EXPECT_EQ(spec.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace sealroot::shim
