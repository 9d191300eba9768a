#include "image/src/trust/decryptor.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "image/src/trust/jwe.h"
#include "image/src/trust/layer_cipher.h"
#include "image/src/trust/pkcs7.h"

namespace sealroot::image::trust {
namespace {

using nlohmann::json;
constexpr std::string_view kCipher = "AES_256_CTR_HMAC_SHA256";

std::string LayerName(const Descriptor& layer) {
  return "layer " + layer.digest.str();
}

void WipeString(std::string& s) {
  SecureWipe({reinterpret_cast<std::uint8_t*>(s.data()), s.size()});
}

// Wipes every string of a parsed JSON document holding key material.
void WipeJson(json& j) {
  if (j.is_string()) {
    WipeString(j.get_ref<std::string&>());
  } else if (j.is_structured()) {
    for (json& child : j) WipeJson(child);
  }
}

Result<std::vector<std::uint8_t>> B64Member(const json& obj, const char* name, const std::string& what) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return InvalidArgument(what + ": missing \"" + name + "\"");
  auto bytes = Base64Decode(it->get_ref<const std::string&>());
  if (!bytes.ok()) return InvalidArgument(what + ": \"" + name + "\" is not base64");
  return bytes;
}

// Public options: {"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"<b64>","cipheroptions":{}}.
Result<Sha256Digest> ParsePubOpts(const Descriptor& layer) {
  std::string what = LayerName(layer) + ": public options";
  auto it = layer.annotations.find(std::string(kPuboptsAnnotation));
  if (it == layer.annotations.end()) return InvalidArgument(what + ": annotation missing");
  auto raw = Base64Decode(it->second);
  if (!raw.ok()) return InvalidArgument(what + ": not base64");
  json j = json::parse(AsChars(*raw), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(what + ": not a JSON object");
  if (j.value("cipher", "") != kCipher) {
    return InvalidArgument(what + ": unsupported cipher (only " + std::string(kCipher) + ")");
  }
  SR_ASSIGN_OR_RETURN(auto hmac, B64Member(j, "hmac", what));
  if (hmac.size() != 32) return InvalidArgument(what + ": HMAC is not 32 bytes");
  Sha256Digest out;
  std::copy(hmac.begin(), hmac.end(), out.begin());
  return out;
}

// Private options: {"symkey":"<b64>","digest":"sha256:..","cipheroptions":{"nonce":"<b64>"}}.
Result<LayerCipherParams> ParsePrivateOptionsJson(const json& j, const std::string& what) {
  auto digest = j.find("digest");
  if (digest == j.end() || !digest->is_string()) return InvalidArgument(what + ": missing \"digest\"");
  Result<Digest> plaintext_digest = Digest::Parse(digest->get_ref<const std::string&>());
  if (!plaintext_digest.ok()) return InvalidArgument(what + ": invalid \"digest\"");
  LayerCipherParams params{SecretBytes(), {}, {}, std::move(plaintext_digest).value()};
  SR_ASSIGN_OR_RETURN(auto key, B64Member(j, "symkey", what));
  params.key = SecretBytes(key);
  SecureWipe(key);
  auto cipheropts = j.find("cipheroptions");
  if (cipheropts == j.end() || !cipheropts->is_object())
    return InvalidArgument(what + ": missing cipheroptions");
  SR_ASSIGN_OR_RETURN(auto nonce, B64Member(*cipheropts, "nonce", what));
  if (nonce.size() != kLayerNonceSize) return InvalidArgument(what + ": nonce is not 16 bytes");
  std::copy(nonce.begin(), nonce.end(), params.nonce.begin());
  return params;
}

// Private options: {"symkey":"<b64>","digest":"sha256:..","cipheroptions":{"nonce":"<b64>"}}.
Result<LayerCipherParams> ParsePrivateOptions(const Descriptor& layer, const SecretBytes& opts) {
  std::string what = LayerName(layer) + ": private options";
  json j = json::parse(AsChars(opts.span()), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(what + ": not a JSON object");
  Result<LayerCipherParams> params = ParsePrivateOptionsJson(j, what);
  WipeJson(j);
  return params;
}

}  // namespace

Result<std::vector<std::vector<std::uint8_t>>> SplitWrappedKeys(std::string_view annotation) {
  std::vector<std::vector<std::uint8_t>> out;
  while (!annotation.empty()) {
    std::size_t comma = annotation.find(',');
    std::string_view item = annotation.substr(0, comma);
    auto bytes = Base64Decode(item);
    if (!bytes.ok()) return InvalidArgument("wrapped key is not base64");
    out.push_back(std::move(bytes).value());
    if (comma == std::string_view::npos) break;
    annotation.remove_prefix(comma + 1);
  }
  return out;
}

bool OcicryptDecryptor::IsEncrypted(std::string_view media_type) const {
  return media_type.ends_with(kEncryptedSuffix);
}

std::string OcicryptDecryptor::PlaintextMediaType(std::string_view media_type) const {
  if (IsEncrypted(media_type)) media_type.remove_suffix(kEncryptedSuffix.size());
  return std::string(media_type);
}

Result<SecretBytes> OcicryptDecryptor::UnwrapPrivateOptions(const Descriptor& layer) const {
  // Schemes in ocicrypt's order; an unwrap that fails for every key falls through to the next.
  auto try_scheme = [&](std::string_view annotation, auto&& unwrap) -> Result<SecretBytes> {
    auto it = layer.annotations.find(std::string(annotation));
    if (it == layer.annotations.end()) return NotFound("");
    SR_ASSIGN_OR_RETURN(auto blobs, SplitWrappedKeys(it->second));
    Status last = NotFound("");
    for (const auto& blob : blobs) {
      Result<SecretBytes> opts = unwrap(blob);
      if (opts.ok()) return opts;
      last = std::move(opts).status();
      if (last.code() != Code::kNotFound) return last;
    }
    return last;
  };
  auto attempt = [&](Result<SecretBytes> r) -> std::optional<Result<SecretBytes>> {
    if (r.ok() || r.status().code() != Code::kNotFound) return r;
    return std::nullopt;
  };
  if (!keys_.empty()) {
    if (auto r = attempt(
            try_scheme(kJweAnnotation, [&](const auto& b) { return JweDecrypt(AsChars(b), keys_); }))) {
      return *std::move(r);
    }
    if (auto r =
            attempt(try_scheme(kPkcs7Annotation, [&](const auto& b) { return Pkcs7Decrypt(b, keys_); }))) {
      return *std::move(r);
    }
  }
  for (const KeyProvider& provider : providers_) {
    std::string annotation = std::string(kProviderAnnotationPrefix) + provider.name;
    if (auto r =
            attempt(try_scheme(annotation, [&](const auto& b) { return ProviderUnwrap(provider, b); }))) {
      return *std::move(r);
    }
  }
  std::string schemes;
  for (const auto& [name, value] : layer.annotations) {
    if (name.starts_with("org.opencontainers.image.enc.keys.")) schemes += " " + name.substr(34);
  }
  return FailedPrecondition(
      LayerName(layer) + ": no configured decryption key or key provider unwraps its key" +
      (schemes.empty() ? " (the layer carries no wrapped keys)" : " (wrapped for:" + schemes + ")"));
}

Result<std::unique_ptr<Reader>> OcicryptDecryptor::Decrypt(const Descriptor& layer,
                                                           std::unique_ptr<Reader> ciphertext) {
  SR_ASSIGN_OR_RETURN(Sha256Digest hmac, ParsePubOpts(layer));
  SR_ASSIGN_OR_RETURN(SecretBytes opts, UnwrapPrivateOptions(layer));
  SR_ASSIGN_OR_RETURN(LayerCipherParams params, ParsePrivateOptions(layer, opts));
  params.expected_hmac = hmac;
  return MakeDecryptingReader(LayerName(layer), std::move(params), std::move(ciphertext));
}

}  // namespace sealroot::image::trust
