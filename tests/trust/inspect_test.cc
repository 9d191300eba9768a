// InspectTrust: what `sealroot inspect` shows about encryption recipients and signatures.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "image/trust.h"
#include "tests/trust/fixture.h"

namespace sealroot::testing::trust {
namespace {

TEST(InspectTrust, ListsRecipientsPerLayerAndSignatureStatus) {
  TempDir tmp;
  LayoutImage two = ReadLayout(M().Path("two"));
  FakeSource source(DockerReference("127.0.0.1:5000", "app", "v1"));
  image::ManifestBytes m = source.AddManifest("v1", two.manifest.bytes);
  // One valid simple signature (trusted key) and one by another key, in a file lookaside.
  std::string dir = tmp / ("sigs/app@sha256=" + std::string(m.digest.hex()));
  ASSERT_TRUE(MakeDirs(dir).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp / "manifest.json", m.bytes).ok());
  MustShell("skopeo standalone-sign " + tmp / "manifest.json" + " 127.0.0.1:5000/app:v1 " + M().fpr + " -o " +
            dir + "/signature-1 && skopeo standalone-sign " + tmp / "manifest.json" +
            " 127.0.0.1:5000/app:v1 " + M().other_fpr + " -o " + dir + "/signature-2");
  ASSERT_TRUE(MakeDirs(tmp / "registries.d").ok());
  ASSERT_TRUE(WriteFileAtomic(tmp / "registries.d/r.yaml",
                              "default-docker:\n  lookaside: file://" + tmp / "sigs" + "\n")
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(tmp / "policy.json",
                              R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" +
                                  M().Path("pub.gpg") + R"("}]})")
                  .ok());
  image::TrustOptions options;
  options.policy_path = tmp / "policy.json";
  options.registries_d = tmp / "registries.d";
  options.decryption_keys = {M().Path("ec.pem")};
  auto report = image::InspectTrust(source, m, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->accepted) << report->verdict;
  EXPECT_EQ(report->policy_scope, "default");
  ASSERT_EQ(report->layers.size(), 2u);
  EXPECT_FALSE(report->layers[0].encrypted);
  EXPECT_TRUE(report->layers[1].encrypted);
  EXPECT_TRUE(report->layers[1].decryptable);
  EXPECT_EQ(report->layers[1].recipients,
            (std::vector<std::string>{"jwe RSA-OAEP", "jwe ECDH-ES+A256KW P-256"}));
  ASSERT_GE(report->signatures.size(), 2u);
  EXPECT_EQ(report->signatures[0].kind, "simple-signing");
  EXPECT_TRUE(report->signatures[0].verified) << report->signatures[0].detail;
  EXPECT_EQ(report->signatures[0].signer, M().fpr);
  EXPECT_EQ(report->signatures[0].signed_reference, "127.0.0.1:5000/app:v1");
  EXPECT_FALSE(report->signatures[1].verified);
  EXPECT_NE(report->signatures[1].detail.find("not in the policy's keyring"), std::string::npos);
  std::string text = image::FormatTrustReport(*report);
  EXPECT_NE(text.find("encrypted for [jwe RSA-OAEP] [jwe ECDH-ES+A256KW P-256]"), std::string::npos) << text;
  auto json = nlohmann::json::parse(image::TrustReportJson(*report));
  EXPECT_EQ(json["layers"][1]["recipients"].size(), 2u);
  EXPECT_TRUE(json["policy"]["accepted"].get<bool>());
}

TEST(InspectTrust, Pkcs7RecipientAndNoKey) {
  LayoutImage p7 = ReadLayout(M().Path("pkcs7"));
  FakeSource source(DockerReference("127.0.0.1:5000", "app", "v1"));
  image::ManifestBytes m = source.AddManifest("v1", p7.manifest.bytes);
  image::TrustOptions options;
  auto report = image::InspectTrust(source, m, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->accepted) << "the default policy rejects";
  ASSERT_EQ(report->layers.size(), 2u);
  EXPECT_FALSE(report->layers[0].decryptable);
  ASSERT_EQ(report->layers[0].recipients.size(), 1u);
  EXPECT_NE(report->layers[0].recipients[0].find("pkcs7 rsa issuer=/CN=sealroot-test"), std::string::npos);
}

}  // namespace
}  // namespace sealroot::testing::trust
