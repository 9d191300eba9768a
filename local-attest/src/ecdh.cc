#include "local-attest/src/ecdh.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <algorithm>

namespace sealroot::local_attest {
namespace {

using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter<OSSL_PARAM_free>>;

constexpr char kGroup[] = "prime256v1";

// SEC1 uncompressed (04 || X be || Y be) <-> SDK little-endian x || y.
PublicKeyLe FromSec1(std::span<const std::uint8_t, 65> point) {
  PublicKeyLe out;
  std::reverse_copy(point.begin() + 1, point.begin() + 33, out.begin());
  std::reverse_copy(point.begin() + 33, point.end(), out.begin() + 32);
  return out;
}
std::array<std::uint8_t, 65> ToSec1(const PublicKeyLe& key) {
  std::array<std::uint8_t, 65> out;
  out[0] = 0x04;
  std::reverse_copy(key.begin(), key.begin() + 32, out.begin() + 1);
  std::reverse_copy(key.begin() + 32, key.end(), out.begin() + 33);
  return out;
}

Result<EvpPkeyPtr> PeerKey(const PublicKeyLe& peer) {
  std::array<std::uint8_t, 65> sec1 = ToSec1(peer);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, kGroup, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, sec1.data(), sec1.size())) {
    return OpensslStatus("building the peer's P-256 key");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    OpensslErrors();  // drop the queue: the reason is the point itself
    return InvalidArgument("peer public key is not a valid P-256 point");
  }
  EvpPkeyPtr key(raw);
  // Coordinates in range, on the curve, not the point at infinity. P-256's cofactor is 1, so
  // every such point has the group's order: the full check's n*Q == O (a scalar multiplication,
  // as costly as the ECDH itself) adds nothing.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check_quick(check.get()) <= 0) {
    OpensslErrors();
    return InvalidArgument("peer public key is not a valid P-256 point");
  }
  return key;
}

}  // namespace

Result<std::unique_ptr<EphemeralKey>> EphemeralKey::Generate() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", kGroup));
  if (!key) return OpensslStatus("generating an ephemeral P-256 key");
  std::array<std::uint8_t, 65> sec1;
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_PUB_KEY, sec1.data(), sec1.size(), &len) <=
          0 ||
      len != sec1.size() || sec1[0] != 0x04) {
    return OpensslStatus("reading the ephemeral P-256 public key");
  }
  return std::make_unique<EphemeralKey>(std::move(key), FromSec1(sec1));
}

Result<SecretBytes> EphemeralKey::SharedSecret(const PublicKeyLe& peer) const {
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr peer_key, PeerKey(peer));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  std::size_t len = 32;
  SecretBytes shared(32);
  constexpr int kPeerChecked = 0;  // by PeerKey: not again
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer_key.get(), kPeerChecked) <= 0 ||
      EVP_PKEY_derive(ctx.get(), shared.data(), &len) <= 0 || len != 32) {
    return OpensslStatus("ECDH with the peer's P-256 key");
  }
  std::reverse(shared.data(), shared.data() + 32);
  return shared;
}

}  // namespace sealroot::local_attest
