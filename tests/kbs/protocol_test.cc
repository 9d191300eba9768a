// The KBS protocol pieces: resource ids, the runtime-data binding (JCS + SHA-384, with trustee's
// own vector), and the JWE every resource travels in.
#include "kbs/protocol.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "base/encoding.h"

namespace sealroot::kbs {
namespace {

using nlohmann::json;

TEST(ResourceId, ParsesKbsUrisAndPathsAndRefusesTraversal) {
  ResourceId a = ResourceId::Parse("kbs:///default/key/layer-1").value();
  EXPECT_EQ(a.Path(), "default/key/layer-1");
  EXPECT_EQ(ResourceId::Parse("kbs://broker.example:8080/r/t/g").value().Path(), "r/t/g");
  EXPECT_EQ(ResourceId::Parse("r/t/g").value().tag, "g");
  for (const char* bad : {"kbs:///a/b", "a/b/c/d", "a/../c", "../b/c", "a/b/", "kbs://", "a/b/c d", "a//c"}) {
    EXPECT_FALSE(ResourceId::Parse(bad).ok()) << bad;
  }
}

TEST(RuntimeData, CanonicalJsonHashesAsTrusteeDoes) {
  // trustee attestation-service's own vector: SHA-384 of the JCS form of this document.
  json doc = json::parse(R"({"b": 1, "a": "test", "c": {"d": "e"}})");
  std::string canonical = CanonicalJson(doc);
  EXPECT_EQ(canonical, R"({"a":"test","b":1,"c":{"d":"e"}})");
  std::array<std::uint8_t, 48> digest{};
  unsigned int len = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest.data(), &len, EVP_sha384(), nullptr);
  EXPECT_EQ(
      HexEncode(digest),
      "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3");
}

TEST(RuntimeData, BindsTheNonceAndTheKeyAndPadsWithZeros) {
  TeeKey key = TeeKey::Generate().value();
  TeeKey other = TeeKey::Generate().value();
  local_attest::sgx::ReportData rd = RuntimeDataBinding("nonce-1", key.public_jwk());
  json runtime = {{"additional-evidence", ""}, {"nonce", "nonce-1"}, {"tee-pubkey", key.public_jwk()}};
  std::string canonical = runtime.dump();
  std::array<std::uint8_t, 48> digest{};
  unsigned int len = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest.data(), &len, EVP_sha384(), nullptr);
  EXPECT_TRUE(std::equal(digest.begin(), digest.end(), rd.begin()));
  EXPECT_TRUE(std::all_of(rd.begin() + 48, rd.end(), [](std::uint8_t b) { return b == 0; }));
  EXPECT_NE(rd, RuntimeDataBinding("nonce-2", key.public_jwk()));
  EXPECT_NE(rd, RuntimeDataBinding("nonce-1", other.public_jwk()));
  EXPECT_EQ(key.public_jwk()["kty"], "EC");
  EXPECT_EQ(key.public_jwk()["alg"], "ECDH-ES+A256KW");
}

TEST(Jwe, OnlyTheTeeKeyOpensAResourceAndAnyChangeIsRefused) {
  TeeKey key = TeeKey::Generate().value();
  TeeKey other = TeeKey::Generate().value();
  std::string secret = "layer key material";
  std::string jwe = SealToTeeKey(key.public_jwk(), AsBytes(secret)).value();
  EXPECT_EQ(std::string(AsChars(key.Open(jwe).value().span())), secret);
  EXPECT_EQ(jwe.find(secret), std::string::npos);
  EXPECT_FALSE(other.Open(jwe).ok());
  json parsed = json::parse(jwe);
  for (const char* field : {"ciphertext", "tag", "iv", "encrypted_key", "protected"}) {
    json bad = parsed;
    std::string& value = bad[field].get_ref<std::string&>();
    value[2] = value[2] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(key.Open(bad.dump()).ok()) << field;
  }
  json header = json::parse(AsChars(Base64UrlDecode(parsed["protected"].get<std::string>()).value()));
  EXPECT_EQ(header["alg"], "ECDH-ES+A256KW");
  EXPECT_EQ(header["enc"], "A256GCM");
}

TEST(Jwe, RsaAndOtherCurvesAreRefusedAsTeeKeys) {
  json rsa = {{"kty", "RSA"}, {"alg", "RSA-OAEP-256"}, {"n", "AQAB"}, {"e", "AQAB"}};
  EXPECT_EQ(SealToTeeKey(rsa, AsBytes(std::string("x"))).status().code(), Code::kInvalidArgument);
  json p384 = {{"kty", "EC"}, {"crv", "P-384"}, {"x", "AA"}, {"y", "AA"}};
  EXPECT_FALSE(SealToTeeKey(p384, AsBytes(std::string("x"))).ok());
  TeeKey key = TeeKey::Generate().value();
  json off_curve = key.public_jwk();
  off_curve["y"] = off_curve["x"];
  EXPECT_FALSE(SealToTeeKey(off_curve, AsBytes(std::string("x"))).ok());
}

}  // namespace
}  // namespace sealroot::kbs
