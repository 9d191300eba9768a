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

TEST(ShimCriTest, TwoPodsWithTwoContainersEachRunAndAreRemoved) {
  Material& m = M();
  Containerd containerd(/*cri=*/true);
  // The CRI resolves an image's configuration (and the sandbox image) from containerd's store:
  // a plaintext image is pulled on the host too (design/shim.md "Images through the CRI").
  CommandResult pulled = sealroot::testing::Run({"ctr", "--address", containerd.socket(), "--namespace",
                                                 "k8s.io", "images", "pull", "--plain-http", m.plain_image});
  ASSERT_TRUE(pulled.ok()) << pulled.err;
  TempDir work;
  const std::string source = SourceDir() + "/tests/shim";
  CommandResult generated = sealroot::testing::Run(
      {"/usr/bin/python3", "-m", "grpc_tools.protoc", "-I", source, "--python_out=" + work.path(),
       "--grpc_python_out=" + work.path(), source + "/cri.proto"});
  ASSERT_TRUE(generated.ok()) << generated.err;
  CommandResult client = sealroot::testing::Run({"/usr/bin/python3", source + "/cri_client.py", work.path(),
                                                 containerd.socket(), m.plain_image, work / "logs", "2", "2"},
                                                {.timeout = std::chrono::seconds(900)});
  ASSERT_TRUE(client.ok()) << client.err << containerd.Log();
  json out = json::parse(client.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << client.out << client.err;
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
  EXPECT_TRUE(ProcessesMentioning(containerd.socket()).empty()) << "a shim still runs";
}

}  // namespace
}  // namespace sealroot::testing::shim
