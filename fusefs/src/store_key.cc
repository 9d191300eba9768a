#include "fusefs/store_key.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include <string>

#include "base/crypto.h"
#include "base/encoding.h"

namespace sealroot::fusefs {
namespace {

using EvpKdfPtr = std::unique_ptr<EVP_KDF, OsslDeleter<EVP_KDF_free>>;
using EvpKdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, OsslDeleter<EVP_KDF_CTX_free>>;

Result<SecretBytes> Hkdf(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                         std::string_view info) {
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return OpensslStatus("fetching HKDF");
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return OpensslStatus("creating HKDF context");
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(ikm.data()),
                                                  ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<std::uint8_t*>(salt.data()), salt.size());
  }
  params[n++] =
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes out(32);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) return OpensslStatus("deriving a key");
  return out;
}

}  // namespace

Result<StoreKey> StoreKey::Create(SecretBytes key) {
  if (key.size() != kSize) {
    return InvalidArgument("a sealed store key must be 32 bytes, got " + std::to_string(key.size()));
  }
  SR_ASSIGN_OR_RETURN(SecretBytes record_key, Hkdf(key.span(), {}, "sealfs v1 record mac"));
  SR_ASSIGN_OR_RETURN(SecretBytes name_key, Hkdf(key.span(), {}, "sealfs v2 store names"));
  return StoreKey(std::move(key), std::move(record_key), std::move(name_key));
}

Result<SecretBytes> StoreKey::ObjectKey(std::span<const std::uint8_t> salt) const {
  return Hkdf(key_.span(), salt, "sealfs v1 object key");
}

Hash32 StoreKey::RecordMac(std::span<const std::uint8_t> data) const {
  HmacSha256 mac(record_key_.span());
  mac.Update(data);
  return mac.Finish();
}

Result<SecretBytes> StoreKey::RootNamesKey() const {
  return Hkdf(key_.span(), {}, "sealfs v2 root names");
}

std::string StoreKey::LayerName(std::string_view diff_id) const {
  HmacSha256 mac(name_key_.span());
  mac.Update(AsBytes(diff_id));
  Hash32 name = mac.Finish();
  return HexEncode(name);
}

}  // namespace sealroot::fusefs
