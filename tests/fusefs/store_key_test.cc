// The store key's derivations (fusefs/store_key.h) against HKDF-SHA256 as RFC 5869 defines it.
// The reference below is written from the RFC's two steps over base's HMAC-SHA256 and is itself
// checked against the RFC's test cases 1-3 first, so a wrong salt/info/length convention in the
// library's HKDF call (OpenSSL's KDF parameters) shows as a mismatch with published numbers.
#include "fusefs/store_key.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "base/encoding.h"

namespace sealroot::fusefs {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes Range(int first, int last) {
  Bytes out;
  for (int b = first; b <= last; ++b) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

// RFC 5869 section 2.2: PRK = HMAC-Hash(salt, IKM), salt defaulting to HashLen zeros.
Sha256Digest Extract(std::span<const std::uint8_t> salt, std::span<const std::uint8_t> ikm) {
  const Bytes zeros(32, 0);
  HmacSha256 mac(salt.empty() ? std::span<const std::uint8_t>(zeros) : salt);
  mac.Update(ikm);
  return mac.Finish();
}

// RFC 5869 section 2.3: T(i) = HMAC-Hash(PRK, T(i-1) | info | i), OKM = first L octets.
Bytes Expand(std::span<const std::uint8_t> prk, std::span<const std::uint8_t> info, std::size_t length) {
  Bytes okm;
  Bytes previous;
  for (std::uint8_t i = 1; okm.size() < length; ++i) {
    HmacSha256 mac(prk);
    mac.Update(previous);
    mac.Update(info);
    mac.Update(std::span(&i, 1));
    Sha256Digest t = mac.Finish();
    previous.assign(t.begin(), t.end());
    okm.insert(okm.end(), t.begin(), t.end());
  }
  okm.resize(length);
  return okm;
}

Bytes Hkdf(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt, std::string_view info,
           std::size_t length = 32) {
  Sha256Digest prk = Extract(salt, ikm);
  return Expand(prk, AsBytes(info), length);
}

TEST(HkdfReferenceTest, Rfc5869Case1) {
  const Bytes ikm(22, 0x0b);
  const Bytes salt = Range(0x00, 0x0c);
  const Bytes info = Range(0xf0, 0xf9);
  Sha256Digest prk = Extract(salt, ikm);
  EXPECT_EQ(HexEncode(prk), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  EXPECT_EQ(HexEncode(Expand(prk, info, 42)),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfReferenceTest, Rfc5869Case2LongInputsAndThreeBlocks) {
  Sha256Digest prk = Extract(Range(0x60, 0xaf), Range(0x00, 0x4f));
  EXPECT_EQ(HexEncode(Expand(prk, Range(0xb0, 0xff), 82)),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

TEST(HkdfReferenceTest, Rfc5869Case3EmptySaltAndInfo) {
  const Bytes ikm(22, 0x0b);
  Sha256Digest prk = Extract({}, ikm);
  EXPECT_EQ(HexEncode(prk), "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
  EXPECT_EQ(HexEncode(Expand(prk, {}, 42)),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

class StoreKeyDerivationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = StoreKey::Create(SecretBytes(Bytes(ikm_)));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    key_.emplace(std::move(*key));
  }
  const Bytes ikm_ = Range(0x20, 0x3f);  // 32 bytes
  std::optional<StoreKey> key_;
};

TEST_F(StoreKeyDerivationTest, ObjectKeyIsHkdfOfTheStoreKeyWithTheObjectSalt) {
  const Bytes salt = Range(0x80, 0x9f);
  auto object_key = key_->ObjectKey(salt);
  ASSERT_TRUE(object_key.ok());
  EXPECT_EQ(HexEncode(object_key->span()), HexEncode(Hkdf(ikm_, salt, "sealfs v1 object key")));
  // A 13-byte salt (RFC 5869 case 1's length) as well: the salt is used whole, not padded or cut.
  auto short_salt_key = key_->ObjectKey(Range(0x00, 0x0c));
  ASSERT_TRUE(short_salt_key.ok());
  EXPECT_EQ(HexEncode(short_salt_key->span()),
            HexEncode(Hkdf(ikm_, Range(0x00, 0x0c), "sealfs v1 object key")));
}

TEST_F(StoreKeyDerivationTest, RecordMacIsHmacUnderTheHkdfRecordKey) {
  const Bytes record_key = Hkdf(ikm_, {}, "sealfs v1 record mac");
  HmacSha256 expected(record_key);
  expected.Update(AsBytes("a layer record"));
  EXPECT_EQ(HexEncode(key_->RecordMac(AsBytes("a layer record"))), HexEncode(expected.Finish()));
}

TEST_F(StoreKeyDerivationTest, LayerNameIsHexHmacOfTheDiffIdUnderTheHkdfNameKey) {
  const std::string diff_id = "sha256:" + std::string(64, 'a');
  const Bytes name_key = Hkdf(ikm_, {}, "sealfs v2 store names");
  HmacSha256 expected(name_key);
  expected.Update(AsBytes(diff_id));
  EXPECT_EQ(key_->LayerName(diff_id), HexEncode(expected.Finish()));
}

TEST(StoreKeyTest, RejectsKeysThatAreNot32Bytes) {
  EXPECT_FALSE(StoreKey::Create(SecretBytes(Bytes(31, 1))).ok());
  EXPECT_FALSE(StoreKey::Create(SecretBytes(Bytes(33, 1))).ok());
  EXPECT_FALSE(StoreKey::Create(SecretBytes(Bytes{})).ok());
}

}  // namespace
}  // namespace sealroot::fusefs
