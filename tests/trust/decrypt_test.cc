// ocicrypt decryption against images encrypted by skopeo: JWE (RSA, EC, two recipients),
// PKCS7, and JWEs made by an independent implementation (tests/trust/make_jwe.py) for the
// algorithms skopeo does not use; the decrypting stream's end-of-stream checks under attack.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "image/src/trust/decryptor.h"
#include "image/src/trust/jwe.h"
#include "image/src/trust/layer_cipher.h"
#include "image/src/trust/pkcs7.h"
#include "tests/trust/fixture.h"

namespace sealroot::testing::trust {
namespace {

using image::Descriptor;
using image::trust::OcicryptDecryptor;
using image::trust::PrivateKey;

std::vector<PrivateKey> Keys(const std::vector<std::string>& files, const std::string& passphrase_file = "") {
  std::vector<std::string> specs;
  for (const std::string& f : files) specs.push_back(f.find('/') == std::string::npos ? M().Path(f) : f);
  auto keys = image::trust::LoadPrivateKeys(specs, passphrase_file);
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  return keys.ok() ? std::move(keys).value() : std::vector<PrivateKey>{};
}

// Decrypts layer `i` of `image` from `blob` and returns the plaintext (or the error).
Result<std::string> DecryptLayer(OcicryptDecryptor& d, const Descriptor& layer, std::string blob) {
  SR_ASSIGN_OR_RETURN(auto reader, d.Decrypt(layer, BytesReader(std::move(blob), 4093)));
  return ReadAll(*reader);
}

struct Case {
  const char* layout;
  const char* key;
};

class SkopeoEncrypted : public ::testing::TestWithParam<Case> {};

TEST_P(SkopeoEncrypted, DecryptsToThePlainLayerBytes) {
  LayoutImage plain = ReadLayout(M().Path("plain"));
  LayoutImage enc = ReadLayout(M().Path(GetParam().layout));
  ASSERT_EQ(plain.layers.size(), enc.layers.size());
  OcicryptDecryptor d(Keys({GetParam().key}), {});
  int encrypted = 0;
  for (std::size_t i = 0; i < enc.layers.size(); ++i) {
    if (!d.IsEncrypted(enc.layers[i].media_type)) {
      EXPECT_EQ(enc.layers[i].digest, plain.layers[i].digest);
      continue;
    }
    ++encrypted;
    EXPECT_EQ(d.PlaintextMediaType(enc.layers[i].media_type), plain.layers[i].media_type);
    auto out = DecryptLayer(d, enc.layers[i], ReadFileOrDie(enc.BlobPath(enc.layers[i].digest)));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(image::Digest::FromSha256(Sha256Of(*out)), plain.layers[i].digest) << "layer " << i;
  }
  EXPECT_GT(encrypted, 0);
}

INSTANTIATE_TEST_SUITE_P(Layouts, SkopeoEncrypted,
                         ::testing::Values(Case{"jwe-rsa", "rsa.pem"}, Case{"jwe-ec", "ec.pem"},
                                           Case{"pkcs7", "rsa.pem"}, Case{"two", "rsa.pem"},
                                           Case{"two", "ec.pem"}, Case{"jwe-rsa", "rsa.der"},
                                           Case{"jwe-ec", "ec.der"}));

TEST(PrivateKeys, EncryptedKeyWithPassphraseSpecOrFile) {
  LayoutImage enc = ReadLayout(M().Path("jwe-rsa"));
  OcicryptDecryptor d(Keys({M().Path("rsa-enc.pem") + ":correct-horse"}), {});
  EXPECT_TRUE(d.UnwrapPrivateOptions(enc.layers[0]).ok());
  TempDir tmp;
  ASSERT_TRUE(WriteFileAtomic(tmp / "pass", std::string_view("correct-horse\n")).ok());
  OcicryptDecryptor from_file(Keys({"rsa-enc.pem"}, tmp / "pass"), {});
  EXPECT_TRUE(from_file.UnwrapPrivateOptions(enc.layers[0]).ok());
}

TEST(PrivateKeys, WrongPassphraseIsAClearError) {
  auto keys = image::trust::LoadPrivateKeys({M().Path("rsa-enc.pem") + ":hunter2-nope"}, "");
  ASSERT_FALSE(keys.ok());
  EXPECT_NE(keys.status().message().find("passphrase"), std::string::npos) << keys.status().message();
  EXPECT_EQ(keys.status().message().find("hunter2"), std::string::npos)
      << "the passphrase leaked into the error";
}

TEST(PrivateKeys, NotAKeyIsAClearError) {
  auto keys = image::trust::LoadPrivateKeys({M().Path("rsa.crt")}, "");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), Code::kInvalidArgument);
}

TEST(DecryptAttack, WrongKeyNamesTheLayer) {
  LayoutImage enc = ReadLayout(M().Path("jwe-rsa"));
  OcicryptDecryptor d(Keys({"other-rsa.pem", "other-ec.pem"}), {});
  auto r = d.Decrypt(enc.layers[0], BytesReader(""));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find(enc.layers[0].digest.str()), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("jwe"), std::string::npos) << r.status().message();
}

TEST(DecryptAttack, TamperedCiphertextFailsTheHmac) {
  LayoutImage enc = ReadLayout(M().Path("jwe-rsa"));
  OcicryptDecryptor d(Keys({"rsa.pem"}), {});
  std::string blob = ReadFileOrDie(enc.BlobPath(enc.layers[0].digest));
  blob[blob.size() / 2] ^= 0x01;
  auto out = DecryptLayer(d, enc.layers[0], blob);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kDataLoss);
  EXPECT_NE(out.status().message().find("HMAC mismatch"), std::string::npos) << out.status().message();
}

TEST(DecryptAttack, TruncatedCiphertextFailsTheHmac) {
  LayoutImage enc = ReadLayout(M().Path("jwe-ec"));
  OcicryptDecryptor d(Keys({"ec.pem"}), {});
  std::string blob = ReadFileOrDie(enc.BlobPath(enc.layers[0].digest));
  blob.resize(blob.size() - 1);
  auto out = DecryptLayer(d, enc.layers[0], blob);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("HMAC mismatch"), std::string::npos) << out.status().message();
}

TEST(DecryptAttack, TamperedPuboptsHmacFails) {
  LayoutImage enc = ReadLayout(M().Path("jwe-rsa"));
  OcicryptDecryptor d(Keys({"rsa.pem"}), {});
  Descriptor layer = enc.layers[0];
  std::string fake_hmac(32, 'x');
  layer.annotations["org.opencontainers.image.enc.pubopts"] =
      Base64Encode(AsBytes(R"({"cipher":"AES_256_CTR_HMAC_SHA256","hmac":")" +
                           Base64Encode(AsBytes(fake_hmac)) + R"(","cipheroptions":{}})"));
  auto out = DecryptLayer(d, layer, ReadFileOrDie(enc.BlobPath(enc.layers[0].digest)));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kDataLoss);
  EXPECT_NE(out.status().message().find("HMAC mismatch"), std::string::npos) << out.status().message();
}

TEST(DecryptAttack, SwappedLayersFail) {
  LayoutImage enc = ReadLayout(M().Path("jwe-rsa"));
  ASSERT_EQ(enc.layers.size(), 2u);
  OcicryptDecryptor d(Keys({"rsa.pem"}), {});
  // Layer 0's keys and options over layer 1's ciphertext.
  auto out = DecryptLayer(d, enc.layers[0], ReadFileOrDie(enc.BlobPath(enc.layers[1].digest)));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kDataLoss);
}

TEST(DecryptAttack, UnsupportedCipherAndMissingPubopts) {
  LayoutImage enc = ReadLayout(M().Path("jwe-rsa"));
  OcicryptDecryptor d(Keys({"rsa.pem"}), {});
  Descriptor layer = enc.layers[0];
  layer.annotations.erase("org.opencontainers.image.enc.pubopts");
  EXPECT_EQ(d.Decrypt(layer, BytesReader("")).status().code(), Code::kInvalidArgument);
  layer.annotations["org.opencontainers.image.enc.pubopts"] =
      Base64Encode(AsBytes(R"({"cipher":"AES_128_CBC","hmac":"","cipheroptions":{}})"));
  EXPECT_EQ(d.Decrypt(layer, BytesReader("")).status().code(), Code::kInvalidArgument);
}

// The stream stage alone: AES-256-CTR with a 128-bit counter, HMAC over the ciphertext, and the
// plaintext digest from the private options.
std::string CtrEncrypt(const SecretBytes& key, const std::array<std::uint8_t, 16>& iv,
                       const std::string& plain) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::string out(plain.size(), '\0');
  int len = 0;
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr, key.data(), iv.data());
  EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                    reinterpret_cast<const unsigned char*>(plain.data()), static_cast<int>(plain.size()));
  return out;
}

TEST(LayerCipher, PlaintextDigestMismatchIsNamed) {
  SecretBytes key = SecretBytes::Random(32);
  std::array<std::uint8_t, 16> iv{};
  iv.fill(0xff);  // the counter wraps around 2^128 within the first blocks
  std::string plain(100000, 'p');
  std::string cipher = CtrEncrypt(key, iv, plain);
  HmacSha256 mac(key.span());
  mac.Update(AsBytes(cipher));
  Sha256Digest hmac = mac.Finish();
  for (bool right_digest : {true, false}) {
    image::trust::LayerCipherParams params{
        key.Clone(), iv, hmac, image::Digest::FromSha256(Sha256Of(right_digest ? plain : plain + "x"))};
    auto reader = image::trust::MakeDecryptingReader("layer 7", std::move(params), BytesReader(cipher, 777));
    ASSERT_TRUE(reader.ok());
    auto out = ReadAll(**reader);
    if (right_digest) {
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(*out, plain);
    } else {
      ASSERT_FALSE(out.ok());
      EXPECT_EQ(out.status().code(), Code::kDataLoss);
      EXPECT_NE(out.status().message().find("layer 7: plaintext digest mismatch"), std::string::npos);
    }
  }
}

TEST(LayerCipher, ShortKeyIsRejected) {
  image::trust::LayerCipherParams params{SecretBytes(16), {}, {}, image::Digest::FromSha256(Sha256Of(""))};
  EXPECT_EQ(image::trust::MakeDecryptingReader("l", std::move(params), BytesReader("")).status().code(),
            Code::kInvalidArgument);
}

// JWEs made by python3-cryptography for the algorithms skopeo does not produce.
std::string MakeJwe(const std::string& args, const std::string& plaintext) {
  CommandOptions o;
  o.stdin_data = plaintext;
  CommandResult r = MustShell(std::string(SEALROOT_TRUST_TEST_DIR) + "/make_jwe.py " + args, o);
  return r.out;
}

TEST(Jwe, AlgorithmsSkopeoDoesNotMake) {
  const std::string secret = R"({"symkey":"c2VjcmV0"})";
  struct {
    std::string args;
    std::string key;
    std::vector<std::string> wrong_keys;
  } cases[] = {{"RSA-OAEP-256 rsa.pub", "rsa.pem", {"other-rsa.pem", "ec.pem"}},
               {"RSA-OAEP rsa.pub", "rsa.pem", {"other-rsa.pem", "ec.pem"}},
               {"ECDH-ES+A128KW ec.pub", "ec.pem", {"other-ec.pem", "ec384.pem", "rsa.pem"}},
               {"ECDH-ES+A192KW ec384.pub", "ec384.pem", {"other-ec.pem", "ec.pem"}},
               {"ECDH-ES+A256KW ec384.pub", "ec384.pem", {"other-ec.pem", "rsa.pem"}},
               {"RSA-OAEP-256 other-rsa.pub ECDH-ES+A128KW ec.pub", "ec.pem", {"rsa.pem", "other-ec.pem"}}};
  for (const auto& c : cases) {
    std::string jwe = MakeJwe(c.args, secret);
    auto keys = Keys({c.key});
    auto plain = image::trust::JweDecrypt(jwe, keys);
    ASSERT_TRUE(plain.ok()) << c.args << ": " << plain.status().ToString();
    EXPECT_EQ(AsChars(plain->span()), secret) << c.args;
    EXPECT_EQ(image::trust::JweDecrypt(jwe, Keys(c.wrong_keys)).status().code(), Code::kNotFound) << c.args;
  }
}

TEST(Jwe, RecipientsAreListed) {
  auto r = image::trust::JweRecipients(MakeJwe("RSA-OAEP-256 rsa.pub ECDH-ES+A128KW ec.pub", "x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<std::string>{"RSA-OAEP-256", "ECDH-ES+A128KW P-256"}));
}

TEST(JweAttack, MalformedDocumentsAreErrorsNotCrashes) {
  auto keys = Keys({"rsa.pem", "ec.pem"});
  std::string good = MakeJwe("ECDH-ES+A256KW ec.pub", "x");
  nlohmann::json j = nlohmann::json::parse(good);
  std::vector<std::string> bad = {"",
                                  "[]",
                                  "{",
                                  R"({"protected":5})",
                                  R"({"protected":"!!!"})",
                                  R"({"recipients":[],"iv":"","ciphertext":"","tag":""})"};
  nlohmann::json no_tag = j;
  no_tag.erase("tag");
  bad.push_back(no_tag.dump());
  nlohmann::json zip = j;
  zip["unprotected"] = {{"zip", "DEF"}};
  bad.push_back(zip.dump());
  for (const std::string& doc : bad) {
    auto r = image::trust::JweDecrypt(doc, keys);
    EXPECT_FALSE(r.ok()) << doc;
    EXPECT_NE(r.status().code(), Code::kOk);
  }
}

TEST(JweAttack, InvalidCurvePointIsRefused) {
  std::string jwe = MakeJwe("ECDH-ES+A256KW ec.pub", "x");
  nlohmann::json j = nlohmann::json::parse(jwe);
  std::string header(AsChars(*Base64UrlDecode(j["protected"].get<std::string>())));
  nlohmann::json h = nlohmann::json::parse(header);
  std::string y = h["epk"]["y"];
  y[5] = y[5] == 'A' ? 'B' : 'A';  // no longer on the curve
  h["epk"]["y"] = y;
  j["protected"] = Base64UrlEncode(AsBytes(h.dump()));
  auto r = image::trust::JweDecrypt(j.dump(), Keys({"ec.pem"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
}

TEST(JweAttack, TamperedContentFailsAuthentication) {
  std::string jwe = MakeJwe("RSA-OAEP rsa.pub", "secret options");
  nlohmann::json j = nlohmann::json::parse(jwe);
  auto ct = *Base64UrlDecode(j["ciphertext"].get<std::string>());
  ct[0] ^= 1;
  j["ciphertext"] = Base64UrlEncode(ct);
  EXPECT_FALSE(image::trust::JweDecrypt(j.dump(), Keys({"rsa.pem"})).ok());
}

std::vector<std::uint8_t> Pkcs7Blob() {
  LayoutImage enc = ReadLayout(M().Path("pkcs7"));
  return *Base64Decode(enc.layers[0].annotations.at("org.opencontainers.image.enc.keys.pkcs7"));
}

TEST(Pkcs7, RecipientsNameIssuerAndSerial) {
  auto r = image::trust::Pkcs7Recipients(Pkcs7Blob());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_NE((*r)[0].find("CN=sealroot-test"), std::string::npos) << (*r)[0];
}

TEST(Pkcs7Attack, TruncatedAndCorruptedEnvelopesAreErrors) {
  std::vector<std::uint8_t> der = Pkcs7Blob();
  auto keys = Keys({"rsa.pem"});
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{10}, der.size() / 2, der.size() - 1}) {
    std::vector<std::uint8_t> part(der.begin(), der.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(image::trust::Pkcs7Decrypt(part, keys).ok()) << cut;
  }
  // Corrupting the structure or the sealed content is an error, never a crash or a wrong key.
  for (std::size_t i :
       {std::size_t{0}, std::size_t{1}, std::size_t{4}, der.size() - 40, der.size() - 17, der.size() - 1}) {
    std::vector<std::uint8_t> bad = der;
    bad[i] ^= 0x40;
    EXPECT_FALSE(image::trust::Pkcs7Decrypt(bad, keys).ok()) << "byte " << i;
  }
  EXPECT_EQ(image::trust::Pkcs7Decrypt(der, Keys({"other-rsa.pem"})).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sealroot::testing::trust
