// Per-container keys and upper pins: derived from the agent's secret (one container's keys are
// not another's, nor an earlier container's of the same id), kept sealed across restarts, and
// moved only by a commit that follows the recorded state.
#include "agent/server/src/container_keys.h"

#include <gtest/gtest.h>

#include "base/encoding.h"
#include "base/file.h"
#include "tests/support/process.h"

namespace sealroot::agent {
namespace {

class ContainerKeyringTest : public ::testing::Test {
 protected:
  std::unique_ptr<ContainerKeyring> Load() {
    auto keyring = ContainerKeyring::Load(*sealer_, dir_.path());
    EXPECT_TRUE(keyring.ok()) << keyring.status().ToString();
    return keyring.ok() ? std::move(*keyring) : nullptr;
  }
  static Sha256Digest Root(std::uint8_t fill) {
    Sha256Digest d;
    d.fill(fill);
    return d;
  }

  sealroot::testing::TempDir dir_;
  std::unique_ptr<StateSealer> sealer_ = MakeKeySealer(SecretBytes::Random(32)).value();
};

TEST_F(ContainerKeyringTest, EachContainerHasItsOwnKeys) {
  auto keyring = Load();
  ASSERT_TRUE(keyring->Register("a").ok());
  ASSERT_TRUE(keyring->Register("b").ok());
  ContainerSecrets a = keyring->Secrets("a").value(), b = keyring->Secrets("b").value();
  EXPECT_EQ(a.upper_key.size(), 32u);
  EXPECT_FALSE(a.upper_key == b.upper_key);
  EXPECT_FALSE(a.exec_key == b.exec_key);
  EXPECT_FALSE(a.upper_key == a.exec_key);
  EXPECT_FALSE(a.upper_root.has_value());  // a fresh upper is expected
  EXPECT_EQ(keyring->Secrets("c").status().code(), Code::kNotFound);
  // The same id created again is another container: other keys.
  ASSERT_TRUE(keyring->Register("a").ok());
  EXPECT_FALSE(keyring->Secrets("a")->upper_key == a.upper_key);
}

TEST_F(ContainerKeyringTest, KeysAndPinsSurviveARestartSealed) {
  SecretBytes upper_key;
  {
    auto keyring = Load();
    ASSERT_TRUE(keyring->Register("a").ok());
    ASSERT_TRUE(keyring->RecordUpperCommit("a", {.previous = std::nullopt, .root = Root(1)}).ok());
    upper_key = keyring->Secrets("a")->upper_key.Clone();
  }
  auto restarted = Load();
  ContainerSecrets a = restarted->Secrets("a").value();
  EXPECT_TRUE(a.upper_key == upper_key);
  EXPECT_EQ(a.upper_root, Root(1));
  // Sealed: neither the secret nor a key is in the file.
  std::string file = ReadFile(dir_ / "containers.sealed").value();
  EXPECT_EQ(file.find(HexEncode(upper_key.span())), std::string::npos);
  EXPECT_EQ(file.find("secret"), std::string::npos);
  // Another sealer (another agent) cannot read it.
  auto other = MakeKeySealer(SecretBytes::Random(32)).value();
  EXPECT_EQ(ContainerKeyring::Load(*other, dir_.path()).status().code(), Code::kDataLoss);
}

TEST_F(ContainerKeyringTest, OnlyACommitThatFollowsTheRecordedStateMovesThePin) {
  auto keyring = Load();
  ASSERT_TRUE(keyring->Register("a").ok());
  ASSERT_TRUE(keyring->RecordUpperCommit("a", {.previous = std::nullopt, .root = Root(1)}).ok());
  // A second boot that also started fresh (or from an older state) cannot move it.
  EXPECT_EQ(keyring->RecordUpperCommit("a", {.previous = std::nullopt, .root = Root(9)}).code(),
            Code::kFailedPrecondition);
  ASSERT_TRUE(keyring->RecordUpperCommit("a", {.previous = Root(1), .root = Root(2)}).ok());
  EXPECT_EQ(keyring->RecordUpperCommit("a", {.previous = Root(1), .root = Root(3)}).code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(keyring->Secrets("a")->upper_root, Root(2));
  EXPECT_EQ(keyring->RecordUpperCommit("b", {.previous = std::nullopt, .root = Root(1)}).code(),
            Code::kNotFound);
  ASSERT_TRUE(keyring->Forget("a").ok());
  EXPECT_EQ(keyring->Secrets("a").status().code(), Code::kNotFound);
}

TEST(ContainerKeyDerivation, LabelIncarnationAndIdAllCount) {
  SecretBytes secret = SecretBytes::Random(32), other = SecretBytes::Random(32);
  Sha256Digest one{}, two{};
  two[0] = 1;
  SecretBytes base = DeriveContainerKey(secret, kUpperKeyLabel, one, "c");
  EXPECT_TRUE(base == DeriveContainerKey(secret, kUpperKeyLabel, one, "c"));
  EXPECT_FALSE(base == DeriveContainerKey(secret, kExecKeyLabel, one, "c"));
  EXPECT_FALSE(base == DeriveContainerKey(secret, kUpperKeyLabel, two, "c"));
  EXPECT_FALSE(base == DeriveContainerKey(secret, kUpperKeyLabel, one, "d"));
  EXPECT_FALSE(base == DeriveContainerKey(other, kUpperKeyLabel, one, "c"));
}

}  // namespace
}  // namespace sealroot::agent
