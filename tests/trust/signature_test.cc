// Signatures under a policy: simple signing (skopeo standalone-sign with gpg, verified with
// librnp; lookaside via file:// and http://) and cosign (payloads signed with openssl: ECDSA
// P-256, RSA, Ed25519), accepted and rejected for the same reasons containers/image gives.
#include <gtest/gtest.h>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "image/src/trust/sigstore.h"
#include "image/src/trust/simple_signing.h"
#include "image/trust.h"
#include "tests/trust/fixture.h"

namespace sealroot::testing::trust {
namespace {

const char* kHost = "127.0.0.1:5000";

class Signatures : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(tmp_ / "registries.d").ok());
    ASSERT_TRUE(MakeDirs(tmp_ / "sigs").ok());
    UseLookaside("file://" + tmp_ / "sigs");
  }

  void UseLookaside(const std::string& url) {
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "registries.d/test.yaml",
                                "docker:\n  " + std::string(kHost) + ":\n    lookaside: " + url + "\n")
                    .ok());
  }

  // skopeo standalone-sign over `manifest`, claiming `identity`, by key `fpr`; stored as
  // signature-N of `repo`@digest(stored_for) in the lookaside directory.
  void Sign(const std::string& manifest, const std::string& identity, const std::string& fpr,
            const std::string& repo, const image::Digest& stored_for, int n = 1) {
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "manifest.json", manifest).ok());
    std::string dir = tmp_ / ("sigs/" + repo + "@sha256=" + std::string(stored_for.hex()));
    ASSERT_TRUE(MakeDirs(dir).ok());
    MustShell("skopeo standalone-sign " + tmp_ / "manifest.json" + " " + identity + " " + fpr + " -o " + dir +
              "/signature-" + std::to_string(n));
  }

  Status Verify(const std::string& policy_json, FakeSource& source, const image::ManifestBytes& m) {
    EXPECT_TRUE(WriteFileAtomic(tmp_ / "policy.json", policy_json).ok());
    image::TrustOptions options;
    options.policy_path = tmp_ / "policy.json";
    options.registries_d = tmp_ / "registries.d";
    auto verifier = image::MakeSignatureVerifier(options);
    if (!verifier.ok()) return verifier.status();
    return (*verifier)->VerifyImage(source, m);
  }

  static std::string SignedBy(const std::string& keyring, const std::string& identity = "") {
    return R"({"default":[{"type":"reject"}],"transports":{"docker":{")" + std::string(kHost) +
           R"(/app":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" + M().Path(keyring) + "\"" +
           (identity.empty() ? "" : ",\"signedIdentity\":" + identity) + "}]}}}";
  }

  LayoutImage plain_ = ReadLayout(M().Path("plain"));
  TempDir tmp_;
};

TEST_F(Signatures, SimpleSigningAcceptedForTheSigningKey) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Sign(m.bytes, std::string(kHost) + "/app:v1", M().fpr, "app", m.digest);
  Status s = Verify(SignedBy("pub.gpg"), source, m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(Verify(SignedBy("pub.asc"), source, m).ok()) << "armoured keyring";
}

TEST_F(Signatures, SimpleSigningRejectedForAnotherKey) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Sign(m.bytes, std::string(kHost) + "/app:v1", M().other_fpr, "app", m.digest);
  Status s = Verify(SignedBy("pub.gpg"), source, m);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("not in the policy's keyring"), std::string::npos) << s.message();
}

TEST_F(Signatures, SimpleSigningRejectedForAChangedManifest) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto original = source.AddManifest("orig", plain_.manifest.bytes);
  auto changed = source.AddManifest("v1", plain_.manifest.bytes + "\n");
  // The original's signature, served where the changed manifest's signatures are looked up.
  Sign(original.bytes, std::string(kHost) + "/app:v1", M().fpr, "app", changed.digest);
  Status s = Verify(SignedBy("pub.gpg"), source, changed);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("signature is for manifest " + original.digest.str()), std::string::npos)
      << s.message();
}

TEST_F(Signatures, SimpleSigningRejectedForAnIdentityMismatch) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Sign(m.bytes, std::string(kHost) + "/app:v2", M().fpr, "app", m.digest);
  Status s = Verify(SignedBy("pub.gpg"), source, m);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s.message();
  // The same signature is fine when any tag of the repository is accepted.
  EXPECT_TRUE(Verify(SignedBy("pub.gpg", R"({"type":"matchRepository"})"), source, m).ok());
}

TEST_F(Signatures, SimpleSigningRejectedWhenMissing) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Status s = Verify(SignedBy("pub.gpg"), source, m);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("none exists"), std::string::npos) << s.message();
}

TEST_F(Signatures, SimpleSigningOneGoodSignatureAmongBadOnesSuffices) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Sign(m.bytes, std::string(kHost) + "/app:v1", M().other_fpr, "app", m.digest, 1);
  Sign(m.bytes, std::string(kHost) + "/app:v1", M().fpr, "app", m.digest, 2);
  EXPECT_TRUE(Verify(SignedBy("pub.gpg"), source, m).ok());
}

TEST_F(Signatures, SimpleSigningTamperedSignatureIsRejected) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Sign(m.bytes, std::string(kHost) + "/app:v1", M().fpr, "app", m.digest);
  std::string path = tmp_ / ("sigs/app@sha256=" + std::string(m.digest.hex()) + "/signature-1");
  std::string sig = ReadFileOrDie(path);
  sig[sig.size() - 10] ^= 0x01;
  ASSERT_TRUE(WriteFileAtomic(path, sig).ok());
  EXPECT_EQ(Verify(SignedBy("pub.gpg"), source, m).code(), Code::kPermissionDenied);
}

TEST_F(Signatures, SimpleSigningFromHttpLookaside) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Sign(m.bytes, std::string(kHost) + "/app:v1", M().fpr, "app", m.digest);
  int port = FreePort();
  BackgroundProcess server({"python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                            tmp_ / "sigs", std::to_string(port)},
                           tmp_ / "http.log");
  ASSERT_TRUE(WaitForPort(port));
  UseLookaside("http://127.0.0.1:" + std::to_string(port));
  Status s = Verify(SignedBy("pub.gpg"), source, m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  FakeSource other(DockerReference(kHost, "app", "v1"));
  auto m2 = other.AddManifest("v1", plain_.manifest.bytes + " ");
  EXPECT_NE(Verify(SignedBy("pub.gpg"), other, m2).message().find("none exists"), std::string::npos);
}

TEST_F(Signatures, RegistriesDAttackMalformedConfigIsAnError) {
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "registries.d/test.yaml",
                              std::string_view("docker:\n  x:\n    lookasid: file:///x\n"))
                  .ok());
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Status s = Verify(SignedBy("pub.gpg"), source, m);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("lookasid"), std::string::npos) << s.message();
}

// Cosign: an attachment manifest tagged sha256-<hex>.sig whose layers are signed payloads.
struct CosignKey {
  const char* private_key;
  const char* public_key;
  const char* sign_command;  // openssl, signing {in} with {key} into {out}
};

class Cosign : public Signatures, public ::testing::WithParamInterface<CosignKey> {
 protected:
  // Signs a cosign payload for `manifest_digest` claiming `identity` and attaches it.
  void Attach(FakeSource& source, const image::Digest& manifest_digest, const std::string& identity,
              const char* private_key, const char* sign_command, bool tamper_payload = false) {
    std::string payload = R"({"critical":{"identity":{"docker-reference":")" + identity +
                          R"("},"image":{"docker-manifest-digest":")" + manifest_digest.str() +
                          R"("},"type":"cosign container image signature"},"optional":null})";
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "payload", payload).ok());
    MustShell(SignCommand(sign_command, private_key));
    std::string sig = Base64Encode(AsBytes(ReadFileOrDie(tmp_ / "sig")));
    if (tamper_payload) payload[payload.size() - 3] = 'X';
    image::Digest blob = source.AddBlob(payload);
    std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                           R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                           blob.str() + R"(","size":1},"layers":[{"mediaType":")" +
                           std::string(image::trust::kCosignLayerType) + R"(","digest":")" + blob.str() +
                           R"(","size":)" + std::to_string(payload.size()) +
                           R"(,"annotations":{"dev.cosignproject.cosign/signature":")" + sig + R"("}}]})";
    source.AddManifest(image::trust::SigstoreTag(manifest_digest), manifest);
  }

  // `command` with {key}, {in} and {out} filled in.
  std::string SignCommand(std::string command, const char* private_key) {
    for (auto [name, value] : {std::pair<std::string, std::string>{"{key}", M().Path(private_key)},
                               {"{in}", tmp_ / "payload"},
                               {"{out}", tmp_ / "sig"}}) {
      command.replace(command.find(name), name.size(), value);
    }
    return command;
  }

  static std::string SigstoreSigned(const char* public_key, const std::string& identity) {
    return R"({"default":[{"type":"reject"}],"transports":{"docker":{")" + std::string(kHost) +
           R"(/app":[{"type":"sigstoreSigned","keyPath":")" + M().Path(public_key) +
           R"(","signedIdentity":)" + identity + "}]}}}";
  }
};

TEST_P(Cosign, AcceptedForTheKeyAndRejectedOtherwise) {
  const CosignKey& key = GetParam();
  const std::string repo_identity = R"({"type":"matchRepository"})";
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes);
  Status missing = Verify(SigstoreSigned(key.public_key, repo_identity), source, m);
  EXPECT_EQ(missing.code(), Code::kPermissionDenied);
  EXPECT_NE(missing.message().find("no cosign signature"), std::string::npos) << missing.message();

  Attach(source, m.digest, std::string(kHost) + "/app", key.private_key, key.sign_command);
  Status ok = Verify(SigstoreSigned(key.public_key, repo_identity), source, m);
  EXPECT_TRUE(ok.ok()) << ok.ToString();
  // cosign signs the repository, so the default matchRepoDigestOrExact refuses a tag pull.
  EXPECT_EQ(Verify(SigstoreSigned(key.public_key, R"({"type":"matchRepoDigestOrExact"})"), source, m).code(),
            Code::kPermissionDenied);
  // Another key.
  const char* other = std::string(key.public_key) == "ec.pub" ? "other-ec.pub" : "ec.pub";
  Status wrong = Verify(SigstoreSigned(other, repo_identity), source, m);
  EXPECT_EQ(wrong.code(), Code::kPermissionDenied);
  EXPECT_NE(wrong.message().find("does not verify"), std::string::npos) << wrong.message();
}

TEST_P(Cosign, RejectedForIdentityMismatchOrTamperedPayload) {
  const CosignKey& key = GetParam();
  const std::string repo_identity = R"({"type":"matchRepository"})";
  // identity mismatch
  FakeSource other_repo(DockerReference(kHost, "app", "v1"));
  auto m3 = other_repo.AddManifest("v1", plain_.manifest.bytes);
  Attach(other_repo, m3.digest, std::string(kHost) + "/other", key.private_key, key.sign_command);
  Status s = Verify(SigstoreSigned(key.public_key, repo_identity), other_repo, m3);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s.message();
  // tampered payload
  FakeSource tampered(DockerReference(kHost, "app", "v1"));
  auto m4 = tampered.AddManifest("v1", plain_.manifest.bytes);
  Attach(tampered, m4.digest, std::string(kHost) + "/app", key.private_key, key.sign_command, true);
  EXPECT_EQ(Verify(SigstoreSigned(key.public_key, repo_identity), tampered, m4).code(),
            Code::kPermissionDenied);
}

INSTANTIATE_TEST_SUITE_P(
    Keys, Cosign,
    ::testing::Values(CosignKey{"ec.pem", "ec.pub", "openssl dgst -sha256 -sign {key} -out {out} {in}"},
                      CosignKey{"rsa.pem", "rsa.pub", "openssl dgst -sha256 -sign {key} -out {out} {in}"},
                      CosignKey{"ed.pem", "ed.pub",
                                "openssl pkeyutl -sign -rawin -inkey {key} -in {in} -out {out}"}),
    [](const auto& param_info) {
      std::string key = param_info.param.public_key;
      return key == "ec.pub" ? "Ecdsa" : key == "rsa.pub" ? "Rsa" : "Ed25519";
    });

TEST_F(Signatures, CosignSignatureOverAnotherManifestIsRejected) {
  FakeSource source(DockerReference(kHost, "app", "v1"));
  auto m = source.AddManifest("v1", plain_.manifest.bytes + " ");
  // Payload names the original manifest, attachment is stored under the changed one's tag.
  auto original = image::Digest::FromSha256(Sha256Of(plain_.manifest.bytes));
  std::string payload = R"({"critical":{"identity":{"docker-reference":")" + std::string(kHost) +
                        R"(/app"},"image":{"docker-manifest-digest":")" + original.str() +
                        R"("},"type":"cosign container image signature"},"optional":{}})";
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "payload", payload).ok());
  MustShell("openssl dgst -sha256 -sign " + M().Path("ec.pem") + " -out " + tmp_ / "sig " + tmp_ / "payload");
  image::Digest blob = source.AddBlob(payload);
  source.AddManifest(
      image::trust::SigstoreTag(m.digest),
      R"({"schemaVersion":2,"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":")" +
          blob.str() + R"(","size":)" + std::to_string(payload.size()) +
          R"(,"annotations":{"dev.cosignproject.cosign/signature":")" +
          Base64Encode(AsBytes(ReadFileOrDie(tmp_ / "sig"))) + R"("}}]})");
  EXPECT_TRUE(WriteFileAtomic(tmp_ / "policy.json", R"({"default":[{"type":"sigstoreSigned","keyPath":")" +
                                                        M().Path("ec.pub") +
                                                        R"(","signedIdentity":{"type":"matchRepository"}}]})")
                  .ok());
  image::TrustOptions options;
  options.policy_path = tmp_ / "policy.json";
  auto verifier = image::MakeSignatureVerifier(options);
  ASSERT_TRUE(verifier.ok());
  Status s = (*verifier)->VerifyImage(source, m);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("signature is for manifest " + original.str()), std::string::npos)
      << s.message();
}

TEST(SignaturePayloadAttack, UnknownCriticalMembersAndWrongTypesAreRejected) {
  using image::trust::ParseSignaturePayload;
  const std::string ok =
      R"({"critical":{"identity":{"docker-reference":"a.io/b:c"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":{}})";
  EXPECT_TRUE(ParseSignaturePayload(ok, image::trust::kSimpleSigningType).ok());
  EXPECT_FALSE(ParseSignaturePayload(ok, image::trust::kCosignType).ok());
  for (
      const char* bad : {
          R"({"critical":{"identity":{"docker-reference":"a.io/b:c"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature","extra":1},"optional":{}})",
          R"({"critical":{"identity":{"docker-reference":"a.io/b:c","x":1},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":{}})",
          R"({"critical":{"identity":{"docker-reference":"a.io/b:c"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"}})",
          R"({"critical":{"identity":{"docker-reference":"a.io/b:c"},"identity":{"docker-reference":"x.io/y:z"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":{}})",
          R"({"critical":{"identity":{"docker-reference":5},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":{}})",
      }) {
    EXPECT_FALSE(ParseSignaturePayload(bad, image::trust::kSimpleSigningType).ok()) << bad;
  }
}

}  // namespace
}  // namespace sealroot::testing::trust
