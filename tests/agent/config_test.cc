// The agent config file: defaults, validation, and the attacks a config must not let through.
#include "agent/server/config.h"

#include <gtest/gtest.h>

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
  EXPECT_FALSE(config->allow_exec);
  EXPECT_EQ(config->limits.max_message_size, 4u << 20);
  EXPECT_EQ(config->sealing.key_file, std::string(kDefaultStateDir) + "/seal.key");
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
    "allow_exec": true,
    "state_sealing": {"source": "file", "key_file": "/s/k"},
    "limits": {"max_concurrent_pulls": 2, "frame_timeout_ms": 500}
  })");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->ttrpc[1].port, 7788);
  EXPECT_EQ(config->trust.policy_path, "/p.json");
  EXPECT_FALSE(config->registry.tls_verify);
  EXPECT_EQ(config->registry.cert_dir, "/certs");
  EXPECT_EQ(config->app_enclaves.at(0).isv_prod_id, 1);
  EXPECT_TRUE(config->allow_exec);
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
  EXPECT_FALSE(ParseAgentConfig(R"({"allow_exec": "yes"})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"limits": {"max_message_size": 0}})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"app_enclaves": [{"mrenclave": "XYZ"}]})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"state_sealing": {"source": "none"}})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"ttrpc": ["unix://relative.sock"]})").ok());
  EXPECT_FALSE(ParseAgentConfig("{not json").ok());
}

TEST(AgentConfigTest, MissingDefaultFileMeansDefaultsButMissingGivenFileIsAnError) {
  EXPECT_TRUE(LoadAgentConfig("/nonexistent/agent.json", /*path_is_default=*/true).ok());
  EXPECT_EQ(LoadAgentConfig("/nonexistent/agent.json", false).status().code(), Code::kNotFound);
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
