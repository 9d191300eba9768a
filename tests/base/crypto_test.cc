#include "base/crypto.h"

#include <gtest/gtest.h>

#include "base/encoding.h"

namespace sealroot {
namespace {

std::vector<std::uint8_t> Hex(std::string_view s) {
  return *HexDecode(s);
}

TEST(CryptoTest, Sha256OfAbc) {
  EXPECT_EQ(HexEncode(Sha256Of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CryptoTest, HmacSha256Rfc4231Case2) {
  HmacSha256 mac(AsBytes("Jefe"));
  mac.Update(AsBytes("what do ya want for nothing?"));
  EXPECT_EQ(HexEncode(mac.Finish()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, AesCmacRfc4493Vectors) {
  auto key = Hex("2b7e151628aed2a6abf7158809cf4f3c");
  EXPECT_EQ(HexEncode(AesCmac128(key, {})), "bb1d6929e95937287fa37d129b756746");
  EXPECT_EQ(HexEncode(AesCmac128(key, Hex("6bc1bee22e409f96e93d7e117393172a"))),
            "070a16b46b4d4144f79bdd9dd04a287c");
}

TEST(CryptoTest, AesGcmRoundTripAndTamperDetection) {
  SecretBytes key = SecretBytes::Random(32);
  std::vector<std::uint8_t> nonce(12, 7);
  auto sealed = AesGcmSeal(key.span(), nonce, AsBytes("aad"), AsBytes("secret payload"));
  ASSERT_TRUE(sealed.ok());
  auto opened = AesGcmOpen(key.span(), nonce, AsBytes("aad"), *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(AsChars(opened->span()), "secret payload");

  auto flipped = *sealed;
  flipped[0] ^= 1;
  auto bad = AesGcmOpen(key.span(), nonce, AsBytes("aad"), flipped);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kDataLoss);
  EXPECT_EQ(bad.status().message(), "authentication failed");
  EXPECT_FALSE(AesGcmOpen(key.span(), nonce, AsBytes("other aad"), *sealed).ok());
  EXPECT_FALSE(AesGcmOpen(key.span(), nonce, {}, std::vector<std::uint8_t>(5)).ok());
}

TEST(CryptoTest, SecretBytesCompareInConstantTimeAndMoveEmptiesTheSource) {
  SecretBytes a(std::vector<std::uint8_t>{1, 2, 3});
  SecretBytes b = a.Clone();
  EXPECT_TRUE(a == b);
  b.data()[2] = 4;
  EXPECT_FALSE(a == b);
  SecretBytes c = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(c.size(), 3u);
}

}  // namespace
}  // namespace sealroot
