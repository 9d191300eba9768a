#include "image/src/trust/sigstore.h"

#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"

namespace sealroot::image::trust {
namespace {

using nlohmann::json;
constexpr std::int64_t kMaxPayload = 4 << 20;
constexpr std::size_t kMaxLayers = 128;

Result<std::string> ReadBlob(ImageSource& source, const Descriptor& desc) {
  if (desc.size < 0 || desc.size > kMaxPayload)
    return InvalidArgument("signature payload " + desc.digest.str() + " is too large");
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> reader, source.OpenBlob(desc));
  std::string out(static_cast<std::size_t>(desc.size), '\0');
  std::size_t used = 0;
  for (;;) {
    std::uint8_t tail[1];
    std::span<std::uint8_t> dest =
        used < out.size()
            ? std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(out.data()) + used, out.size() - used)
            : std::span<std::uint8_t>(tail);
    SR_ASSIGN_OR_RETURN(std::size_t n, reader->Read(dest));
    if (n == 0) break;
    if (used >= out.size())
      return DataLoss("signature payload " + desc.digest.str() + " is longer than declared");
    used += n;
  }
  if (used != out.size())
    return DataLoss("signature payload " + desc.digest.str() + " is shorter than declared");
  return out;
}

Result<Descriptor> ParseLayer(const json& layer) {
  if (!layer.is_object()) return InvalidArgument("signature manifest: a layer is not an object");
  std::string media_type = layer.value("mediaType", "");
  if (!layer.contains("digest") || !layer["digest"].is_string())
    return InvalidArgument("signature manifest: layer without digest");
  SR_ASSIGN_OR_RETURN(Digest digest, Digest::Parse(layer["digest"].get<std::string>()));
  if (!layer.contains("size") || !layer["size"].is_number_integer())
    return InvalidArgument("signature manifest: layer without size");
  Descriptor desc{media_type, std::move(digest), layer["size"].get<std::int64_t>(), {}};
  if (auto a = layer.find("annotations"); a != layer.end() && a->is_object()) {
    for (const auto& [k, v] : a->items()) {
      if (v.is_string()) desc.annotations[k] = v.get<std::string>();
    }
  }
  return desc;
}

}  // namespace

std::string SigstoreTag(const Digest& manifest) {
  return "sha256-" + std::string(manifest.hex()) + ".sig";
}

Result<std::vector<SigstoreSignature>> FetchSigstoreSignatures(ImageSource& source, const Digest& manifest) {
  std::string tag = SigstoreTag(manifest);
  Result<ManifestBytes> attachment = source.GetManifest(tag);
  if (attachment.status().code() == Code::kNotFound) return std::vector<SigstoreSignature>{};
  if (!attachment.ok()) return std::move(attachment).status().WithContext("fetching signatures " + tag);
  json j = json::parse(attachment->bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("layers") || !j["layers"].is_array()) {
    return InvalidArgument("signature manifest " + tag + ": not an image manifest");
  }
  if (j["layers"].size() > kMaxLayers)
    return InvalidArgument("signature manifest " + tag + ": too many layers");
  std::vector<SigstoreSignature> out;
  for (const json& layer : j["layers"]) {
    SR_ASSIGN_OR_RETURN(Descriptor desc, ParseLayer(layer));
    if (desc.media_type != kCosignLayerType) continue;
    auto sig = desc.annotations.find(std::string(kCosignSignatureAnnotation));
    if (sig == desc.annotations.end())
      return InvalidArgument("signature " + desc.digest.str() + ": no signature annotation");
    auto bytes = Base64Decode(sig->second);
    if (!bytes.ok()) return InvalidArgument("signature " + desc.digest.str() + ": annotation is not base64");
    SR_ASSIGN_OR_RETURN(std::string payload, ReadBlob(source, desc));
    out.push_back({std::move(payload), std::move(bytes).value()});
  }
  return out;
}

Status VerifySigstoreSignature(EVP_PKEY* key, const SigstoreSignature& signature) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  // Ed25519 signs the message itself (no pre-hash); ECDSA and RSA sign its SHA-256.
  const EVP_MD* md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) != 1) {
    return OpensslStatus("initialising signature verification");
  }
  int ok = EVP_DigestVerify(ctx.get(), signature.signature.data(), signature.signature.size(),
                            reinterpret_cast<const unsigned char*>(signature.payload.data()),
                            signature.payload.size());
  if (ok != 1) {
    OpensslErrors();
    return PermissionDenied("cosign signature does not verify with the policy's key");
  }
  return OkStatus();
}

}  // namespace sealroot::image::trust
