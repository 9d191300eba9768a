// The production puller against a real OCI layout: what PullImage answers as `image_ref` is
// pinned to the manifest digest for every source, a layout spelled without tag or digest too,
// and it is the same key Resolve gives the image.
#include <gtest/gtest.h>

#include "agent/server/puller.h"
#include "base/file.h"
#include "tests/support/images.h"
#include "tests/support/process.h"

namespace sealroot::agent {
namespace {

TEST(PipelinePullerTest, ALayoutWithoutTagOrDigestIsAnsweredDigestPinned) {
  sealroot::testing::TempDir dir;
  const std::string layout = dir / "layout";
  sealroot::testing::NewLayoutImage(layout, "latest");
  ASSERT_TRUE(
      WriteFileAtomic(dir / "policy.json", R"({"default": [{"type": "insecureAcceptAnything"}]})").ok());
  AgentConfig config;
  config.store_dir = dir / "store";
  config.trust.policy_path = dir / "policy.json";
  auto puller = MakePipelinePuller(config, nullptr);
  ASSERT_TRUE(puller.ok()) << puller.status().ToString();

  ASSERT_TRUE(MakeDirs(dir / "store/images").ok());
  const SecretBytes key = SecretBytes::Random(32);
  PullJob job{"oci:" + layout, SecretBytes(), dir / "store/images/a", &key, ""};
  Result<ResolvedRef> resolved = (*puller)->Resolve(job);
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  Result<PulledImage> pulled = (*puller)->Pull(job);
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ(pulled->image_ref, "oci:" + layout + "@" + resolved->manifest_digest);
  EXPECT_EQ(pulled->image_ref, resolved->key);
  EXPECT_NE(pulled->root_hash, fusefs::RootHash{});
}

}  // namespace
}  // namespace sealroot::agent
