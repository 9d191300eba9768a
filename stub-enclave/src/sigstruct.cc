#include "stub-enclave/sigstruct.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace sealroot::stub_enclave {
namespace {

constexpr std::array<std::uint8_t, 12> kHeader = {0x06, 0x00, 0x00, 0x00, 0xe1, 0x00,
                                                  0x00, 0x00, 0x00, 0x00, 0x01, 0x00};
constexpr std::array<std::uint8_t, 16> kHeader2 = {0x01, 0x01, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00,
                                                   0x60, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
constexpr std::uint32_t kTypeDebug = 0x80000000u;
constexpr std::size_t kModulusBytes = 384;

using BnCtxPtr = std::unique_ptr<BN_CTX, OsslDeleter<BN_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter<OSSL_PARAM_free>>;

// The signed bytes: header [0, 128) || body [900, 1028).
std::vector<std::uint8_t> SignedBytes(const local_attest::sgx::Sigstruct& sig) {
  auto all = local_attest::sgx::BytesOf(sig);
  std::vector<std::uint8_t> out(256);
  std::memcpy(out.data(), all.data(), 128);
  std::memcpy(out.data() + 128, all.data() + 900, 128);
  return out;
}

Status CheckKeyShape(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) != 3072) {
    return InvalidArgument("enclave signing key must be RSA-3072");
  }
  BIGNUM* e = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) <= 0)
    return OpensslStatus("reading the RSA exponent");
  BignumPtr owned(e);
  if (!BN_is_word(e, 3)) return InvalidArgument("enclave signing key must have public exponent 3");
  return OkStatus();
}

// q1 = floor(s^2 / n), q2 = floor((s^3 - q1*s*n) / n), little-endian (what EINIT checks).
Status ComputeQ(const BIGNUM* s, const BIGNUM* n, std::array<std::uint8_t, 384>& q1_out,
                std::array<std::uint8_t, 384>& q2_out) {
  BnCtxPtr ctx(BN_CTX_new());
  BignumPtr s2(BN_new()), q1(BN_new()), t(BN_new()), q2(BN_new());
  if (!ctx || !s2 || !q1 || !t || !q2 || !BN_mul(s2.get(), s, s, ctx.get()) ||
      !BN_div(q1.get(), nullptr, s2.get(), n, ctx.get()) ||
      !BN_mul(t.get(), s2.get(), s, ctx.get()) ||  // s^3
      !BN_mul(s2.get(), q1.get(), s, ctx.get()) || !BN_mul(s2.get(), s2.get(), n, ctx.get()) ||
      !BN_sub(t.get(), t.get(), s2.get()) || !BN_div(q2.get(), nullptr, t.get(), n, ctx.get()) ||
      BN_bn2lebinpad(q1.get(), q1_out.data(), 384) != 384 ||
      BN_bn2lebinpad(q2.get(), q2_out.data(), 384) != 384) {
    return OpensslStatus("computing SIGSTRUCT q1/q2");
  }
  return OkStatus();
}

std::uint32_t TodayBcd() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  auto bcd = [](unsigned v, int digits) {
    std::uint32_t out = 0;
    for (int i = 0; i < digits; ++i, v /= 10) out |= (v % 10) << (4 * i);
    return out;
  };
  return bcd(static_cast<unsigned>(tm.tm_year + 1900), 4) << 16 |
         bcd(static_cast<unsigned>(tm.tm_mon + 1), 2) << 8 | bcd(static_cast<unsigned>(tm.tm_mday), 2);
}

Result<EvpPkeyPtr> PublicKeyFromModulus(std::span<const std::uint8_t> modulus_le) {
  BignumPtr n(BN_lebin2bn(modulus_le.data(), static_cast<int>(modulus_le.size()), nullptr));
  BignumPtr e(BN_new());
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!n || !e || !bld || !BN_set_word(e.get(), 3) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get())) {
    return OpensslStatus("building the SIGSTRUCT public key");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    return OpensslStatus("building the SIGSTRUCT public key", Code::kInvalidArgument);
  }
  return EvpPkeyPtr(raw);
}

}  // namespace

Result<EvpPkeyPtr> GenerateSigningKey() {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  BignumPtr e(BN_new());
  EVP_PKEY* raw = nullptr;
  if (!ctx || !e || !BN_set_word(e.get(), 3) || EVP_PKEY_keygen_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 3072) <= 0 ||
      EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx.get(), e.get()) <= 0 || EVP_PKEY_keygen(ctx.get(), &raw) <= 0) {
    return OpensslStatus("generating an RSA-3072 (e=3) enclave signing key");
  }
  return EvpPkeyPtr(raw);
}

Result<EvpPkeyPtr> ParseSigningKey(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return OpensslStatus("parsing the enclave signing key (PEM private key)", Code::kInvalidArgument);
  SR_RETURN_IF_ERROR(CheckKeyShape(key.get()));
  return key;
}

Result<std::string> SigningKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) <= 0) {
    return OpensslStatus("writing the enclave signing key");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Result<local_attest::sgx::Sigstruct> SignEnclave(EVP_PKEY* key,
                                                 const local_attest::sgx::Measurement& mr_enclave,
                                                 const SigningParams& params) {
  SR_RETURN_IF_ERROR(CheckKeyShape(key));
  local_attest::sgx::Sigstruct sig;
  sig.header = kHeader;
  sig.type = params.debug ? kTypeDebug : 0;
  sig.date = params.date ? params.date : TodayBcd();
  sig.header2 = kHeader2;
  sig.misc_select = 0;
  sig.misc_mask = 0xffffffffu;
  sig.attributes = {.flags = local_attest::sgx::kFlagMode64Bit | local_attest::sgx::kFlagKss |
                             (params.debug ? local_attest::sgx::kFlagDebug : 0),
                    .xfrm = local_attest::sgx::kXfrmLegacy};
  sig.attribute_mask = {.flags = ~0ull, .xfrm = ~0ull};
  sig.enclave_hash = mr_enclave;
  sig.isv_prod_id = params.isv_prod_id;
  sig.isv_svn = params.isv_svn;
  BIGNUM* n_raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n_raw) <= 0)
    return OpensslStatus("reading the RSA modulus");
  BignumPtr n(n_raw);
  if (BN_bn2lebinpad(n.get(), sig.modulus.data(), kModulusBytes) != kModulusBytes) {
    return Internal("RSA modulus is not 384 bytes");
  }
  sig.exponent = 3;
  std::vector<std::uint8_t> message = SignedBytes(sig);
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  std::array<std::uint8_t, kModulusBytes> be{};
  std::size_t len = be.size();
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key) <= 0 ||
      EVP_DigestSign(md.get(), be.data(), &len, message.data(), message.size()) <= 0 || len != be.size()) {
    return OpensslStatus("signing the SIGSTRUCT");
  }
  std::reverse_copy(be.begin(), be.end(), sig.signature.begin());
  BignumPtr s(BN_bin2bn(be.data(), static_cast<int>(be.size()), nullptr));
  if (!s) return OpensslStatus("signature as a number");
  SR_RETURN_IF_ERROR(ComputeQ(s.get(), n.get(), sig.q1, sig.q2));
  return sig;
}

local_attest::sgx::Measurement MrSignerOf(const local_attest::sgx::Sigstruct& sig) {
  return Sha256Of(sig.modulus);
}

Result<local_attest::sgx::Measurement> VerifySigstruct(const local_attest::sgx::Sigstruct& sig,
                                                       const local_attest::sgx::Measurement& mr_enclave) {
  if (sig.header != kHeader || sig.header2 != kHeader2) return DataLoss("SIGSTRUCT: bad header constants");
  if (sig.exponent != 3) return DataLoss("SIGSTRUCT: exponent is not 3");
  if (((sig.type & kTypeDebug) != 0) != ((sig.attributes.flags & local_attest::sgx::kFlagDebug) != 0)) {
    return DataLoss("SIGSTRUCT: debug type bit and DEBUG attribute disagree");
  }
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr pub, PublicKeyFromModulus(sig.modulus));
  std::array<std::uint8_t, kModulusBytes> be;
  std::reverse_copy(sig.signature.begin(), sig.signature.end(), be.begin());
  std::vector<std::uint8_t> message = SignedBytes(sig);
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  if (!md || EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, pub.get()) <= 0 ||
      EVP_DigestVerify(md.get(), be.data(), be.size(), message.data(), message.size()) != 1) {
    OpensslErrors();
    return DataLoss("SIGSTRUCT: RSA signature does not verify");
  }
  BignumPtr s(BN_bin2bn(be.data(), static_cast<int>(be.size()), nullptr));
  BignumPtr n(BN_lebin2bn(sig.modulus.data(), kModulusBytes, nullptr));
  std::array<std::uint8_t, 384> q1{}, q2{};
  if (!s || !n) return OpensslStatus("SIGSTRUCT numbers");
  SR_RETURN_IF_ERROR(ComputeQ(s.get(), n.get(), q1, q2));
  if (q1 != sig.q1 || q2 != sig.q2) return DataLoss("SIGSTRUCT: q1/q2 do not match the signature");
  if (sig.enclave_hash != mr_enclave) {
    return PermissionDenied("SIGSTRUCT signs another enclave: its ENCLAVEHASH is not the measured MRENCLAVE");
  }
  return MrSignerOf(sig);
}

}  // namespace sealroot::stub_enclave
