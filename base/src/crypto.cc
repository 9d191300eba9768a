#include "base/crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>

namespace sealroot {
namespace {

// Failing to allocate an OpenSSL context or to run a fixed, valid primitive means the process
// is out of memory or the library is broken; there is nothing sensible to return.
void Check(bool ok) {
  if (!ok) std::abort();
}

EvpMacCtxPtr NewMacCtx(const char* algorithm) {
  EvpMacPtr mac(EVP_MAC_fetch(nullptr, algorithm, nullptr));
  Check(mac != nullptr);
  EvpMacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  Check(ctx != nullptr);
  return ctx;
}

}  // namespace

std::string OpensslErrors() {
  std::string out;
  while (unsigned long err = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status OpensslStatus(std::string_view what, Code code) {
  std::string message(what);
  std::string errors = OpensslErrors();
  if (!errors.empty()) message += ": " + errors;
  return {code, std::move(message)};
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  Check(ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1);
}

void Sha256::Update(std::span<const std::uint8_t> data) {
  Check(EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) == 1);
}

void Sha256::Update(std::string_view data) {
  Update(AsBytes(data));
}

Sha256Digest Sha256::Finish() {
  Sha256Digest out;
  Check(EVP_DigestFinal_ex(ctx_.get(), out.data(), nullptr) == 1);
  return out;
}

Sha256Digest Sha256Of(std::span<const std::uint8_t> data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

Sha256Digest Sha256Of(std::string_view data) {
  return Sha256Of(AsBytes(data));
}

HmacSha256::HmacSha256(std::span<const std::uint8_t> key) : ctx_(NewMacCtx("HMAC")) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  Check(EVP_MAC_init(ctx_.get(), key.data(), key.size(), params) == 1);
}

void HmacSha256::Update(std::span<const std::uint8_t> data) {
  Check(EVP_MAC_update(ctx_.get(), data.data(), data.size()) == 1);
}

Sha256Digest HmacSha256::Finish() {
  Sha256Digest out;
  std::size_t len = 0;
  Check(EVP_MAC_final(ctx_.get(), out.data(), &len, out.size()) == 1 && len == out.size());
  return out;
}

Block16 AesCmac128(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  Check(key.size() == 16);
  EvpMacCtxPtr ctx = NewMacCtx("CMAC");
  char cipher[] = "AES-128-CBC";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                         OSSL_PARAM_construct_end()};
  Check(EVP_MAC_init(ctx.get(), key.data(), key.size(), params) == 1);
  Check(EVP_MAC_update(ctx.get(), data.data(), data.size()) == 1);
  Block16 out;
  std::size_t len = 0;
  Check(EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) == 1 && len == out.size());
  return out;
}

void RandomBytes(std::span<std::uint8_t> out) {
  if (!out.empty()) Check(RAND_bytes(out.data(), static_cast<int>(out.size())) == 1);
}

namespace {
const EVP_CIPHER* GcmFor(std::size_t key_size) {
  switch (key_size) {
    case 16:
      return EVP_aes_128_gcm();
    case 24:
      return EVP_aes_192_gcm();
    case 32:
      return EVP_aes_256_gcm();
    default:
      return nullptr;
  }
}
constexpr std::size_t kGcmTag = 16;
}  // namespace

Result<std::vector<std::uint8_t>> AesGcmSeal(std::span<const std::uint8_t> key,
                                             std::span<const std::uint8_t> nonce,
                                             std::span<const std::uint8_t> aad,
                                             std::span<const std::uint8_t> plaintext) {
  const EVP_CIPHER* cipher = GcmFor(key.size());
  if (cipher == nullptr) return InvalidArgument("AES-GCM: bad key size");
  if (nonce.empty() || plaintext.size() > (1u << 30)) return InvalidArgument("AES-GCM: bad sizes");
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Check(ctx != nullptr);
  std::vector<std::uint8_t> out(plaintext.size() + kGcmTag);
  int len = 0;
  if (EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &len, plaintext.data(), static_cast<int>(plaintext.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTag, out.data() + plaintext.size()) != 1) {
    return OpensslStatus("AES-GCM encrypt");
  }
  return out;
}

Result<SecretBytes> AesGcmOpen(std::span<const std::uint8_t> key, std::span<const std::uint8_t> nonce,
                               std::span<const std::uint8_t> aad,
                               std::span<const std::uint8_t> ciphertext_and_tag) {
  const EVP_CIPHER* cipher = GcmFor(key.size());
  if (cipher == nullptr) return InvalidArgument("AES-GCM: bad key size");
  if (nonce.empty() || ciphertext_and_tag.size() < kGcmTag || ciphertext_and_tag.size() > (1u << 30)) {
    return DataLoss("authentication failed");
  }
  const std::size_t text_size = ciphertext_and_tag.size() - kGcmTag;
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Check(ctx != nullptr);
  SecretBytes out(text_size);
  std::uint8_t tag[kGcmTag];
  std::copy_n(ciphertext_and_tag.data() + text_size, kGcmTag, tag);
  int len = 0;
  bool ok =
      EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data()) == 1 &&
      (aad.empty() ||
       EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1) &&
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, ciphertext_and_tag.data(),
                        static_cast<int>(text_size)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTag, tag) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) == 1;
  if (!ok) {
    ERR_clear_error();
    return DataLoss("authentication failed");  // `out` wipes itself
  }
  return out;
}

}  // namespace sealroot
