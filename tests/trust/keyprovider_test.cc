// The key-provider protocol: config parsing, the `cmd` protocol and the gRPC KeyProviderService,
// both served by `sealroot keyprovider` (the offline key broker), against a skopeo-encrypted
// image whose JWE annotation is handed to the provider instead.
#include "image/trust/keyprovider.h"

#include <gtest/gtest.h>

#include "base/encoding.h"
#include "base/file.h"
#include "image/src/trust/decryptor.h"
#include "tests/trust/fixture.h"

namespace sealroot::testing::trust {
namespace {

using image::trust::KeyProvider;
using image::trust::OcicryptDecryptor;

// Layer `i` of the JWE-RSA image with its wrapped key moved to the "provider.sealroot" annotation
// (the key broker's format is the JWE ocicrypt makes).
image::Descriptor ProviderLayer(const LayoutImage& enc, std::size_t i) {
  image::Descriptor layer = enc.layers[i];
  std::string jwe = layer.annotations.at("org.opencontainers.image.enc.keys.jwe");
  layer.annotations.erase("org.opencontainers.image.enc.keys.jwe");
  layer.annotations["org.opencontainers.image.enc.keys.provider.sealroot"] = jwe;
  return layer;
}

class KeyProviders : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(tmp_ / "keys").ok());
    MustShell("cp " + M().Path("rsa.pem") + " " + M().Path("ec.pem") + " " + tmp_ / "keys/");
    ASSERT_TRUE(MakeDirs(tmp_ / "wrong-keys").ok());
    MustShell("cp " + M().Path("other-rsa.pem") + " " + tmp_ / "wrong-keys/");
  }

  Result<std::vector<KeyProvider>> Config(const std::string& json) {
    EXPECT_TRUE(WriteFileAtomic(tmp_ / "kp.json", json).ok());
    return image::trust::LoadKeyProviderConfig(tmp_ / "kp.json");
  }

  // Decrypts every layer of the JWE-RSA image through `providers`; the plaintext digests must
  // be the plain image's layer digests.
  Status DecryptAll(std::vector<KeyProvider> providers) {
    LayoutImage plain = ReadLayout(M().Path("plain"));
    LayoutImage enc = ReadLayout(M().Path("jwe-rsa"));
    OcicryptDecryptor d({}, std::move(providers));
    for (std::size_t i = 0; i < enc.layers.size(); ++i) {
      SR_ASSIGN_OR_RETURN(
          auto reader,
          d.Decrypt(ProviderLayer(enc, i), BytesReader(ReadFileOrDie(enc.BlobPath(enc.layers[i].digest)))));
      SR_ASSIGN_OR_RETURN(std::string out, ReadAll(*reader));
      if (image::Digest::FromSha256(Sha256Of(out)) != plain.layers[i].digest)
        return DataLoss("wrong plaintext");
    }
    return OkStatus();
  }

  std::string CmdConfig(const std::string& keys) {
    return R"({"key-providers":{"sealroot":{"cmd":{"path":")" + BuiltProgram("sealroot") +
           R"(","args":["keyprovider","--dev-unwrap","--keys",")" + keys + R"(","--stdio"]}}}})";
  }

  TempDir tmp_;
};

TEST_F(KeyProviders, ConfigParsing) {
  auto ok =
      Config(R"({"key-providers":{"a":{"grpc":"127.0.0.1:1"},"b":{"cmd":{"path":"/bin/x","args":["1"]}}}})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0].grpc_address, "127.0.0.1:1");
  EXPECT_EQ((*ok)[1].cmd_args, std::vector<std::string>{"1"});
  for (const char* bad : {R"([])", R"({"key-provider":{}})", R"({"key-providers":{"a":{}}})",
                          R"({"key-providers":{"a":{"grpc":"x","cmd":{"path":"/x"}}}})",
                          R"({"key-providers":{"a":{"cmd":{"args":[]}}}})",
                          R"({"key-providers":{"a":{"cmd":{"path":"/x","argz":[]}}}})",
                          R"({"key-providers":{"a":{"grpc":5}}})"}) {
    EXPECT_FALSE(Config(bad).ok()) << bad;
  }
}

TEST_F(KeyProviders, ProtocolDocumentsRoundTrip) {
  std::vector<std::uint8_t> annotation = {1, 2, 3, 250};
  std::string request = image::trust::BuildUnwrapRequest(annotation);
  auto parsed = image::trust::ParseUnwrapRequest(request);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, annotation);
  SecretBytes opts(AsBytes(R"({"symkey":"x"})"));
  SecretBytes response = image::trust::BuildUnwrapResponse(opts);
  auto back = image::trust::ParseUnwrapResponse(response.span());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == opts);
  EXPECT_FALSE(image::trust::ParseUnwrapRequest(R"({"op":"keywrap","keywrapparams":{}})").ok());
  EXPECT_FALSE(image::trust::ParseUnwrapResponse(AsBytes(R"({"keyunwrapresults":{"optsdata":"!!"}})")).ok());
}

TEST_F(KeyProviders, CmdProviderUnwraps) {
  auto providers = Config(CmdConfig(tmp_ / "keys"));
  ASSERT_TRUE(providers.ok());
  Status s = DecryptAll(*providers);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(KeyProviders, CmdProviderWithoutTheKeyFails) {
  auto providers = Config(CmdConfig(tmp_ / "wrong-keys"));
  ASSERT_TRUE(providers.ok());
  Status s = DecryptAll(*providers);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("sealroot"), std::string::npos) << s.message();
}

TEST_F(KeyProviders, CmdProviderThatExitsWithoutAnsweringAttack) {
  // Exits at once without reading stdin (EPIPE must not kill us) or answering.
  for (const char* cmd : {"/bin/true", "/bin/false"}) {
    auto providers =
        Config(R"({"key-providers":{"sealroot":{"cmd":{"path":")" + std::string(cmd) + R"("}}}})");
    ASSERT_TRUE(providers.ok());
    Status s = DecryptAll(*providers);
    EXPECT_FALSE(s.ok()) << cmd;
  }
}

TEST_F(KeyProviders, GrpcKeyProviderServiceUnwraps) {
  int port = FreePort();
  std::string address = "127.0.0.1:" + std::to_string(port);
  BackgroundProcess server(
      {BuiltProgram("sealroot"), "keyprovider", "--dev-unwrap", "--keys", tmp_ / "keys", "--listen", address},
      tmp_ / "kp.log");
  ASSERT_TRUE(WaitForPort(port)) << ReadFileOrDie(tmp_ / "kp.log");
  auto providers = Config(R"({"key-providers":{"sealroot":{"grpc":")" + address + R"("}}})");
  ASSERT_TRUE(providers.ok());
  Status s = DecryptAll(*providers);
  EXPECT_TRUE(s.ok()) << s.ToString();
  // A provider configured under another name is not asked: the layer names "sealroot".
  auto other = Config(R"({"key-providers":{"elsewhere":{"grpc":")" + address + R"("}}})");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(DecryptAll(*other).code(), Code::kFailedPrecondition);
  EXPECT_EQ(server.Stop(), 0);
}

TEST_F(KeyProviders, GrpcKeyBrokerWithoutTheKeyRefuses) {
  int port = FreePort();
  std::string address = "127.0.0.1:" + std::to_string(port);
  BackgroundProcess server({BuiltProgram("sealroot"), "keyprovider", "--dev-unwrap", "--keys",
                            tmp_ / "wrong-keys", "--listen", address},
                           tmp_ / "kp.log");
  ASSERT_TRUE(WaitForPort(port));
  auto providers = Config(R"({"key-providers":{"sealroot":{"grpc":")" + address + R"("}}})");
  ASSERT_TRUE(providers.ok());
  Status s = DecryptAll(*providers);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("UnWrapKey failed"), std::string::npos) << s.message();
}

TEST_F(KeyProviders, UnreachableGrpcProviderIsAClearError) {
  auto providers =
      Config(R"({"key-providers":{"sealroot":{"grpc":"127.0.0.1:)" + std::to_string(FreePort()) + R"("}}})");
  ASSERT_TRUE(providers.ok());
  Status s = DecryptAll(*providers);
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
}

}  // namespace
}  // namespace sealroot::testing::trust
