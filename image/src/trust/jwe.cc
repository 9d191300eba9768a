#include "image/src/trust/jwe.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

#include "base/encoding.h"

namespace sealroot::image::trust {
namespace {

using nlohmann::json;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter<OSSL_PARAM_free>>;

struct Recipient {
  json header;  // protected + shared unprotected + per-recipient header, merged
  std::vector<std::uint8_t> encrypted_key;
};

struct ParsedJwe {
  std::string protected_b64;  // the AAD is computed over the encoded form
  std::vector<Recipient> recipients;
  std::vector<std::uint8_t> iv, ciphertext, tag, aad;
  bool has_aad = false;
  std::string aad_b64;
};

Result<std::vector<std::uint8_t>> B64Field(const json& j, const char* name, bool required) {
  auto it = j.find(name);
  if (it == j.end()) {
    if (required) return InvalidArgument(std::string("JWE: missing \"") + name + "\"");
    return std::vector<std::uint8_t>{};
  }
  if (!it->is_string()) return InvalidArgument(std::string("JWE: \"") + name + "\" is not a string");
  auto decoded = Base64UrlDecode(it->get_ref<const std::string&>());
  if (!decoded.ok()) return InvalidArgument(std::string("JWE: \"") + name + "\" is not base64url");
  return decoded;
}

// Merges JOSE header objects; RFC 7516 §7.2.1 requires their member names to be disjoint.
Status MergeHeader(json& into, const json& from, const char* what) {
  if (from.is_null()) return OkStatus();
  if (!from.is_object()) return InvalidArgument(std::string("JWE: ") + what + " is not an object");
  for (auto& [k, v] : from.items()) {
    if (into.contains(k)) return InvalidArgument("JWE: header parameter \"" + k + "\" appears twice");
    into[k] = v;
  }
  return OkStatus();
}

Result<ParsedJwe> Parse(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("JWE: not a JSON object");
  ParsedJwe out;
  json shared = json::object();
  if (auto it = j.find("protected"); it != j.end()) {
    if (!it->is_string()) return InvalidArgument("JWE: \"protected\" is not a string");
    out.protected_b64 = it->get<std::string>();
    SR_ASSIGN_OR_RETURN(auto raw, B64Field(j, "protected", true));
    json prot = json::parse(AsChars(raw), nullptr, false);
    if (prot.is_discarded()) return InvalidArgument("JWE: protected header is not JSON");
    SR_RETURN_IF_ERROR(MergeHeader(shared, prot, "protected header"));
  }
  SR_RETURN_IF_ERROR(MergeHeader(shared, j.value("unprotected", json()), "unprotected header"));
  auto add_recipient = [&](const json& r) -> Status {
    if (!r.is_object()) return InvalidArgument("JWE: a recipient is not an object");
    Recipient rec{shared, {}};
    SR_RETURN_IF_ERROR(MergeHeader(rec.header, r.value("header", json()), "recipient header"));
    SR_ASSIGN_OR_RETURN(rec.encrypted_key, B64Field(r, "encrypted_key", false));
    out.recipients.push_back(std::move(rec));
    return OkStatus();
  };
  if (auto it = j.find("recipients"); it != j.end()) {
    if (!it->is_array() || it->empty())
      return InvalidArgument("JWE: \"recipients\" is not a non-empty array");
    for (const json& r : *it) SR_RETURN_IF_ERROR(add_recipient(r));
  } else {
    SR_RETURN_IF_ERROR(add_recipient(j));
  }
  SR_ASSIGN_OR_RETURN(out.iv, B64Field(j, "iv", true));
  SR_ASSIGN_OR_RETURN(out.ciphertext, B64Field(j, "ciphertext", true));
  SR_ASSIGN_OR_RETURN(out.tag, B64Field(j, "tag", true));
  if (j.contains("aad")) {
    out.has_aad = true;
    out.aad_b64 = j["aad"].is_string() ? j["aad"].get<std::string>() : "";
  }
  return out;
}

std::string HeaderString(const json& header, const char* name) {
  auto it = header.find(name);
  return it != header.end() && it->is_string() ? it->get<std::string>() : "";
}

Result<SecretBytes> RsaOaepUnwrap(EVP_PKEY* key, const EVP_MD* md, std::span<const std::uint8_t> wrapped) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) != 1) {
    return OpensslStatus("RSA-OAEP setup");
  }
  std::size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, wrapped.data(), wrapped.size()) != 1) {
    return OpensslStatus("RSA-OAEP", Code::kNotFound);
  }
  SecretBytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, wrapped.data(), wrapped.size()) != 1) {
    OpensslErrors();
    return NotFound("RSA-OAEP: this key does not unwrap the content key");
  }
  return SecretBytes(out.span().first(len));
}

// The ephemeral public key from the "epk" JWK, on the same curve as `ours`.
Result<EvpPkeyPtr> EphemeralKey(const json& epk, EVP_PKEY* ours) {
  if (!epk.is_object() || HeaderString(epk, "kty") != "EC")
    return InvalidArgument("JWE: \"epk\" is not an EC JWK");
  std::string crv = HeaderString(epk, "crv");
  const char* group = crv == "P-256"   ? "prime256v1"
                      : crv == "P-384" ? "secp384r1"
                      : crv == "P-521" ? "secp521r1"
                                       : nullptr;
  if (group == nullptr) return InvalidArgument("JWE: unsupported epk curve \"" + crv + "\"");
  char our_group[64] = {};
  if (EVP_PKEY_get_utf8_string_param(ours, OSSL_PKEY_PARAM_GROUP_NAME, our_group, sizeof our_group,
                                     nullptr) != 1 ||
      OBJ_txt2nid(our_group) != OBJ_txt2nid(group)) {
    return NotFound("JWE: the key is on another curve");
  }
  SR_ASSIGN_OR_RETURN(auto x, B64Field(epk, "x", true));
  SR_ASSIGN_OR_RETURN(auto y, B64Field(epk, "y", true));
  std::size_t field = (EVP_PKEY_get_bits(ours) + 7) / 8;
  if (x.size() != field || y.size() != field)
    return InvalidArgument("JWE: epk coordinates have the wrong size");
  std::vector<std::uint8_t> point{0x04};
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    return OpensslStatus("JWE: building epk");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpensslStatus("JWE: epk is not a point on " + crv, Code::kInvalidArgument);
  }
  EvpPkeyPtr peer(raw);
  // Against invalid-curve attacks: coordinates in range, on the curve, not the point at infinity.
  // The NIST curves' cofactor is 1, so that makes it a point of the group, without the full
  // check's scalar multiplication by the order.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new(peer.get(), nullptr));
  if (!check || EVP_PKEY_public_check_quick(check.get()) != 1) {
    return OpensslStatus("JWE: epk is not a valid public key", Code::kInvalidArgument);
  }
  return peer;
}

void PutLengthPrefixed(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> data) {
  std::uint32_t n = static_cast<std::uint32_t>(data.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(n >> shift));
  out.insert(out.end(), data.begin(), data.end());
}

// ECDH-ES key agreement then the Concat KDF of RFC 7518 §4.6.2 (one SHA-256 round suffices for
// keys up to 256 bits), giving the AES key-wrapping key.
Result<SecretBytes> EcdhKek(EVP_PKEY* ours, const json& header, const std::string& alg,
                            std::size_t kek_size) {
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr peer, EphemeralKey(header.value("epk", json()), ours));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(ours, nullptr));
  std::size_t zlen = 0;
  constexpr int kPeerChecked = 0;  // by EphemeralKey
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), kPeerChecked) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &zlen) != 1) {
    return OpensslStatus("JWE: ECDH");
  }
  SecretBytes z(zlen);
  if (EVP_PKEY_derive(ctx.get(), z.data(), &zlen) != 1) return OpensslStatus("JWE: ECDH");
  SR_ASSIGN_OR_RETURN(auto apu, B64Field(header, "apu", false));
  SR_ASSIGN_OR_RETURN(auto apv, B64Field(header, "apv", false));
  std::vector<std::uint8_t> info;
  PutLengthPrefixed(info, AsBytes(alg));
  PutLengthPrefixed(info, apu);
  PutLengthPrefixed(info, apv);
  std::uint32_t bits = static_cast<std::uint32_t>(kek_size * 8);
  for (int shift = 24; shift >= 0; shift -= 8) info.push_back(static_cast<std::uint8_t>(bits >> shift));
  Sha256 h;
  const std::uint8_t counter[4] = {0, 0, 0, 1};
  h.Update(counter);
  h.Update(z.span().first(zlen));
  h.Update(info);
  Sha256Digest d = h.Finish();
  SecretBytes kek(std::span<const std::uint8_t>(d).first(kek_size));
  SecureWipe(d);
  return kek;
}

// RFC 3394 AES key unwrap; its integrity check tells a wrong key apart.
Result<SecretBytes> AesKeyUnwrap(std::span<const std::uint8_t> kek, std::span<const std::uint8_t> wrapped) {
  const EVP_CIPHER* cipher = kek.size() == 16   ? EVP_aes_128_wrap()
                             : kek.size() == 24 ? EVP_aes_192_wrap()
                                                : EVP_aes_256_wrap();
  if (wrapped.size() < 24 || wrapped.size() % 8 != 0)
    return InvalidArgument("JWE: wrapped key has a bad size");
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpensslStatus("AES key unwrap");
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  SecretBytes out(wrapped.size());
  int len = 0, fin = 0;
  if (EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, kek.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, wrapped.data(), static_cast<int>(wrapped.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &fin) != 1) {
    OpensslErrors();
    return NotFound("JWE: this key does not unwrap the content key");
  }
  return SecretBytes(out.span().first(static_cast<std::size_t>(len + fin)));
}

// The content-encryption key of `r` under `key`, or kNotFound if the key does not fit.
Result<SecretBytes> UnwrapCek(const Recipient& r, const PrivateKey& key) {
  std::string alg = HeaderString(r.header, "alg");
  int type = EVP_PKEY_get_base_id(key.key.get());
  if (alg == "RSA-OAEP" || alg == "RSA-OAEP-256") {
    if (type != EVP_PKEY_RSA) return NotFound("JWE: not an RSA key");
    return RsaOaepUnwrap(key.key.get(), alg == "RSA-OAEP" ? EVP_sha1() : EVP_sha256(), r.encrypted_key);
  }
  std::size_t kek_size = alg == "ECDH-ES+A128KW"   ? 16
                         : alg == "ECDH-ES+A192KW" ? 24
                         : alg == "ECDH-ES+A256KW" ? 32
                                                   : 0;
  if (kek_size == 0) return InvalidArgument("JWE: unsupported key management algorithm \"" + alg + "\"");
  if (type != EVP_PKEY_EC) return NotFound("JWE: not an EC key");
  SR_ASSIGN_OR_RETURN(SecretBytes kek, EcdhKek(key.key.get(), r.header, alg, kek_size));
  return AesKeyUnwrap(kek.span(), r.encrypted_key);
}

Result<SecretBytes> OpenContent(const ParsedJwe& jwe, const SecretBytes& cek) {
  if (cek.size() != 32) return InvalidArgument("JWE: A256GCM needs a 32-byte content key");
  if (jwe.iv.size() != 12 || jwe.tag.size() != 16)
    return InvalidArgument("JWE: A256GCM needs a 96-bit iv and 128-bit tag");
  std::string aad = jwe.protected_b64;
  if (jwe.has_aad) aad += "." + jwe.aad_b64;
  std::vector<std::uint8_t> sealed(jwe.ciphertext);
  sealed.insert(sealed.end(), jwe.tag.begin(), jwe.tag.end());
  Result<SecretBytes> plain = AesGcmOpen(cek.span(), jwe.iv, AsBytes(aad), sealed);
  if (!plain.ok()) return DataLoss("JWE: content authentication failed");
  return plain;
}

Status CheckSupported(const json& header) {
  if (header.contains("zip")) return InvalidArgument("JWE: compressed content (\"zip\") is not supported");
  if (header.contains("crit")) return InvalidArgument("JWE: critical header extensions are not supported");
  if (std::string enc = HeaderString(header, "enc"); enc != "A256GCM") {
    return InvalidArgument("JWE: unsupported content encryption \"" + enc + "\" (ocicrypt uses A256GCM)");
  }
  return OkStatus();
}

}  // namespace

Result<SecretBytes> JweDecrypt(std::string_view jwe_json, std::span<const PrivateKey> keys) {
  SR_ASSIGN_OR_RETURN(ParsedJwe jwe, Parse(jwe_json));
  for (const Recipient& r : jwe.recipients) {
    SR_RETURN_IF_ERROR(CheckSupported(r.header));
    for (const PrivateKey& key : keys) {
      Result<SecretBytes> cek = UnwrapCek(r, key);
      if (cek.status().code() == Code::kNotFound) continue;
      if (!cek.ok()) return std::move(cek).status();
      // A wrong key can pass RSA-OAEP only by chance; the GCM tag decides.
      Result<SecretBytes> plain = OpenContent(jwe, *cek);
      if (plain.ok()) return plain;
      if (plain.status().code() != Code::kDataLoss) return plain;
    }
  }
  return NotFound("no decryption key unwraps this JWE");
}

Result<std::vector<std::string>> JweRecipients(std::string_view jwe_json) {
  SR_ASSIGN_OR_RETURN(ParsedJwe jwe, Parse(jwe_json));
  std::vector<std::string> out;
  for (const Recipient& r : jwe.recipients) {
    std::string alg = HeaderString(r.header, "alg");
    if (auto epk = r.header.find("epk"); epk != r.header.end() && epk->is_object()) {
      alg += " " + HeaderString(*epk, "crv");
    }
    if (std::string kid = HeaderString(r.header, "kid"); !kid.empty()) alg += " kid=" + kid;
    out.push_back(alg);
  }
  return out;
}

}  // namespace sealroot::image::trust
