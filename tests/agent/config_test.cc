// The agent config file: defaults, validation, and the attacks a config must not let through.
#include "agent/server/config.h"

#include <gtest/gtest.h>

#include "base/crypto.h"
#include "base/file.h"

namespace sealroot::agent {
namespace {

TEST(AgentConfigTest, EmptyDocumentGivesDocumentedDefaults) {
  auto config = ParseAgentConfig("{}");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->ttrpc.size(), 1u);
  EXPECT_EQ(config->ttrpc[0].ToString(), "unix:///run/sealroot/agent.sock");
  ASSERT_EQ(config->grpc.size(), 1u);
  EXPECT_EQ(config->state_dir, kDefaultStateDir);
  EXPECT_EQ(config->store_dir, kDefaultStoreDir);
  EXPECT_TRUE(config->workload.exec.empty());
  EXPECT_TRUE(config->workload.PinsToImage());
  EXPECT_EQ(config->limits.max_message_size, 4u << 20);
  EXPECT_EQ(config->sealing.source, "tee");  // the host-file key is never a default
  EXPECT_TRUE(config->sealing.key_file.empty());
  auto file = ParseAgentConfig(R"({"state_sealing": {"source": "file"}})");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->sealing.key_file, std::string(kDefaultStateDir) + "/seal.key");
}

TEST(AgentConfigTest, FullDocumentParses) {
  auto config = ParseAgentConfig(R"({
    "ttrpc": ["unix:///tmp/a.sock", "tcp://127.0.0.1:7788"],
    "grpc": ["unix:///tmp/g.sock"],
    "state_dir": "/s", "store_dir": "/t",
    "trust": {"policy": "/p.json", "decryption_keys": ["/k.pem"]},
    "registry": {"tls_verify": false, "cert_dir": "/certs"},
    "app_enclaves": [{"mrenclave": ")" +
                                 std::string(64, 'a') + R"(", "isv_prod_id": 1}],
    "workload": {"exec": [["sh"]], "volumes": ["/data"]},
    "state_sealing": {"source": "file", "key_file": "/s/k"},
    "limits": {"max_concurrent_pulls": 2, "frame_timeout_ms": 500}
  })");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->ttrpc[1].port, 7788);
  EXPECT_EQ(config->trust.policy_path, "/p.json");
  EXPECT_FALSE(config->registry.tls_verify);
  EXPECT_EQ(config->registry.cert_dir, "/certs");
  EXPECT_EQ(config->app_enclaves.at(0).isv_prod_id, 1);
  ASSERT_EQ(config->workload.exec.size(), 1u);
  EXPECT_EQ(config->workload.volumes, std::vector<std::string>{"/data"});
  EXPECT_EQ(config->limits.max_concurrent_pulls, 2u);
  EXPECT_EQ(config->limits.frame_timeout.count(), 500);
}

TEST(AgentConfigTest, NonLoopbackTcpListenerIsRefused) {
  EXPECT_FALSE(ParseAgentConfig(R"({"ttrpc": ["tcp://0.0.0.0:7788"]})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"ttrpc": ["tcp://10.0.0.1:7788"]})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"grpc": ["tcp://127.0.0.1:7788"]})").ok());
}

TEST(AgentConfigTest, TypoedKeyIsAnErrorNotASilentDefault) {
  auto config = ParseAgentConfig(R"({"trust": {"polcy": "/p.json"}})");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("polcy"), std::string::npos);
}

TEST(AgentConfigTest, WrongTypesAndBadValuesAreErrors) {
  // The boolean of earlier versions is gone: exec is a list of commands now, said so plainly.
  auto old_exec = ParseAgentConfig(R"({"allow_exec": true})");
  EXPECT_EQ(old_exec.status().code(), Code::kInvalidArgument);
  EXPECT_NE(old_exec.status().message().find("workload.exec"), std::string::npos);
  EXPECT_FALSE(ParseAgentConfig(R"({"workload": {"exec": "sh"}})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"limits": {"max_message_size": 0}})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"app_enclaves": [{"mrenclave": "XYZ"}]})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"state_sealing": {"source": "none"}})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"ttrpc": ["unix://relative.sock"]})").ok());
  EXPECT_FALSE(ParseAgentConfig("{not json").ok());
}

TEST(AgentConfigTest, PullLimitsHaveDefaultsAndKeys) {
  auto defaults = ParseAgentConfig("{}");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->limits.max_layers, 128u);
  EXPECT_EQ(defaults->limits.max_decompression_ratio, 100u);
  EXPECT_EQ(defaults->limits.max_image_size, 16ull << 30);
  EXPECT_EQ(defaults->limits.max_store_size, 64ull << 30);
  auto config = ParseAgentConfig(R"({"limits": {"max_layers": 10, "max_layer_size": 4000,
      "max_image_size": 5000, "max_decompression_ratio": 50, "max_store_size": 1000000}})");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->limits.max_layers, 10u);
  EXPECT_EQ(config->limits.max_layer_size, 4000u);
  EXPECT_EQ(config->limits.max_image_size, 5000u);
  EXPECT_EQ(config->limits.max_decompression_ratio, 50u);
  EXPECT_EQ(config->limits.max_store_size, 1000000u);
  EXPECT_FALSE(ParseAgentConfig(R"({"limits": {"max_decompression_ratio": 0}})").ok());
}

TEST(AgentConfigTest, MissingDefaultFileMeansDefaultsButMissingGivenFileIsAnError) {
  EXPECT_TRUE(LoadAgentConfig("/nonexistent/agent.json", /*path_is_default=*/true).ok());
  EXPECT_EQ(LoadAgentConfig("/nonexistent/agent.json", false).status().code(), Code::kNotFound);
}

TEST(AgentManifestTest, InlinedTrustDocumentsAreReadableAndBoundByDigest) {
  const std::string manifest = R"({"trust": {"policy": {"default": [{"type": "reject"}]},
      "keyprovider_config": {"key-providers": {"kbs": {"grpc": "127.0.0.1:50000"}}}},
      "app_enclaves": [{"mrsigner": ")" +
                               std::string(64, 'b') + R"(", "isv_prod_id": 2}],
      "boot": {"executable": "/b", "sigstruct": "/s", "manifest": "/b.json"},
      "workload": {"exec": [["sh"]]}})";
  auto config = ParseAgentManifest(manifest);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->sealing.source, "tee");
  ASSERT_TRUE(config->manifest_digest.has_value());
  EXPECT_EQ(*config->manifest_digest, Sha256Of(manifest));
  auto policy = ReadFile(config->trust.policy_path);
  ASSERT_TRUE(policy.ok()) << config->trust.policy_path;
  EXPECT_EQ(*policy, R"({"default":[{"type":"reject"}]})");
  EXPECT_TRUE(ReadFile(config->trust.keyprovider_config).ok());
  EXPECT_EQ(config->boot.manifest, "/b.json");
}

TEST(AgentManifestTest, NothingInTheManifestMayLetTheHostChooseWhatTheAgentTrusts) {
  for (
      const char* text : {
          R"({"trust": {"policy": "/etc/containers/policy.json"}})",
          R"({"trust": {"policy": {"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}]}}})",
          R"({"trust": {"decryption_keys": ["/keys/priv.pem"]}})",
          R"({"trust": {"keyprovider_config": "/etc/ocicrypt.json"}})",
          R"({"trust": {"keyprovider_config": {"key-providers": {"p": {"cmd": {"path": "/bin/sh"}}}}}})",
          R"({"registry": {"registries_conf": "/etc/containers/registries.conf"}})",
          R"({"state_sealing": {"source": "file"}})",
          R"({"boot": {"executable": "/b", "sigstruct": "/s"}})",  // no app_enclaves: the SIGSTRUCT would
                                                                   // decide
      }) {
    EXPECT_EQ(ParseAgentManifest(text).status().code(), Code::kInvalidArgument) << text;
  }
  // The same documents are fine as a development config file (outside an enclave).
  EXPECT_TRUE(ParseAgentConfig(R"({"trust": {"policy": "/etc/containers/policy.json"}})").ok());
}

TEST(AgentConfigTest, BlockingCallLimitsStayBelowTheRequestThreads) {
  auto config =
      ParseAgentConfig(R"({"limits": {"max_blocking_calls": 16, "max_blocking_calls_per_connection": 4}})");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->limits.max_blocking_calls, 16u);
  EXPECT_EQ(config->limits.max_blocking_calls_per_connection, 4u);
  // Blocking calls could otherwise take every thread and starve Health.Check.
  for (const char* text :
       {R"({"limits": {"max_blocking_calls": 256}})", R"({"limits": {"max_requests_in_flight": 64}})"}) {
    auto refused = ParseAgentConfig(text);
    ASSERT_FALSE(refused.ok()) << text;
    EXPECT_NE(refused.status().message().find("max_blocking_calls"), std::string::npos);
  }
}

}  // namespace
}  // namespace sealroot::agent
