#include "base/encoding.h"

#include <gtest/gtest.h>

#include "base/crypto.h"

namespace sealroot {
namespace {

TEST(EncodingTest, HexRoundTripAndRejectsGarbage) {
  std::vector<std::uint8_t> bytes = {0x00, 0xab, 0xff};
  EXPECT_EQ(HexEncode(bytes), "00abff");
  EXPECT_EQ(*HexDecode("00ABff"), bytes);
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
  EXPECT_TRUE(IsLowerHex("00abff", 6));
  EXPECT_FALSE(IsLowerHex("00ABff", 6));
}

TEST(EncodingTest, Base64Rfc4648Vectors) {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* encoded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(Base64Encode(AsBytes(plain[i])), encoded[i]);
    auto decoded = Base64Decode(encoded[i]);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(AsChars(*decoded), plain[i]);
  }
  EXPECT_FALSE(Base64Decode("Zm9v!").ok());
  EXPECT_FALSE(Base64Decode("Z").ok());
  EXPECT_EQ(Base64UrlEncode(std::vector<std::uint8_t>{0xfb, 0xff}), "-_8");
  EXPECT_FALSE(Base64UrlDecode("-_8=").ok());
}

}  // namespace
}  // namespace sealroot
