// The agent's key_broker configuration (the auth.json it may hold is read by
// image/registry_auth.h, tested in tests/image/registry_auth_test.cc).
#include <gtest/gtest.h>

#include "agent/server/config.h"

namespace sealroot::agent {
namespace {

TEST(KeyBrokerConfig, ParsesAndRefusesWhatItCannotHonour) {
  auto config = ParseAgentConfig(R"({"key_broker": {"url": "http://127.0.0.1:8080",
      "credentials": "kbs:///default/credential/registry", "signature_policy": "kbs:///default/policy/sig"}})");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->key_broker.url, "http://127.0.0.1:8080");
  EXPECT_EQ(config->key_broker.signature_policy, "kbs:///default/policy/sig");
  EXPECT_FALSE(ParseAgentConfig(R"({"key_broker": {"url": "ftp://x"}})").ok());
  EXPECT_FALSE(
      ParseAgentConfig(R"({"key_broker": {"url": "http://x", "credentials": "/etc/auth.json"}})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"key_broker": {"url": "http://x", "typo": 1}})").ok());
  // Two sources for the signature policy: refused, not silently one of them.
  EXPECT_FALSE(ParseAgentConfig(R"({"trust": {"policy": "/p.json"},
      "key_broker": {"url": "http://x", "signature_policy": "kbs:///a/b/c"}})")
                   .ok());
  // Likewise the workload policy, and the broker's CA.
  auto workload = ParseAgentConfig(
      R"({"key_broker": {"url": "https://x:1", "workload_policy": "kbs:///default/policy/workload"}})");
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  EXPECT_EQ(workload->key_broker.workload_policy, "kbs:///default/policy/workload");
  EXPECT_FALSE(ParseAgentConfig(R"({"workload": {"exec": [["true"]]},
      "key_broker": {"url": "http://x", "workload_policy": "kbs:///a/b/c"}})")
                   .ok());
  EXPECT_FALSE(
      ParseAgentConfig(R"({"key_broker": {"url": "http://x", "workload_policy": "/etc/workload.json"}})")
          .ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"key_broker": {"url": "https://x", "ca": "not a certificate"}})").ok());
  EXPECT_FALSE(ParseAgentConfig(R"({"key_broker": {"url": "https://x", "ca_file": "/ca.pem",
      "ca": "-----BEGIN CERTIFICATE-----\n"}})")
                   .ok());
}

}  // namespace
}  // namespace sealroot::agent
