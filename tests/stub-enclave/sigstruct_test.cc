// SIGSTRUCT signing and verification.
#include "stub-enclave/sigstruct.h"

#include <gtest/gtest.h>

#include "tests/stub-enclave/signing_keys.h"

namespace sealroot::stub_enclave {
namespace {

local_attest::sgx::Measurement Mr(std::uint8_t v) {
  local_attest::sgx::Measurement m;
  m.fill(v);
  return m;
}

TEST(Sigstruct, SignsAndVerifiesWithTheSgxLayout) {
  EVP_PKEY* key = testkeys::KeyA();
  local_attest::sgx::Sigstruct sig =
      SignEnclave(key, Mr(1), {.isv_prod_id = 2, .isv_svn = 3, .date = 0x20261123}).value();
  EXPECT_EQ(sig.exponent, 3u);
  EXPECT_EQ(sig.date, 0x20261123u);
  EXPECT_EQ(sig.isv_prod_id, 2);
  EXPECT_EQ(sig.isv_svn, 3);
  EXPECT_EQ(sig.enclave_hash, Mr(1));
  EXPECT_EQ(sig.attributes.flags & local_attest::sgx::kFlagDebug, 0u);
  EXPECT_EQ(local_attest::sgx::BytesOf(sig)[0], 0x06);
  EXPECT_EQ(local_attest::sgx::BytesOf(sig)[4], 0xe1);
  auto signer = VerifySigstruct(sig, Mr(1));
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ(*signer, Sha256Of(sig.modulus));
  EXPECT_NE(*signer, MrSignerOf(SignEnclave(testkeys::KeyB(), Mr(1), {}).value()));
}

TEST(Sigstruct, DebugSigningSetsTypeAndAttribute) {
  local_attest::sgx::Sigstruct sig = SignEnclave(testkeys::KeyA(), Mr(1), {.debug = true}).value();
  EXPECT_EQ(sig.type, 0x80000000u);
  EXPECT_NE(sig.attributes.flags & local_attest::sgx::kFlagDebug, 0u);
  EXPECT_TRUE(VerifySigstruct(sig, Mr(1)).ok());
}

TEST(Sigstruct, TamperedFieldsAreRefused) {
  const local_attest::sgx::Sigstruct good = SignEnclave(testkeys::KeyA(), Mr(1), {.isv_svn = 1}).value();
  for (std::size_t offset : {0u, 20u, 200u, 600u, 928u, 960u, 1026u, 1100u, 1500u}) {
    local_attest::sgx::Sigstruct bad = good;
    local_attest::sgx::MutableBytesOf(bad)[offset] ^= 0x01;
    EXPECT_FALSE(VerifySigstruct(bad, bad.enclave_hash).ok()) << "flipped byte " << offset;
  }
  auto other = VerifySigstruct(good, Mr(2));
  EXPECT_EQ(other.status().code(), Code::kPermissionDenied);
}

TEST(Sigstruct, KeysMustBeRsa3072WithExponent3) {
  EvpPkeyPtr e65537(EVP_RSA_gen(3072));
  ASSERT_TRUE(e65537);
  EXPECT_FALSE(SignEnclave(e65537.get(), Mr(1), {}).ok());
  std::string pem = SigningKeyToPem(e65537.get()).value();
  EXPECT_EQ(ParseSigningKey(pem).status().code(), Code::kInvalidArgument);
  std::string good = SigningKeyToPem(testkeys::KeyA()).value();
  EXPECT_TRUE(ParseSigningKey(good).ok());
  EXPECT_FALSE(ParseSigningKey("not a key").ok());
}

}  // namespace
}  // namespace sealroot::stub_enclave
