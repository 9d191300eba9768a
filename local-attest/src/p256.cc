#include "local-attest/p256.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>

namespace sealroot::p256 {

using local_attest::sgx::EcdsaSignature;
using local_attest::sgx::EcPoint;
namespace {

using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter<OSSL_PARAM_free>>;
using EcGroupPtr = std::unique_ptr<EC_GROUP, OsslDeleter<EC_GROUP_free>>;
using EcPointPtr = std::unique_ptr<EC_POINT, OsslDeleter<EC_POINT_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OsslDeleter<ECDSA_SIG_free>>;
using BnCtxPtr = std::unique_ptr<BN_CTX, OsslDeleter<BN_CTX_free>>;

struct OpensslFree {
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};

Result<EvpPkeyPtr> KeyFromParams(const OSSL_PARAM* params, int selection) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, selection, const_cast<OSSL_PARAM*>(params)) != 1) {
    return OpensslStatus("P-256 key", Code::kDataLoss);
  }
  return EvpPkeyPtr(raw);
}

}  // namespace

Result<EvpPkeyPtr> PublicKey(const EcPoint& point) {
  std::array<std::uint8_t, 65> encoded{0x04};
  std::copy(point.begin(), point.end(), encoded.begin() + 1);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, encoded.data(), encoded.size()) !=
          1) {
    return OpensslStatus("P-256 public key");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return OpensslStatus("P-256 public key");
  Result<EvpPkeyPtr> key = KeyFromParams(params.get(), EVP_PKEY_PUBLIC_KEY);
  if (!key.ok()) return DataLoss("not a point on P-256");
  // Coordinates in range, on the curve, not the point at infinity: with P-256's cofactor of 1 that
  // makes it a point of the group, without the full check's scalar multiplication by the order.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new(key->get(), nullptr));
  if (!check || EVP_PKEY_public_check_quick(check.get()) != 1) {
    OpensslErrors();
    return DataLoss("not a valid P-256 public key");
  }
  return key;
}

Result<EcPoint> PointOf(EVP_PKEY* key) {
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
      EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
    BN_free(x);
    return OpensslStatus("P-256 point");
  }
  BignumPtr bx(x), by(y);
  EcPoint out{};
  if (BN_bn2binpad(bx.get(), out.data(), 32) != 32 || BN_bn2binpad(by.get(), out.data() + 32, 32) != 32) {
    return OpensslStatus("P-256 point");
  }
  return out;
}

bool Verify(EVP_PKEY* key, std::span<const std::uint8_t> data, const EcdsaSignature& signature) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(signature.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(signature.data() + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    OpensslErrors();
    return false;
  }
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return false;
  std::unique_ptr<unsigned char, OpensslFree> der_owner(der);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx.get(), der, static_cast<std::size_t>(der_len), data.data(), data.size()) == 1;
  OpensslErrors();
  return ok;
}

Result<EcdsaSignature> Sign(EVP_PKEY* key, std::span<const std::uint8_t> data) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return OpensslStatus("ECDSA sign");
  }
  std::vector<unsigned char> der(len);
  if (EVP_DigestSign(ctx.get(), der.data(), &len, data.data(), data.size()) != 1) {
    return OpensslStatus("ECDSA sign");
  }
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (!sig) return OpensslStatus("ECDSA signature");
  EcdsaSignature out{};
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + 32, 32) != 32) {
    return OpensslStatus("ECDSA signature");
  }
  return out;
}

Result<EvpPkeyPtr> DeterministicKey(std::string_view seed, std::string_view label) {
  Sha256 h;
  h.Update(seed);
  h.Update(std::string_view("\0", 1));
  h.Update(label);
  Sha256Digest d = h.Finish();
  EcGroupPtr group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  BnCtxPtr bn_ctx(BN_CTX_new());
  BignumPtr priv(BN_bin2bn(d.data(), static_cast<int>(d.size()), nullptr));
  BignumPtr order_minus_one(BN_dup(group ? EC_GROUP_get0_order(group.get()) : nullptr));
  SecureWipe(d);
  if (!group || !bn_ctx || !priv || !order_minus_one || BN_sub_word(order_minus_one.get(), 1) != 1 ||
      BN_mod(priv.get(), priv.get(), order_minus_one.get(), bn_ctx.get()) != 1 ||
      BN_add_word(priv.get(), 1) != 1) {
    return OpensslStatus("deterministic P-256 key");
  }
  EcPointPtr pub(EC_POINT_new(group.get()));
  std::array<std::uint8_t, 65> encoded{};
  if (!pub || EC_POINT_mul(group.get(), pub.get(), priv.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
      EC_POINT_point2oct(group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, encoded.data(),
                         encoded.size(), bn_ctx.get()) != encoded.size()) {
    return OpensslStatus("deterministic P-256 key");
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, encoded.data(), encoded.size()) !=
          1) {
    return OpensslStatus("deterministic P-256 key");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return OpensslStatus("deterministic P-256 key");
  return KeyFromParams(params.get(), EVP_PKEY_KEYPAIR);
}

Result<EvpPkeyPtr> GenerateKey() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpensslStatus("generating a P-256 key");
  return key;
}

Result<SecretBytes> Ecdh(EVP_PKEY* ours, EVP_PKEY* peer) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(ours, nullptr));
  std::size_t len = 0;
  constexpr int kPeerChecked = 0;  // by PublicKey, where every peer key comes from
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer, kPeerChecked) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) {
    return OpensslStatus("ECDH");
  }
  SecretBytes z(len);
  if (EVP_PKEY_derive(ctx.get(), z.data(), &len) != 1 || len != 32) return OpensslStatus("ECDH");
  return z;
}

}  // namespace sealroot::p256
