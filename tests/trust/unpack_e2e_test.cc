// End to end through `sealroot unpack`: skopeo-encrypted images unpack to exactly the plain
// image's tree (private keys, the gRPC key broker, a `cmd` provider); attacks on encrypted
// layers fail with nothing committed and no plaintext on disk; signatures made by skopeo
// --sign-by (gpg) and by openssl (cosign, pushed with plain HTTP requests) accepted and
// rejected by `sealroot unpack docker://...` against the Debian registry.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "image/src/trust/sigstore.h"
#include "tests/support/images.h"
#include "tests/support/registry.h"
#include "tests/trust/fixture.h"

namespace sealroot::testing::trust {
namespace {

CommandResult Sealroot(std::vector<std::string> args, const CommandOptions& options = {}) {
  args.insert(args.begin(), BuiltProgram("sealroot"));
  return Run(args, options);
}

// A private copy of a fixture layout, for tests that rewrite it.
std::string CopyLayout(const TempDir& tmp, const std::string& name) {
  MustShell("cp -r " + M().Path(name) + " " + tmp / name);
  return tmp / name;
}

void Rewrite(const std::string& dir, const std::string& op) {
  MustShell(std::string(SEALROOT_TRUST_TEST_DIR) + "/rewrite_layout.py " + dir + " t " + op);
}

// True if any file below `dir` contains `needle`.
bool AnyFileContains(const std::string& dir, const std::string& needle) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    Result<std::string> data = ReadFile(e.path().string(), 1 << 30);
    if (data.ok() && data->find(needle) != std::string::npos) return true;
  }
  return false;
}

class EncryptedUnpack : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    plain_tree_ = new Tree();
    TempDir work;
    auto r = Sealroot({"unpack", "oci:" + M().Path("plain") + ":t", work / "b", "--insecure-policy"});
    ASSERT_TRUE(r.ok()) << r.err;
    *plain_tree_ = ScanTree(work / "b/rootfs");
  }
  static void TearDownTestSuite() { delete plain_tree_; }

  // Unpacks `layout` with `flags`; expects the plain image's tree.
  void ExpectPlainTree(const std::string& layout, std::vector<std::string> flags,
                       const CommandOptions& o = {}) {
    std::vector<std::string> args = {"unpack", "oci:" + layout + ":t", tmp_ / "out", "--insecure-policy"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = Sealroot(args, o);
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_EQ(DiffTrees(*plain_tree_, ScanTree(tmp_ / "out/rootfs")), "");
  }

  // Unpacking must fail with a verification error naming `expect`, leaving nothing behind: no
  // destination, no staging, no spooled or decrypted bytes anywhere under the work directory.
  void ExpectCleanFailure(const std::string& layout, std::vector<std::string> flags,
                          const std::string& expect) {
    ASSERT_TRUE(MakeDirs(tmp_ / "dest").ok());
    std::vector<std::string> args = {"unpack",          "oci:" + layout + ":t",
                                     tmp_ / "dest/out", "--insecure-policy",
                                     "--spool-dir",     tmp_ / "dest"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = Sealroot(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(tmp_ / "dest/out"));
    EXPECT_TRUE(std::filesystem::is_empty(tmp_ / "dest")) << "staging or spool left behind";
    EXPECT_FALSE(AnyFileContains(tmp_.path(), "second\n")) << "plaintext left on disk";
  }

  static Tree* plain_tree_;
  TempDir tmp_;
};
Tree* EncryptedUnpack::plain_tree_ = nullptr;

TEST_F(EncryptedUnpack, JweRsa) {
  ExpectPlainTree(M().Path("jwe-rsa"), {"--decryption-key", M().Path("rsa.pem")});
}
TEST_F(EncryptedUnpack, JweEc) {
  ExpectPlainTree(M().Path("jwe-ec"), {"--decryption-key", M().Path("ec.der")});
}
TEST_F(EncryptedUnpack, Pkcs7) {
  ExpectPlainTree(M().Path("pkcs7"), {"--decryption-key", M().Path("rsa.pem")});
}
TEST_F(EncryptedUnpack, TwoRecipientsOneLayerEncryptedEitherKey) {
  ExpectPlainTree(M().Path("two"), {"--decryption-key", M().Path("ec.pem")});
  MustShell("rm -rf " + tmp_ / "out");
  ExpectPlainTree(M().Path("two"), {"--decryption-key", M().Path("rsa-enc.pem") + ":correct-horse"});
}
TEST_F(EncryptedUnpack, SeveralKeysOnlyOneFits) {
  ExpectPlainTree(M().Path("jwe-ec"), {"--decryption-key", M().Path("other-ec.pem"), "--decryption-key",
                                       M().Path("rsa.pem"), "--decryption-key", M().Path("ec.pem")});
}

TEST_F(EncryptedUnpack, ThroughTheGrpcKeyBroker) {
  std::string layout = CopyLayout(tmp_, "jwe-rsa");
  Rewrite(layout, "provider sealroot");
  ASSERT_TRUE(MakeDirs(tmp_ / "keys").ok());
  MustShell("cp " + M().Path("rsa.pem") + " " + tmp_ / "keys/");
  int port = FreePort();
  BackgroundProcess broker({BuiltProgram("sealroot"), "keyprovider", "--dev-unwrap", "--keys", tmp_ / "keys",
                            "--listen", "127.0.0.1:" + std::to_string(port)},
                           tmp_ / "broker.log");
  ASSERT_TRUE(WaitForPort(port));
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "kp.json", R"({"key-providers":{"sealroot":{"grpc":"127.0.0.1:)" +
                                                    std::to_string(port) + R"("}}})")
                  .ok());
  ExpectPlainTree(layout, {"--keyprovider-config", tmp_ / "kp.json"});
  MustShell("rm -rf " + tmp_ / "out");
  CommandOptions env;
  env.env["OCICRYPT_KEYPROVIDER_CONFIG"] = tmp_ / "kp.json";
  ExpectPlainTree(layout, {}, env);
}

TEST_F(EncryptedUnpack, ThroughACmdKeyProvider) {
  std::string layout = CopyLayout(tmp_, "jwe-ec");
  Rewrite(layout, "provider broker");
  ASSERT_TRUE(MakeDirs(tmp_ / "keys").ok());
  MustShell("cp " + M().Path("ec.pem") + " " + tmp_ / "keys/");
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "kp.json", R"({"key-providers":{"broker":{"cmd":{"path":")" +
                                                    BuiltProgram("sealroot") +
                                                    R"(","args":["keyprovider","--dev-unwrap","--keys",")" +
                                                    tmp_ / "keys" + R"(","--stdio"]}}}})")
                  .ok());
  ExpectPlainTree(layout, {"--keyprovider-config", tmp_ / "kp.json"});
}

TEST_F(EncryptedUnpack, MissingKeyAttack) {
  ExpectCleanFailure(M().Path("jwe-rsa"), {}, "no decryption key");
}

TEST_F(EncryptedUnpack, WrongKeyAttack) {
  ExpectCleanFailure(M().Path("jwe-rsa"), {"--decryption-key", M().Path("other-rsa.pem")},
                     "no configured decryption key or key provider unwraps");
}

TEST_F(EncryptedUnpack, TamperedCiphertextAttack) {
  std::string layout = CopyLayout(tmp_, "jwe-rsa");
  Rewrite(layout, "tamper-blob 1");
  // The decompressor notices the garbage before the HMAC completes, but the HMAC is what failed:
  // it is checked to the end and named first, and nothing is committed.
  ExpectCleanFailure(layout, {"--decryption-key", M().Path("rsa.pem")}, "layer 2/2");
  ExpectCleanFailure(layout, {"--decryption-key", M().Path("rsa.pem")}, "HMAC mismatch");
}

TEST_F(EncryptedUnpack, TamperedPuboptsHmacAttack) {
  std::string layout = CopyLayout(tmp_, "jwe-rsa");
  Rewrite(layout, "tamper-hmac 1");
  ExpectCleanFailure(layout, {"--decryption-key", M().Path("rsa.pem")}, "HMAC mismatch");
}

TEST_F(EncryptedUnpack, SwappedWrappedKeysAttack) {
  std::string layout = CopyLayout(tmp_, "jwe-rsa");
  Rewrite(layout, "swap-keys 0 1");
  ExpectCleanFailure(layout, {"--decryption-key", M().Path("rsa.pem")}, "layer 1/2");
}

TEST_F(EncryptedUnpack, SwappedLayersAttack) {
  std::string layout = CopyLayout(tmp_, "jwe-rsa");
  Rewrite(layout, "swap-layers 0 1");
  ExpectCleanFailure(layout, {"--decryption-key", M().Path("rsa.pem")}, "DiffID");
}

// Signatures through a real registry.
class RegistrySignatures : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(tmp_ / "registries.d").ok());
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "registries.d/r.yaml",
                                "docker:\n  " + registry_.host() + ":\n    lookaside: file://" +
                                    tmp_ / "sigs" + "\n    lookaside-staging: file://" + tmp_ / "sigs" + "\n")
                    .ok());
  }

  void PushSigned(const std::string& repo_tag, const std::string& fpr) {
    CommandOptions o;
    o.env["GNUPGHOME"] = M().gnupg_home;
    auto r = testing::Run({"skopeo", "--insecure-policy", "--registries.d", tmp_ / "registries.d", "copy",
                           "-q", "--dest-tls-verify=false", "--sign-by", fpr,
                           "oci:" + M().Path("plain") + ":t", registry_.Ref(repo_tag)},
                          o);
    ASSERT_TRUE(r.ok()) << r.err;
  }

  CommandResult Unpack(const std::string& repo_tag, const std::string& policy) {
    EXPECT_TRUE(WriteFileAtomic(tmp_ / "policy.json", policy).ok());
    MustShell("rm -rf " + tmp_ / "out");
    return Sealroot({"unpack", registry_.Ref(repo_tag), tmp_ / "out", "--tls-verify=false", "--policy",
                     tmp_ / "policy.json", "--registries.d", tmp_ / "registries.d"});
  }

  std::string SignedBy(const std::string& keyring) const {
    return R"({"default":[{"type":"reject"}],"transports":{"docker":{")" + registry_.host() +
           R"(":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" + M().Path(keyring) + R"("}]}}})";
  }

  // Uploads `data` as a blob of `repo` with the distribution API (POST then PUT).
  std::string PutBlob(const std::string& repo, const std::string& data) {
    image::Digest digest = image::Digest::FromSha256(Sha256Of(data));
    EXPECT_TRUE(WriteFileAtomic(tmp_ / "blob", data).ok());
    std::string base = "http://" + registry_.host();
    auto r = MustShell("loc=$(curl -sf -X POST -D - " + base + "/v2/" + repo +
                       "/blobs/uploads/ -o /dev/null | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')\n"
                       "case $loc in http*) ;; *) loc=" +
                       base +
                       "$loc ;; esac\n"
                       "case $loc in *\\?*) sep='&' ;; *) sep='?' ;; esac\n"
                       "curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @" +
                       tmp_ / "blob" + " \"$loc${sep}digest=" + digest.str() + "\"");
    return digest.str();
  }

  // Attaches a cosign signature (made with openssl and `key`) to `repo`:`tag`'s manifest.
  void AttachCosign(const std::string& repo, const std::string& tag, const std::string& key) {
    std::string manifest =
        MustShell("curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://" +
                  registry_.host() + "/v2/" + repo + "/manifests/" + tag)
            .out;
    image::Digest digest = image::Digest::FromSha256(Sha256Of(manifest));
    std::string payload = R"({"critical":{"identity":{"docker-reference":")" + registry_.host() + "/" + repo +
                          R"("},"image":{"docker-manifest-digest":")" + digest.str() +
                          R"("},"type":"cosign container image signature"},"optional":null})";
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "payload", payload).ok());
    MustShell("openssl dgst -sha256 -sign " + M().Path(key) + " -out " + tmp_ / "sig " + tmp_ / "payload");
    std::string sig = Base64Encode(AsBytes(ReadFileOrDie(tmp_ / "sig")));
    std::string config = "{}";
    std::string config_digest = PutBlob(repo, config);
    std::string payload_digest = PutBlob(repo, payload);
    std::string attachment =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
        config_digest +
        R"(","size":2},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":")" +
        payload_digest + R"(","size":)" + std::to_string(payload.size()) +
        R"(,"annotations":{"dev.cosignproject.cosign/signature":")" + sig + R"("}}]})";
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "attachment", attachment).ok());
    MustShell(
        "curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @" +
        tmp_ / "attachment" + " http://" + registry_.host() + "/v2/" + repo + "/manifests/" +
        image::trust::SigstoreTag(digest));
  }

  std::string SigstoreSigned(const std::string& pub) const {
    return R"({"default":[{"type":"reject"}],"transports":{"docker":{")" + registry_.host() +
           R"(":[{"type":"sigstoreSigned","keyPath":")" + M().Path(pub) +
           R"(","signedIdentity":{"type":"matchRepository"}}]}}})";
  }

  TempDir tmp_;
  Registry registry_;
};

TEST_F(RegistrySignatures, SkopeoSignByAcceptedAndRejected) {
  PushSigned("app:v1", M().fpr);
  auto ok = Unpack("app:v1", SignedBy("pub.gpg"));
  EXPECT_TRUE(ok.ok()) << ok.err;
  auto other_key = Unpack("app:v1", SignedBy("other.gpg"));
  EXPECT_EQ(other_key.exit_code, 3) << other_key.err;
  EXPECT_NE(other_key.err.find("not in the policy's keyring"), std::string::npos) << other_key.err;
  // Unsigned image in the same scope.
  registry_.Push("oci:" + M().Path("two") + ":t", "unsigned:v1");
  auto missing = Unpack("unsigned:v1", SignedBy("pub.gpg"));
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("none exists"), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "out"));
}

TEST_F(RegistrySignatures, SkopeoSignByIdentityMismatchAndChangedManifest) {
  PushSigned("app:v1", M().fpr);
  // Copy v1's signature to v2's (different) manifest: same identity claim, other digest.
  registry_.Push("oci:" + M().Path("jwe-rsa") + ":t", "app:v2");
  std::string v2 =
      MustShell("skopeo inspect --tls-verify=false --format '{{.Digest}}' " + registry_.Ref("app:v2")).out;
  std::string v1 =
      MustShell("skopeo inspect --tls-verify=false --format '{{.Digest}}' " + registry_.Ref("app:v1")).out;
  v1.pop_back();
  v2.pop_back();
  MustShell("mkdir -p " + tmp_ / "sigs/app@sha256=" + v2.substr(7) + " && cp " + tmp_ / "sigs/app@sha256=" +
            v1.substr(7) + "/signature-1 " + tmp_ / "sigs/app@sha256=" + v2.substr(7) + "/");
  auto changed = Unpack("app:v2", SignedBy("pub.gpg"));
  EXPECT_EQ(changed.exit_code, 3);
  EXPECT_NE(changed.err.find("signature is for manifest " + v1), std::string::npos) << changed.err;
  // The v1 manifest pulled under another tag: signed identity app:v1 != app:latest.
  MustShell("skopeo copy -q --src-tls-verify=false --dest-tls-verify=false " + registry_.Ref("app:v1") + " " +
            registry_.Ref("app:latest"));
  auto mismatch = Unpack("app:latest", SignedBy("pub.gpg"));
  EXPECT_EQ(mismatch.exit_code, 3);
  EXPECT_NE(mismatch.err.find("does not match"), std::string::npos) << mismatch.err;
  // By digest, matchRepoDigestOrExact accepts a signature of any tag of the repository.
  auto by_digest = Unpack("app@" + v1, SignedBy("pub.gpg"));
  EXPECT_TRUE(by_digest.ok()) << by_digest.err;
}

TEST_F(RegistrySignatures, CosignAcceptedAndRejected) {
  registry_.Push("oci:" + M().Path("plain") + ":t", "app:v1");
  auto missing = Unpack("app:v1", SigstoreSigned("ec.pub"));
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("no cosign signature"), std::string::npos) << missing.err;
  AttachCosign("app", "v1", "ec.pem");
  auto ok = Unpack("app:v1", SigstoreSigned("ec.pub"));
  EXPECT_TRUE(ok.ok()) << ok.err;
  auto other = Unpack("app:v1", SigstoreSigned("other-ec.pub"));
  EXPECT_EQ(other.exit_code, 3);
  EXPECT_NE(other.err.find("does not verify"), std::string::npos) << other.err;
}

}  // namespace
}  // namespace sealroot::testing::trust
