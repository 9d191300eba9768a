#include "image/src/trust/layer_cipher.h"

#include <openssl/evp.h>

#include <climits>
#include <utility>

namespace sealroot::image::trust {
namespace {

class DecryptingReader final : public Reader {
 public:
  DecryptingReader(std::string layer, LayerCipherParams params, std::unique_ptr<Reader> inner,
                   EvpCipherCtxPtr ctx)
      : layer_(std::move(layer)),
        expected_hmac_(params.expected_hmac),
        plaintext_digest_(std::move(params.plaintext_digest)),
        inner_(std::move(inner)),
        ctx_(std::move(ctx)),
        hmac_(params.key.span()) {}

  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    if (!failure_.ok()) return failure_;
    if (done_) return std::size_t{0};
    // Decrypting in place: the ciphertext lands in `out`, is MACed, then overwritten.
    auto chunk = out.subspan(0, std::min<std::size_t>(out.size(), INT_MAX));
    Result<std::size_t> got = inner_->Read(chunk);
    if (!got.ok()) return Fail(got.status());
    if (*got == 0) return Finish();
    auto data = chunk.first(*got);
    hmac_.Update(data);
    int written = 0;
    if (EVP_DecryptUpdate(ctx_.get(), data.data(), &written, data.data(), static_cast<int>(data.size())) !=
            1 ||
        static_cast<std::size_t>(written) != data.size()) {
      return Fail(OpensslStatus(layer_ + ": AES-256-CTR decryption"));
    }
    plain_hash_.Update(data);
    return *got;
  }

 private:
  Result<std::size_t> Finish() {
    done_ = true;
    Sha256Digest mac = hmac_.Finish();
    if (!ConstantTimeEqual(mac, expected_hmac_)) {
      return Fail(
          DataLoss(layer_ + ": HMAC mismatch: the ciphertext or its public options were tampered with"));
    }
    Digest actual = Digest::FromSha256(plain_hash_.Finish());
    if (actual != plaintext_digest_) {
      return Fail(DataLoss(layer_ + ": plaintext digest mismatch: decrypted " + actual.str() +
                           ", private options say " + plaintext_digest_.str()));
    }
    return std::size_t{0};
  }

  Result<std::size_t> Fail(Status status) {
    failure_ = std::move(status);
    return failure_;
  }

  std::string layer_;
  Sha256Digest expected_hmac_;
  Digest plaintext_digest_;
  std::unique_ptr<Reader> inner_;
  EvpCipherCtxPtr ctx_;
  HmacSha256 hmac_;
  Sha256 plain_hash_;
  Status failure_;
  bool done_ = false;
};

}  // namespace

Result<std::unique_ptr<Reader>> MakeDecryptingReader(std::string layer, LayerCipherParams params,
                                                     std::unique_ptr<Reader> ciphertext) {
  if (params.key.size() != kLayerKeySize) {
    return InvalidArgument(layer +
                           ": AES_256_CTR_HMAC_SHA256 needs a 32-byte key, the private options hold " +
                           std::to_string(params.key.size()));
  }
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr, params.key.data(),
                                 params.nonce.data()) != 1) {
    return OpensslStatus(layer + ": initialising AES-256-CTR");
  }
  return std::unique_ptr<Reader>(std::make_unique<DecryptingReader>(std::move(layer), std::move(params),
                                                                    std::move(ciphertext), std::move(ctx)));
}

}  // namespace sealroot::image::trust
