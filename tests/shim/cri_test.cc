// The CRI path: containerd's CRI plugin (as kubelet drives it, from a client generated from the
// project's own cri.proto) runs two pods with two containers each at once with the runtime
// handler "sealroot": each pod gets one shim and one stub enclave, each container its own app
// enclave; statuses, exit codes and the CRI log files are what kubelet would see, and removing
// the pods leaves nothing on the host.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/shim/containerd_fixture.h"

namespace sealroot::testing::shim {
namespace {

using nlohmann::json;

// The CRI resolves an image's configuration (and the sandbox image) from containerd's store: a
// plaintext image is pulled on the host too (design/shim.md "Images through the CRI").
void PullOnTheHost(Containerd& containerd, const std::string& image) {
  CommandResult pulled = sealroot::testing::Run({"ctr", "--address", containerd.socket(), "--namespace",
                                                 "k8s.io", "images", "pull", "--plain-http", image});
  ASSERT_TRUE(pulled.ok()) << pulled.err;
}

// Runs tests/shim/cri_client.py (stubs generated from tests/shim/cri.proto into `work`) and
// returns its JSON summary.
json RunCriClient(Containerd& containerd, const TempDir& work, const std::string& image, int pods,
                  int containers, const std::string& network = "node") {
  const std::string source = SourceDir() + "/tests/shim";
  if (!std::filesystem::exists(work / "cri_pb2.py")) {
    CommandResult generated = sealroot::testing::Run(
        {"/usr/bin/python3", "-m", "grpc_tools.protoc", "-I", source, "--python_out=" + work.path(),
         "--grpc_python_out=" + work.path(), source + "/cri.proto"});
    EXPECT_TRUE(generated.ok()) << generated.err;
  }
  CommandResult client = sealroot::testing::Run(
      {"/usr/bin/python3", source + "/cri_client.py", work.path(), containerd.socket(), image,
       work / ("logs-" + network), std::to_string(pods), std::to_string(containers), network},
      {.timeout = std::chrono::seconds(900)});
  EXPECT_TRUE(client.ok()) << client.err << containerd.Log();
  json out = json::parse(client.out, nullptr, false);
  EXPECT_TRUE(out.is_object()) << client.out << client.err;
  return out;
}

// What a CRI log line says: "<RFC 3339 time> stdout F <line>".
std::string LogText(const json& status) {
  if (status["log"].size() != 1) return "";
  const std::string line = status["log"][0];
  const std::string tag = " stdout F ";
  std::size_t at = line.find(tag);
  return at == std::string::npos ? "" : line.substr(at + tag.size());
}

std::string Readlink(const std::string& path) {
  std::error_code error;
  return std::filesystem::read_symlink(path, error).string();
}

TEST(ShimCriTest, TwoPodsWithTwoContainersEachRunAndAreRemoved) {
  Material& m = M();
  Containerd containerd(/*cri=*/true);
  PullOnTheHost(containerd, m.plain_image);
  TempDir work;
  json out = RunCriClient(containerd, work, m.plain_image, 2, 2);
  for (std::string pod : {"pod0", "pod1"}) {
    EXPECT_EQ(out[pod], "removed") << containerd.Log();
    for (std::string c : {"c0", "c1"}) {
      ASSERT_TRUE(out.contains(pod + "/" + c)) << out.dump() << containerd.Log();
      const json& status = out[pod + "/" + c];
      EXPECT_EQ(status["state"], "CONTAINER_EXITED") << status.dump();
      EXPECT_EQ(status["exit_code"], 5) << status.dump();
      // CRI log format: "<RFC 3339 time> stdout F <line>"
      ASSERT_EQ(status["log"].size(), 1u) << status.dump();
      std::string line = status["log"][0];
      EXPECT_TRUE(line.ends_with(" stdout F hello from cri")) << line;
    }
  }
  const std::string pods = m.dir / "pods";
  EXPECT_TRUE(!std::filesystem::exists(pods) || std::filesystem::is_empty(pods));
  EXPECT_TRUE(ProcessesStillMentioning(containerd.socket()).empty()) << "a shim still runs";
}

// As runc pods do through the pause container, a pod's app containers share the pod's network,
// IPC and UTS namespaces, which the shim's pause process (the sandbox task) holds: CNI's network
// namespace, new IPC and UTS ones with the pod's hostname. A host-network pod's container is in
// the host's network namespace and still in the pod's IPC namespace. Each container is compared
// with the sandbox task while the pod runs (namespace inode numbers are reused once freed).
TEST(ShimCriTest, PodContainersShareThePodsNamespaces) {
  Material& m = M();
  Containerd containerd(/*cri=*/true);
  PullOnTheHost(containerd, m.namespaces_image);
  TempDir work;
  const std::string host_net = Readlink("/proc/self/ns/net"), host_ipc = Readlink("/proc/self/ns/ipc"),
                    host_uts = Readlink("/proc/self/ns/uts");
  ASSERT_FALSE(host_net.empty());

  json pod = RunCriClient(containerd, work, m.namespaces_image, 1, 2, "pod");
  EXPECT_EQ(pod["pod0"], "removed") << pod.dump() << containerd.Log();
  std::istringstream sandbox(pod.value("pod0/sandbox", ""));
  std::string net, ipc, uts;
  sandbox >> net >> ipc >> uts;
  EXPECT_TRUE(net.starts_with("net:[")) << pod.dump();
  EXPECT_NE(net, host_net);
  EXPECT_NE(ipc, host_ipc);
  EXPECT_NE(uts, host_uts);
  for (std::string c : {"pod0/c0", "pod0/c1"}) {
    ASSERT_TRUE(pod.contains(c)) << pod.dump();
    EXPECT_EQ(LogText(pod[c]), net + " " + ipc + " " + uts + " pod0") << pod.dump();
  }

  json host = RunCriClient(containerd, work, m.namespaces_image, 1, 1, "node");
  EXPECT_EQ(host["pod0"], "removed") << host.dump() << containerd.Log();
  std::istringstream host_sandbox(host.value("pod0/sandbox", ""));
  host_sandbox >> net >> ipc >> uts;
  EXPECT_EQ(net, host_net) << host.dump();
  EXPECT_NE(ipc, host_ipc);
  ASSERT_TRUE(host.contains("pod0/c0")) << host.dump();
  std::istringstream container(LogText(host["pod0/c0"]));
  std::string container_net, container_ipc;
  container >> container_net >> container_ipc;
  EXPECT_EQ(container_net, host_net) << host.dump();
  EXPECT_EQ(container_ipc, ipc) << host.dump();
  EXPECT_TRUE(ProcessesStillMentioning(containerd.socket()).empty()) << "a shim still runs";
}

}  // namespace
}  // namespace sealroot::testing::shim
