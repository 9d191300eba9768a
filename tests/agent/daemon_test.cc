// The enclave-agent daemon against a real registry (Debian's docker-registry) with images built
// by umoci and encrypted by skopeo: PullImage over ttrpc (Go containerd/ttrpc client) seals the
// same tree as `sealroot unpack --seal`; policy refusals and wrong keys fail cleanly; kill -9 in
// the middle of a pull, restart, pull again succeeds and nothing half-written is used.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agent/server/src/records.h"
#include "base/encoding.h"
#include "base/file.h"
#include "image.pb.h"
#include "tests/agent/ttrpc_harness.h"
#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace sealroot::agent {
namespace {

using namespace std::chrono_literals;
using sealroot::testing::BackgroundProcess;
using sealroot::testing::BuiltProgram;
using sealroot::testing::Shell;
using sealroot::testing::TempDir;

// Built once: keys, images, the registry holding them.
struct Material {
  TempDir dir;
  sealroot::testing::Registry registry;
  std::string encrypted;  // docker://.../enc:1 (busybox, JWE)
  std::string big;        // docker://.../big:1 (busybox + 48 MiB random, JWE): slow enough to kill
  std::string unsigned_;  // docker://.../unsigned:1 (plain; the policy wants a signature)
  std::string bomb;       // docker://.../bomb:1 (busybox + 300 MB of zeros gzipped to ~300 KB)

  Material() {
    auto made =
        Shell("cd " + dir.path() +
              " && openssl genrsa -out priv.pem 2048 2>/dev/null && openssl rsa -in priv.pem -pubout -out "
              "pub.pem 2>/dev/null && openssl genrsa -out wrong.pem 2048 2>/dev/null"
              " && mkdir -p gnupg && chmod 700 gnupg && GNUPGHOME=gnupg gpg --batch --passphrase '' "
              "--quick-gen-key 'agent test <t@example.com>' ed25519 2>/dev/null"
              " && GNUPGHOME=gnupg gpg --export > signer.gpg"
              " && mkdir -p big && head -c 50331648 /dev/urandom > big/blob");
    if (!made.ok()) throw std::runtime_error("making keys: " + made.err);
    std::string busybox = sealroot::testing::BuildBusyboxImage(dir / "layout", "busybox");
    std::string big_ref = sealroot::testing::BuildBusyboxImage(dir / "biglayout", "big");
    sealroot::testing::WriteTar(dir / "big.tar", {{.type = sealroot::testing::TarEntry::kFile,
                                                   .name = "big/blob",
                                                   .data = *ReadFile(dir / "big/blob", 64u << 20)}});
    sealroot::testing::AddLayer(big_ref, dir / "big.tar");
    const std::vector<std::string> encrypt = {"--encryption-key", "jwe:" + (dir / "pub.pem")};
    registry.Push(busybox, "enc:1", encrypt);
    registry.Push(big_ref, "big:1", encrypt);
    registry.Push(busybox, "unsigned:1");
    std::string bomb_ref = sealroot::testing::BuildBusyboxImage(dir / "bomblayout", "bomb");
    sealroot::testing::AddZerosLayer(bomb_ref, dir.path(), 300u << 20);
    registry.Push(bomb_ref, "bomb:1");
    bomb = registry.Ref("bomb:1");
    encrypted = registry.Ref("enc:1");
    big = registry.Ref("big:1");
    unsigned_ = registry.Ref("unsigned:1");
    std::string policy = R"({"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {")" +
                         registry.host() +
                         R"(/unsigned": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": ")" +
                         (dir / "signer.gpg") + R"("}]}}})";
    if (!WriteFileAtomic(dir / "policy.json", policy).ok()) throw std::runtime_error("writing policy");
  }
};

Material* material = nullptr;
testing::ClientTools* tools = nullptr;

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (material == nullptr) material = new Material();
    if (tools == nullptr) tools = new testing::ClientTools();
  }

  void SetUp() override { WriteConfig(material->dir / "priv.pem"); }

  void WriteConfig(const std::string& decryption_key, const std::string& limits = "{}") {
    std::string config = R"({"ttrpc": ["unix://)" + (dir_ / "ttrpc.sock") + R"("], "grpc": [],
      "state_dir": ")" + (dir_ / "state") +
                         R"(", "store_dir": ")" + (dir_ / "store") + R"(",
      "trust": {"policy": ")" +
                         (material->dir / "policy.json") + R"(", "decryption_keys": [")" + decryption_key +
                         R"("]},
      "registry": {"tls_verify": false}, "state_sealing": {"source": "file"}, "limits": )" +
                         limits + "}";
    ASSERT_TRUE(WriteFileAtomic(dir_ / "agent.json", config).ok());
  }

  // Each start logs to its own file: agent-1.log, agent-2.log...
  void StartAgent() {
    log_ = dir_ / ("agent-" + std::to_string(++starts_) + ".log");
    agent_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{BuiltProgram("enclave-agent"), "--config", dir_ / "agent.json"}, log_);
    for (int i = 0; i < 200; ++i) {
      if (tools->GoCall(address(), "grpc.Health", "Check", "").at(0).code == 0) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "agent did not come up: " << LogText();
  }

  testing::TtrpcResult Pull(const std::string& image, const std::string& id) {
    ::grpc::PullImageRequest request;
    request.set_image(image);
    request.set_container_id(id);
    return tools->GoCall(address(), "grpc.Image", "PullImage", request.SerializeAsString()).at(0);
  }

  std::vector<std::string> Stores() {
    auto listing = Shell("ls " + (dir_ / "store/images"));
    std::vector<std::string> names;
    std::istringstream in(listing.out);
    for (std::string name; in >> name;) names.push_back(name);
    return names;
  }

  // The agent's records, unsealed with its (development) seal key.
  AgentState State() {
    auto sealer = MakeStateSealer({"file", dir_ / "state/seal.key"});
    EXPECT_TRUE(sealer.ok());
    auto state = LoadState(**sealer, dir_ / "state");
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    return state.ok() ? std::move(*state) : AgentState{};
  }

  std::string address() { return "unix://" + (dir_ / "ttrpc.sock"); }
  static std::string LogFile(const std::string& path) {
    auto text = ReadFile(path);
    return text.ok() ? *text : "";
  }
  std::string LogText() {
    auto text = ReadFile(log_);
    return text.ok() ? *text : "";
  }

  TempDir dir_;
  int starts_ = 0;
  std::string log_;
  std::unique_ptr<BackgroundProcess> agent_;
};

TEST_F(DaemonTest, PullImageOfEncryptedImageSealsTheSameTreeAsTheCli) {
  StartAgent();
  auto pulled = Pull(material->encrypted, "c1");
  ASSERT_EQ(pulled.code, 0) << pulled.message;
  ::grpc::PullImageResponse response;
  ASSERT_TRUE(response.ParseFromString(pulled.payload));
  EXPECT_NE(response.image_ref().find("@sha256:"), std::string::npos) << response.image_ref();

  // The CLI seals the same image into its own store.
  auto cli = sealroot::testing::Run({BuiltProgram("sealroot"), "unpack", material->encrypted, "--seal",
                                     dir_ / "cli-store", "--key-file", dir_ / "cli.key", "--policy",
                                     material->dir / "policy.json", "--decryption-key",
                                     material->dir / "priv.pem", "--tls-verify=false", "--json"});
  ASSERT_TRUE(cli.ok()) << cli.err;
  std::string cli_root = nlohmann::json::parse(cli.out)["root_hash"];

  AgentState state = State();
  ASSERT_EQ(state.images.size(), 1u);
  const ImageRecord& image = state.images.begin()->second;
  ASSERT_TRUE(WriteFileAtomic(dir_ / "agent.key", image.key.span(), 0600).ok());
  // Every object of both roots verifies, and both trees have the same shape and sizes.
  auto fsck = [&](const std::string& store, const std::string& root, const std::string& key) {
    auto r = sealroot::testing::Run(
        {BuiltProgram("sealroot"), "fsck", store, "--root", root, "--key-file", key, "--json"});
    EXPECT_TRUE(r.ok()) << r.out << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j;
  };
  nlohmann::json agent_fsck =
      fsck(dir_ / ("store/images/" + image.store_name), fusefs::HashHex(image.root_hash), dir_ / "agent.key");
  nlohmann::json cli_fsck = fsck(dir_ / "cli-store", cli_root, dir_ / "cli.key");
  EXPECT_GT(agent_fsck.value("objects_checked", 0), 3);
  EXPECT_EQ(agent_fsck.value("objects_checked", 0), cli_fsck.value("objects_checked", -1));
  EXPECT_EQ(agent_fsck.value("bytes_checked", 0), cli_fsck.value("bytes_checked", -1));

  // And file for file, mounted.
  const std::string agent_mnt = dir_ / "mnt-agent", cli_mnt = dir_ / "mnt-cli";
  ASSERT_TRUE(MakeDirs(agent_mnt).ok() && MakeDirs(cli_mnt).ok());
  auto m1 =
      sealroot::testing::Run({BuiltProgram("sealroot"), "mount", dir_ / ("store/images/" + image.store_name),
                              agent_mnt, "--root", fusefs::HashHex(image.root_hash), "--key-file",
                              dir_ / "agent.key", "--read-only", "--log-file", dir_ / "mount-agent.log"});
  ASSERT_TRUE(m1.ok()) << m1.err;
  auto m2 = sealroot::testing::Run({BuiltProgram("sealroot"), "mount", dir_ / "cli-store", cli_mnt, "--root",
                                    cli_root, "--key-file", dir_ / "cli.key", "--read-only", "--log-file",
                                    dir_ / "mount-cli.log"});
  ASSERT_TRUE(m2.ok()) << m2.err;
  sealroot::testing::Tree agent_tree = sealroot::testing::ScanTree(agent_mnt);
  sealroot::testing::Tree cli_tree = sealroot::testing::ScanTree(cli_mnt);
  sealroot::testing::Run({BuiltProgram("sealroot"), "umount", agent_mnt});
  sealroot::testing::Run({BuiltProgram("sealroot"), "umount", cli_mnt});
  EXPECT_TRUE(agent_tree.contains("bin/busybox")) << LogFile(dir_ / "mount-agent.log");
  EXPECT_EQ(sealroot::testing::DiffTrees(cli_tree, agent_tree), "");

  // The store holds no plaintext of the image (busybox's ELF and applet names).
  EXPECT_FALSE(Shell("grep -rqa 'BusyBox is a multi-call binary' " + (dir_ / "store")).ok());
}

TEST_F(DaemonTest, UnsignedImageIsRefusedByPolicyAndLeavesNothing) {
  StartAgent();
  auto refused = Pull(material->unsigned_, "c1");
  EXPECT_EQ(refused.code, static_cast<int>(Code::kPermissionDenied)) << refused.message;
  EXPECT_TRUE(Stores().empty());
  EXPECT_EQ(tools->GoCall(address(), "grpc.Health", "Check", "").at(0).code, 0);
}

TEST_F(DaemonTest, WrongDecryptionKeyFailsCleanly) {
  WriteConfig(material->dir / "wrong.pem");
  StartAgent();
  auto failed = Pull(material->encrypted, "c1");
  EXPECT_NE(failed.code, 0);
  EXPECT_NE(failed.message.find(material->encrypted.substr(9)), std::string::npos) << failed.message;
  EXPECT_TRUE(Stores().empty());
  EXPECT_TRUE(State().images.empty());
}

// The pull limits (design/image.md "Limits"): each refusal is RESOURCE_EXHAUSTED naming the
// limit, and nothing of the pull is kept: no store directory, no record.
TEST_F(DaemonTest, BombLayerHitsTheRatioLimitAndNothingIsCommitted) {
  StartAgent();
  auto refused = Pull(material->bomb, "c1");
  EXPECT_EQ(refused.code, static_cast<int>(Code::kResourceExhausted)) << refused.message;
  EXPECT_NE(refused.message.find("max_decompression_ratio"), std::string::npos) << refused.message;
  EXPECT_TRUE(Stores().empty());
  EXPECT_TRUE(State().images.empty());
  EXPECT_TRUE(State().containers.empty());
}

TEST_F(DaemonTest, TooManyLayersAreRefusedByTheConfiguredLimit) {
  WriteConfig(material->dir / "priv.pem", R"({"max_layers": 1})");
  StartAgent();
  auto refused = Pull(material->bomb, "c1");  // two layers
  EXPECT_EQ(refused.code, static_cast<int>(Code::kResourceExhausted)) << refused.message;
  EXPECT_NE(refused.message.find("max_layers = 1"), std::string::npos) << refused.message;
  EXPECT_TRUE(Stores().empty());
  EXPECT_TRUE(State().images.empty());
}

TEST_F(DaemonTest, StoreSizeLimitRefusesThePullAndKeepsNothing) {
  WriteConfig(material->dir / "priv.pem", R"({"max_store_size": 100000})");
  StartAgent();
  auto refused = Pull(material->encrypted, "c1");
  EXPECT_EQ(refused.code, static_cast<int>(Code::kResourceExhausted)) << refused.message;
  EXPECT_NE(refused.message.find("max_store_size = 100000"), std::string::npos) << refused.message;
  EXPECT_TRUE(Stores().empty());
  EXPECT_TRUE(State().images.empty());
}

// Pulls are keyed by the manifest the reference resolves to: the tag, the digest and the
// docker:// spelling of one image share one sealed store (and the policy is still checked for
// each spelling: the unsigned repository stays refused).
TEST_F(DaemonTest, SameImageSpelledThreeWaysIsSealedOnce) {
  StartAgent();
  auto by_tag = Pull(material->encrypted, "c1");
  ASSERT_EQ(by_tag.code, 0) << by_tag.message;
  ::grpc::PullImageResponse response;
  ASSERT_TRUE(response.ParseFromString(by_tag.payload));
  const std::string pinned = response.image_ref();
  ASSERT_NE(pinned.find("@sha256:"), std::string::npos) << pinned;
  auto by_digest = Pull(pinned.substr(pinned.find("://") + 3), "c2");  // host/repo@sha256:...
  ASSERT_EQ(by_digest.code, 0) << by_digest.message;
  auto by_tag_and_digest = Pull(material->encrypted + "@" + pinned.substr(pinned.find("@") + 1), "c3");
  ASSERT_EQ(by_tag_and_digest.code, 0) << by_tag_and_digest.message;
  EXPECT_EQ(Stores().size(), 1u);
  AgentState state = State();
  ASSERT_EQ(state.images.size(), 1u);
  EXPECT_EQ(state.images.begin()->second.users.size(), 3u);
  EXPECT_EQ(state.containers.at("c1").image, state.containers.at("c2").image);
  std::string log = LogText();
  std::size_t first = log.find("pulling into store");
  EXPECT_NE(first, std::string::npos);
  EXPECT_EQ(log.find("pulling into store", first + 1), std::string::npos) << log;
  EXPECT_EQ(Pull(material->unsigned_, "c4").code, static_cast<int>(Code::kPermissionDenied));
}

TEST_F(DaemonTest, KillNineMidPullThenRestartAndPullAgainSucceeds) {
  StartAgent();
  std::thread client([&] { Pull(material->big, "c1"); });
  // Wait until the pull is writing into its store, then kill the agent without warning.
  for (int i = 0; i < 400 && Stores().empty(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(Stores().empty()) << "the pull never started";
  agent_->Stop(SIGKILL);
  client.join();
  std::vector<std::string> leftover = Stores();
  EXPECT_TRUE(State().images.empty() || leftover.size() == State().images.size());

  StartAgent();  // removes the unrecorded store of the interrupted pull
  for (const std::string& name : Stores()) {
    bool recorded = false;
    for (const auto& [image, record] : State().images) recorded |= record.store_name == name;
    EXPECT_TRUE(recorded) << "unrecorded store " << name << " survived the restart";
  }
  auto pulled = Pull(material->big, "c1");
  ASSERT_EQ(pulled.code, 0) << pulled.message;
  EXPECT_EQ(Stores().size(), 1u);
  EXPECT_EQ(State().images.size(), 1u);
}

TEST_F(DaemonTest, SigtermStopsCleanlyAndStateSurvivesRestart) {
  StartAgent();
  ASSERT_EQ(Pull(material->encrypted, "c1").code, 0);
  EXPECT_EQ(agent_->Stop(SIGTERM), 0);
  StartAgent();
  // The record is back: a PullImage for another container reuses the sealed image.
  ASSERT_EQ(Pull(material->encrypted, "c2").code, 0);
  EXPECT_EQ(Stores().size(), 1u);
  EXPECT_EQ(LogText().find("pulling into store"), std::string::npos);  // not pulled again
}

}  // namespace
}  // namespace sealroot::agent
