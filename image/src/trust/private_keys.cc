#include "image/trust/private_keys.h"

#include <openssl/decoder.h>
#include <sys/stat.h>

#include "base/file.h"

namespace sealroot::image::trust {
namespace {

using DecoderCtxPtr = std::unique_ptr<OSSL_DECODER_CTX, OsslDeleter<OSSL_DECODER_CTX_free>>;

// Passphrase files end with a newline when written by `echo`; the newline is not part of it.
SecretBytes TrimNewline(SecretBytes text) {
  std::size_t n = text.size();
  while (n > 0 && (text.data()[n - 1] == '\n' || text.data()[n - 1] == '\r')) --n;
  if (n == text.size()) return text;
  return SecretBytes(text.span().first(n));
}

}  // namespace

Result<EvpPkeyPtr> ParsePrivateKey(std::span<const std::uint8_t> data, const SecretBytes& passphrase,
                                   std::string_view what) {
  EVP_PKEY* raw = nullptr;
  // No input type: the decoder tries PEM and DER, PKCS#8 (encrypted or not) and traditional forms.
  DecoderCtxPtr ctx(OSSL_DECODER_CTX_new_for_pkey(&raw, nullptr, nullptr, nullptr,
                                                  OSSL_KEYMGMT_SELECT_KEYPAIR, nullptr, nullptr));
  if (!ctx) return OpensslStatus("creating a key decoder");
  if (!passphrase.empty() &&
      OSSL_DECODER_CTX_set_passphrase(ctx.get(), passphrase.data(), passphrase.size()) != 1) {
    return OpensslStatus("setting the key passphrase");
  }
  const unsigned char* p = data.data();
  std::size_t len = data.size();
  if (OSSL_DECODER_from_data(ctx.get(), &p, &len) != 1 || raw == nullptr) {
    OpensslErrors();  // the queue names decoder internals, not useful to the user
    return InvalidArgument(std::string(what) +
                           ": not a PEM or DER private key (or a wrong or missing passphrase)");
  }
  return EvpPkeyPtr(raw);
}

KeySpec ParseKeySpec(std::string_view spec) {
  struct stat st {};
  std::string whole(spec);
  std::size_t colon = spec.rfind(':');
  if (colon == std::string_view::npos || ::stat(whole.c_str(), &st) == 0) return {whole, {}};
  auto pass = AsBytes(spec.substr(colon + 1));
  return {std::string(spec.substr(0, colon)), SecretBytes(pass)};
}

Result<std::vector<PrivateKey>> LoadPrivateKeys(const std::vector<std::string>& specs,
                                                const std::string& passphrase_file) {
  SecretBytes file_passphrase;
  if (!passphrase_file.empty()) {
    SR_ASSIGN_OR_RETURN(SecretBytes text, ReadSecretFile(passphrase_file, 4096));
    file_passphrase = TrimNewline(std::move(text));
  }
  std::vector<PrivateKey> keys;
  for (const std::string& spec : specs) {
    KeySpec parsed = ParseKeySpec(spec);
    Result<SecretBytes> data = ReadSecretFile(parsed.path, 1 << 20);
    if (!data.ok()) return std::move(data).status().WithContext("reading decryption key " + parsed.path);
    const SecretBytes& pass = parsed.passphrase.empty() ? file_passphrase : parsed.passphrase;
    Result<EvpPkeyPtr> key = ParsePrivateKey(data->span(), pass, "decryption key " + parsed.path);
    if (!key.ok()) return std::move(key).status();
    keys.push_back({parsed.path, std::move(key).value()});
  }
  return keys;
}

}  // namespace sealroot::image::trust
