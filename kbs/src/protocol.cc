#include "kbs/protocol.h"

#include <openssl/evp.h>

#include "base/encoding.h"
#include "local-attest/p256.h"

namespace sealroot::kbs {
namespace {

using nlohmann::json;
constexpr char kAlg[] = "ECDH-ES+A256KW";
constexpr char kEnc[] = "A256GCM";

bool ValidPart(std::string_view part) {
  if (part.empty() || part == "." || part == ".." || part.size() > 255) return false;
  for (char c : part) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::vector<std::uint8_t>> B64UrlMember(const json& j, const char* name, std::size_t size) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string())
    return InvalidArgument(std::string("JWK/JWE: missing \"") + name + "\"");
  auto bytes = Base64UrlDecode(it->get_ref<const std::string&>());
  if (!bytes.ok() || (size != 0 && bytes->size() != size)) {
    return InvalidArgument(std::string("JWK/JWE: \"") + name + "\" is not base64url of the right size");
  }
  return bytes;
}

Result<EvpPkeyPtr> KeyFromJwk(const json& jwk) {
  SR_RETURN_IF_ERROR(ValidateTeePubkey(jwk));
  SR_ASSIGN_OR_RETURN(auto x, B64UrlMember(jwk, "x", 32));
  SR_ASSIGN_OR_RETURN(auto y, B64UrlMember(jwk, "y", 32));
  local_attest::sgx::EcPoint point;
  std::copy(x.begin(), x.end(), point.begin());
  std::copy(y.begin(), y.end(), point.begin() + 32);
  return p256::PublicKey(point);
}

json JwkOf(const local_attest::sgx::EcPoint& point, bool with_alg) {
  json jwk = {{"kty", "EC"},
              {"crv", "P-256"},
              {"x", Base64UrlEncode(std::span(point).first(32))},
              {"y", Base64UrlEncode(std::span(point).subspan(32))}};
  if (with_alg) jwk["alg"] = kAlg;
  return jwk;
}

// RFC 7518 §4.6.2 Concat KDF, one SHA-256 round: a 256-bit key for A256KW, no apu/apv.
SecretBytes ConcatKdf(const SecretBytes& z) {
  Sha256 h;
  const std::uint8_t counter[4] = {0, 0, 0, 1};
  h.Update(counter);
  h.Update(z.span());
  const std::string_view alg(kAlg);
  const std::uint8_t alg_len[4] = {0, 0, 0, static_cast<std::uint8_t>(alg.size())};
  h.Update(alg_len);
  h.Update(alg);
  const std::uint8_t empty_and_bits[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};  // apu, apv, 256 bits
  h.Update(empty_and_bits);
  Sha256Digest d = h.Finish();
  SecretBytes kek(d);
  SecureWipe(d);
  return kek;
}

Result<std::vector<std::uint8_t>> AesKeyWrap(const SecretBytes& kek, std::span<const std::uint8_t> key,
                                             bool wrap) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpensslStatus("AES key wrap");
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  std::vector<std::uint8_t> out(key.size() + 8);
  int len = 0, fin = 0;
  bool ok =
      EVP_CipherInit_ex(ctx.get(), EVP_aes_256_wrap(), nullptr, kek.data(), nullptr, wrap ? 1 : 0) == 1 &&
      EVP_CipherUpdate(ctx.get(), out.data(), &len, key.data(), static_cast<int>(key.size())) == 1 &&
      EVP_CipherFinal_ex(ctx.get(), out.data() + len, &fin) == 1;
  if (!ok) {
    OpensslErrors();
    return DataLoss("JWE: the content key does not unwrap with this key");
  }
  out.resize(static_cast<std::size_t>(len + fin));
  return out;
}

}  // namespace

Result<ResourceId> ResourceId::Parse(std::string_view uri) {
  std::string_view path = uri;
  if (path.starts_with("kbs://")) {
    path.remove_prefix(6);
    std::size_t slash = path.find('/');
    if (slash == std::string_view::npos)
      return InvalidArgument("resource URI without a path: " + std::string(uri));
    path.remove_prefix(slash + 1);
  }
  ResourceId id;
  std::string* parts[] = {&id.repository, &id.type, &id.tag};
  for (int i = 0; i < 3; ++i) {
    std::size_t slash = path.find('/');
    std::string_view part = i < 2 ? path.substr(0, slash) : path;
    if ((i < 2 && slash == std::string_view::npos) || !ValidPart(part)) {
      return InvalidArgument("not a KBS resource id (<repository>/<type>/<tag>): " + std::string(uri));
    }
    *parts[i] = std::string(part);
    if (i < 2) path.remove_prefix(slash + 1);
  }
  return id;
}

std::string CanonicalJson(const json& value) {
  return value.dump();
}

local_attest::sgx::ReportData RuntimeDataBinding(std::string_view nonce, const json& tee_pubkey) {
  json runtime = {{"additional-evidence", ""}, {"nonce", nonce}, {"tee-pubkey", tee_pubkey}};
  std::string canonical = CanonicalJson(runtime);
  local_attest::sgx::ReportData out{};
  unsigned int len = 0;
  EVP_Digest(canonical.data(), canonical.size(), out.data(), &len, EVP_sha384(), nullptr);
  return out;  // 48 bytes of SHA-384, then zeros
}

Status ValidateTeePubkey(const json& jwk) {
  if (!jwk.is_object()) return InvalidArgument("tee-pubkey is not a JWK object");
  if (jwk.value("kty", "") != "EC" || jwk.value("crv", "") != "P-256") {
    return InvalidArgument("tee-pubkey: only EC P-256 keys (ECDH-ES+A256KW) are supported");
  }
  if (auto alg = jwk.find("alg"); alg != jwk.end() && *alg != kAlg) {
    return InvalidArgument("tee-pubkey: unsupported alg (only ECDH-ES+A256KW)");
  }
  return OkStatus();
}

Result<TeeKey> TeeKey::Generate() {
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr key, p256::GenerateKey());
  SR_ASSIGN_OR_RETURN(local_attest::sgx::EcPoint point, p256::PointOf(key.get()));
  return TeeKey(std::move(key), JwkOf(point, true));
}

Result<std::string> SealToTeeKey(const json& tee_pubkey, std::span<const std::uint8_t> plaintext) {
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr peer, KeyFromJwk(tee_pubkey));
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr ephemeral, p256::GenerateKey());
  SR_ASSIGN_OR_RETURN(local_attest::sgx::EcPoint epk, p256::PointOf(ephemeral.get()));
  SR_ASSIGN_OR_RETURN(SecretBytes z, p256::Ecdh(ephemeral.get(), peer.get()));
  SecretBytes kek = ConcatKdf(z);
  SecretBytes cek(32);
  RandomBytes(cek.span());
  SR_ASSIGN_OR_RETURN(auto wrapped, AesKeyWrap(kek, cek.span(), true));
  json header = {{"alg", kAlg}, {"enc", kEnc}, {"epk", JwkOf(epk, false)}};
  std::string protected_b64 = Base64UrlEncode(AsBytes(header.dump()));
  std::array<std::uint8_t, 12> iv;
  RandomBytes(iv);
  SR_ASSIGN_OR_RETURN(auto sealed, AesGcmSeal(cek.span(), iv, AsBytes(protected_b64), plaintext));
  std::span<const std::uint8_t> all(sealed);
  json jwe = {{"protected", protected_b64},
              {"encrypted_key", Base64UrlEncode(wrapped)},
              {"iv", Base64UrlEncode(iv)},
              {"ciphertext", Base64UrlEncode(all.first(all.size() - 16))},
              {"tag", Base64UrlEncode(all.last(16))}};
  return jwe.dump();
}

Result<SecretBytes> TeeKey::Open(std::string_view jwe_json) const {
  json jwe = json::parse(jwe_json, nullptr, false);
  if (jwe.is_discarded() || !jwe.is_object()) return InvalidArgument("KBS response: not a JWE JSON object");
  auto prot = jwe.find("protected");
  if (prot == jwe.end() || !prot->is_string()) return InvalidArgument("KBS response: missing \"protected\"");
  const std::string& protected_b64 = prot->get_ref<const std::string&>();
  SR_ASSIGN_OR_RETURN(auto header_bytes, B64UrlMember(jwe, "protected", 0));
  json header = json::parse(AsChars(header_bytes), nullptr, false);
  if (header.is_discarded() || !header.is_object())
    return InvalidArgument("KBS response: bad protected header");
  if (header.value("alg", "") != kAlg || header.value("enc", "") != kEnc) {
    return InvalidArgument("KBS response: only ECDH-ES+A256KW with A256GCM is accepted");
  }
  if (header.contains("zip") || header.contains("crit"))
    return InvalidArgument("KBS response: zip/crit refused");
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr epk, KeyFromJwk(header.value("epk", json())));
  SR_ASSIGN_OR_RETURN(SecretBytes z, p256::Ecdh(key_.get(), epk.get()));
  SecretBytes kek = ConcatKdf(z);
  SR_ASSIGN_OR_RETURN(auto wrapped, B64UrlMember(jwe, "encrypted_key", 40));
  SR_ASSIGN_OR_RETURN(auto cek_bytes, AesKeyWrap(kek, wrapped, false));
  SecretBytes cek(cek_bytes);
  SecureWipe(cek_bytes);
  SR_ASSIGN_OR_RETURN(auto iv, B64UrlMember(jwe, "iv", 12));
  SR_ASSIGN_OR_RETURN(auto ciphertext, B64UrlMember(jwe, "ciphertext", 0));
  SR_ASSIGN_OR_RETURN(auto tag, B64UrlMember(jwe, "tag", 16));
  ciphertext.insert(ciphertext.end(), tag.begin(), tag.end());
  // The AAD is the encoded protected header (and "." + aad when present, RFC 7516 §5.1).
  std::string aad = protected_b64;
  if (auto extra = jwe.find("aad"); extra != jwe.end()) {
    if (!extra->is_string()) return InvalidArgument("KBS response: \"aad\" is not a string");
    aad += "." + extra->get<std::string>();
  }
  Result<SecretBytes> plain = AesGcmOpen(cek.span(), iv, AsBytes(aad), ciphertext);
  if (!plain.ok()) return DataLoss("KBS response: content authentication failed");
  return plain;
}

}  // namespace sealroot::kbs
