// base/crypto.h against published test vectors: SHA-256 (FIPS 180-2 examples), HMAC-SHA256
// (RFC 4231 section 4), AES-CMAC (RFC 4493 section 4; the SGX simulation's EREPORT/EGETKEY MACs
// and the local-attestation key derivation use this function) and AES-256-GCM (the GCM
// specification's test cases 13-18, McGrew & Viega, as reproduced in NIST's GCM validation).
// A round trip would pass with a wrong but self-consistent primitive; these cannot.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/crypto.h"
#include "base/encoding.h"

namespace sealroot {
namespace {

std::vector<std::uint8_t> Hex(std::string_view s) {
  auto bytes = HexDecode(s);
  EXPECT_TRUE(bytes.ok()) << s;
  return bytes.ok() ? *bytes : std::vector<std::uint8_t>{};
}

std::vector<std::uint8_t> Repeat(std::uint8_t byte, std::size_t n) {
  return std::vector<std::uint8_t>(n, byte);
}

// --- SHA-256 -----------------------------------------------------------------------------------

TEST(Sha256VectorTest, Fips180Examples) {
  EXPECT_EQ(HexEncode(Sha256Of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256Of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256VectorTest, OneMillionAsInUnevenPieces) {
  // FIPS 180-2 example 3: 1,000,000 repetitions of 'a'. Fed in pieces that straddle the 64-byte
  // block so that the incremental hasher's buffering is exercised.
  const std::string chunk(997, 'a');
  Sha256 h;
  std::size_t fed = 0;
  while (fed + chunk.size() <= 1000000) {
    h.Update(chunk);
    fed += chunk.size();
  }
  h.Update(std::string(1000000 - fed, 'a'));
  EXPECT_EQ(HexEncode(h.Finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// --- HMAC-SHA256 (RFC 4231) ----------------------------------------------------------------------

struct HmacVector {
  const char* name;
  std::vector<std::uint8_t> key;
  std::vector<std::uint8_t> data;
  const char* mac;
};

TEST(HmacSha256VectorTest, Rfc4231Cases) {
  const std::string large_key_text = "Test Using Larger Than Block-Size Key - Hash Key First";
  const std::string large_both_text =
      "This is a test using a larger than block-size key and a larger than block-size data. The key needs to "
      "be "
      "hashed before being used by the HMAC algorithm.";
  const std::vector<HmacVector> vectors = {
      {"4.2 test case 1", Repeat(0x0b, 20),
       std::vector<std::uint8_t>(AsBytes("Hi There").begin(), AsBytes("Hi There").end()),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"4.3 test case 2", Hex("4a656665"), Hex("7768617420646f2079612077616e7420666f72206e6f7468696e673f"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"4.4 test case 3", Repeat(0xaa, 20), Repeat(0xdd, 50),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"4.5 test case 4", Hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), Repeat(0xcd, 50),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {"4.7 test case 6 (key longer than a block)", Repeat(0xaa, 131),
       std::vector<std::uint8_t>(AsBytes(large_key_text).begin(), AsBytes(large_key_text).end()),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"4.8 test case 7 (key and data longer than a block)", Repeat(0xaa, 131),
       std::vector<std::uint8_t>(AsBytes(large_both_text).begin(), AsBytes(large_both_text).end()),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const HmacVector& v : vectors) {
    HmacSha256 mac(v.key);
    mac.Update(v.data);
    EXPECT_EQ(HexEncode(mac.Finish()), v.mac) << v.name;

    // The same MAC when the data arrives one byte at a time.
    HmacSha256 split(v.key);
    for (std::uint8_t b : v.data) split.Update(std::span(&b, 1));
    EXPECT_EQ(HexEncode(split.Finish()), v.mac) << v.name << " (byte by byte)";
  }
}

TEST(HmacSha256VectorTest, Rfc4231Case5TruncatedTo128Bits) {
  HmacSha256 mac(Repeat(0x0c, 20));
  mac.Update(AsBytes("Test With Truncation"));
  EXPECT_EQ(HexEncode(mac.Finish()).substr(0, 32), "a3b6167473100ee06e0c796c2955552b");
}

// --- AES-CMAC (RFC 4493) -------------------------------------------------------------------------

TEST(AesCmacVectorTest, Rfc4493Examples) {
  const auto key = Hex("2b7e151628aed2a6abf7158809cf4f3c");
  const auto m64 =
      Hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
          "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
  // Example 1: empty (the padded, K2 branch with no data); 2: one whole block (K1);
  // 3: 40 bytes (a partial last block, K2); 4: four whole blocks (chaining, K1).
  EXPECT_EQ(HexEncode(AesCmac128(key, {})), "bb1d6929e95937287fa37d129b756746");
  EXPECT_EQ(HexEncode(AesCmac128(key, std::span(m64).first(16))), "070a16b46b4d4144f79bdd9dd04a287c");
  EXPECT_EQ(HexEncode(AesCmac128(key, std::span(m64).first(40))), "dfa66747de9ae63030ca32611497c827");
  EXPECT_EQ(HexEncode(AesCmac128(key, m64)), "51f0bebf7e3b9d92fc49741779363cfe");
}

// --- AES-256-GCM (GCM specification test cases 13-18) -----------------------------------------

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* aad;
  const char* plaintext;
  const char* ciphertext;
  const char* tag;
};

constexpr char kKey256[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr char kPlain64[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
constexpr char kPlain60[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
constexpr char kAad20[] = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

const GcmVector kGcmVectors[] = {
    {"test case 13 (empty plaintext and AAD)",
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000", "", "",
     "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"test case 14 (one zero block)", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"test case 15 (four blocks, no AAD)", kKey256, "cafebabefacedbaddecaf888", "", kPlain64,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"test case 16 (partial last block, AAD)", kKey256, "cafebabefacedbaddecaf888", kAad20, kPlain60,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"test case 17 (64-bit IV)", kKey256, "cafebabefacedbad", kAad20, kPlain60,
     "c3762df1ca787d32ae47c13bf19844cbaf1ae14d0b976afac52ff7d79bba9de0"
     "feb582d33934a4f0954cc2363bc73f7862ac430e64abe499f47c9b1f",
     "3a337dbf46a792c45e454913fe2ea8f2"},
    {"test case 18 (480-bit IV)", kKey256,
     "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728"
     "c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
     kAad20, kPlain60,
     "5a8def2f0c9e53f1f75d7853659e2a20eeb2b22aafde6419a058ab4f6f746bf4"
     "0fc0c3b780f244452da3ebf1c5d82cdea2418997200ef82e44ae7e3f",
     "a44a8266ee1c8eb0c8b5d4cf5ae9f19a"},
};

class AesGcmVectorTest : public ::testing::TestWithParam<GcmVector> {};

TEST_P(AesGcmVectorTest, SealProducesThePublishedCiphertextAndTag) {
  const GcmVector& v = GetParam();
  auto sealed = AesGcmSeal(Hex(v.key), Hex(v.iv), Hex(v.aad), Hex(v.plaintext));
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(HexEncode(*sealed), std::string(v.ciphertext) + v.tag);
}

TEST_P(AesGcmVectorTest, OpenRecoversThePlaintextAndRejectsEveryAlteredInput) {
  const GcmVector& v = GetParam();
  const auto key = Hex(v.key);
  const auto iv = Hex(v.iv);
  const auto aad = Hex(v.aad);
  const auto sealed = Hex(std::string(v.ciphertext) + v.tag);
  auto opened = AesGcmOpen(key, iv, aad, sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(HexEncode(opened->span()), v.plaintext);

  auto expect_rejected = [&](std::span<const std::uint8_t> k, std::span<const std::uint8_t> n,
                             std::span<const std::uint8_t> a, std::span<const std::uint8_t> c,
                             const char* what) {
    auto bad = AesGcmOpen(k, n, a, c);
    ASSERT_FALSE(bad.ok()) << what;
    EXPECT_EQ(bad.status().code(), Code::kDataLoss) << what;
    EXPECT_EQ(bad.status().message(), "authentication failed") << what;
  };
  for (std::size_t i = 0; i < sealed.size(); ++i) {  // every byte of ciphertext and tag
    auto flipped = sealed;
    flipped[i] ^= 0x80;
    expect_rejected(key, iv, aad, flipped, "flipped ciphertext/tag byte");
  }
  auto other_key = key;
  other_key[31] ^= 1;
  expect_rejected(other_key, iv, aad, sealed, "other key");
  auto other_iv = iv;
  other_iv[0] ^= 1;
  expect_rejected(key, other_iv, aad, sealed, "other IV");
  auto other_aad = aad;
  other_aad.push_back(0);
  expect_rejected(key, iv, other_aad, sealed, "extra AAD byte");
  expect_rejected(key, iv, aad, std::span(sealed).first(sealed.size() - 1), "truncated tag");
}

INSTANTIATE_TEST_SUITE_P(GcmSpec, AesGcmVectorTest, ::testing::ValuesIn(kGcmVectors),
                         [](const ::testing::TestParamInfo<GcmVector>& param_info) {
                           return "TestCase" + std::to_string(13 + param_info.index);
                         });

}  // namespace
}  // namespace sealroot
