#include "image/manifest.h"

#include <sys/utsname.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/crypto.h"

namespace sealroot::image {
namespace {

using nlohmann::json;

Result<json> ParseObject(std::string_view text, std::string_view what) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument(std::string(what) + ": not valid JSON");
  if (!doc.is_object()) return InvalidArgument(std::string(what) + ": not a JSON object");
  return doc;
}

Result<std::string> OptionalString(const json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return InvalidArgument(std::string(what) + ": \"" + key + "\" is not a string");
  return it->get<std::string>();
}

Result<std::map<std::string, std::string>> ParseAnnotations(const json& obj, std::string_view what) {
  std::map<std::string, std::string> out;
  auto it = obj.find("annotations");
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) return InvalidArgument(std::string(what) + ": annotations is not an object");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string())
      return InvalidArgument(std::string(what) + ": annotation '" + k + "' is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

Result<Descriptor> ParseDescriptor(const json& obj, std::string_view what) {
  if (!obj.is_object()) return InvalidArgument(std::string(what) + ": descriptor is not an object");
  SR_ASSIGN_OR_RETURN(std::string media_type, OptionalString(obj, "mediaType", what));
  SR_ASSIGN_OR_RETURN(std::string digest_text, OptionalString(obj, "digest", what));
  auto parsed = Digest::Parse(digest_text);
  if (!parsed.ok()) return std::move(parsed).status().WithContext(what);
  Digest digest = *std::move(parsed);
  auto size = obj.find("size");
  if (size == obj.end() || !size->is_number_integer() || size->get<std::int64_t>() < 0) {
    return InvalidArgument(std::string(what) + " " + digest.str() + ": missing or negative size");
  }
  SR_ASSIGN_OR_RETURN(auto annotations, ParseAnnotations(obj, what));
  return Descriptor{std::move(media_type), std::move(digest), size->get<std::int64_t>(),
                    std::move(annotations)};
}

Status CheckSchema(const json& doc, std::string_view what) {
  auto v = doc.find("schemaVersion");
  if (v == doc.end() || !v->is_number_integer() || v->get<int>() != 2) {
    return InvalidArgument(std::string(what) + ": unsupported schemaVersion (want 2)");
  }
  return OkStatus();
}

Status CheckMediaType(const json& doc, std::string_view expected, std::string_view what) {
  SR_ASSIGN_OR_RETURN(std::string body_type, OptionalString(doc, "mediaType", what));
  if (!body_type.empty() && !expected.empty() && body_type != expected) {
    return InvalidArgument(std::string(what) + ": body mediaType '" + body_type + "' disagrees with '" +
                           std::string(expected) + "'");
  }
  return OkStatus();
}

}  // namespace

bool IsIndexMediaType(std::string_view t) {
  return t == kOciIndex || t == kDockerManifestList;
}
bool IsManifestMediaType(std::string_view t) {
  return t == kOciManifest || t == kDockerManifest;
}

Result<Platform> Platform::Parse(std::string_view text) {
  Platform p;
  std::size_t a = text.find('/');
  if (a == std::string_view::npos || a == 0)
    return InvalidArgument("platform '" + std::string(text) + "': want os/arch[/variant]");
  p.os = std::string(text.substr(0, a));
  std::string_view rest = text.substr(a + 1);
  std::size_t b = rest.find('/');
  p.architecture = std::string(rest.substr(0, b));
  if (b != std::string_view::npos) p.variant = std::string(rest.substr(b + 1));
  if (p.architecture.empty() || p.variant.find('/') != std::string::npos) {
    return InvalidArgument("platform '" + std::string(text) + "': want os/arch[/variant]");
  }
  return p;
}

Platform Platform::Host() {
  utsname u{};
  ::uname(&u);
  std::string_view m = u.machine;
  Platform p{"linux", std::string(m), ""};
  if (m == "x86_64") p.architecture = "amd64";
  if (m == "aarch64") p = {"linux", "arm64", "v8"};
  if (m == "i686" || m == "i386") p.architecture = "386";
  if (m.starts_with("armv7")) p = {"linux", "arm", "v7"};
  return p;
}

std::string Platform::ToString() const {
  return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
}

Result<std::string> DetectManifestMediaType(std::string_view text, std::string_view transport_type) {
  SR_ASSIGN_OR_RETURN(json doc, ParseObject(text, "manifest"));
  SR_ASSIGN_OR_RETURN(std::string body_type, OptionalString(doc, "mediaType", "manifest"));
  if (!transport_type.empty() && transport_type != "application/json" && transport_type != "text/plain") {
    SR_RETURN_IF_ERROR(CheckMediaType(doc, transport_type, "manifest"));
    return std::string(transport_type);
  }
  if (!body_type.empty()) return body_type;
  if (doc.contains("manifests")) return std::string(kOciIndex);
  if (doc.contains("layers")) return std::string(kOciManifest);
  return InvalidArgument("manifest: cannot tell its media type (no mediaType, layers or manifests)");
}

Result<Manifest> ParseManifest(std::string_view text, std::string_view media_type) {
  SR_ASSIGN_OR_RETURN(json doc, ParseObject(text, "manifest"));
  SR_RETURN_IF_ERROR(CheckSchema(doc, "manifest"));
  SR_RETURN_IF_ERROR(CheckMediaType(doc, media_type, "manifest"));
  SR_ASSIGN_OR_RETURN(std::string type, OptionalString(doc, "mediaType", "manifest"));
  if (type.empty()) type = media_type.empty() ? std::string(kOciManifest) : std::string(media_type);
  if (!IsManifestMediaType(type)) return InvalidArgument("manifest: unsupported media type '" + type + "'");
  auto config = doc.find("config");
  if (config == doc.end()) return InvalidArgument("manifest: no config descriptor");
  SR_ASSIGN_OR_RETURN(Descriptor config_desc, ParseDescriptor(*config, "manifest config"));
  Manifest m{std::move(type), std::move(config_desc), {}, {}};
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array())
    return InvalidArgument("manifest: \"layers\" is not an array");
  for (std::size_t i = 0; i < layers->size(); ++i) {
    SR_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*layers)[i], "manifest layer " + std::to_string(i)));
    m.layers.push_back(std::move(d));
  }
  SR_ASSIGN_OR_RETURN(m.annotations, ParseAnnotations(doc, "manifest"));
  return m;
}

Result<Index> ParseIndex(std::string_view text, std::string_view media_type) {
  SR_ASSIGN_OR_RETURN(json doc, ParseObject(text, "index"));
  SR_RETURN_IF_ERROR(CheckSchema(doc, "index"));
  SR_RETURN_IF_ERROR(CheckMediaType(doc, media_type, "index"));
  Index index;
  SR_ASSIGN_OR_RETURN(index.media_type, OptionalString(doc, "mediaType", "index"));
  if (index.media_type.empty())
    index.media_type = media_type.empty() ? std::string(kOciIndex) : std::string(media_type);
  if (!IsIndexMediaType(index.media_type))
    return InvalidArgument("index: unsupported media type '" + index.media_type + "'");
  auto manifests = doc.find("manifests");
  if (manifests == doc.end() || !manifests->is_array())
    return InvalidArgument("index: \"manifests\" is not an array");
  for (std::size_t i = 0; i < manifests->size(); ++i) {
    const json& item = (*manifests)[i];
    std::string what = "index entry " + std::to_string(i);
    SR_ASSIGN_OR_RETURN(Descriptor descriptor, ParseDescriptor(item, what));
    IndexEntry entry{std::move(descriptor), std::nullopt};
    if (auto p = item.find("platform"); p != item.end() && !p->is_null()) {
      if (!p->is_object()) return InvalidArgument(what + ": platform is not an object");
      Platform platform;
      SR_ASSIGN_OR_RETURN(platform.os, OptionalString(*p, "os", what));
      SR_ASSIGN_OR_RETURN(platform.architecture, OptionalString(*p, "architecture", what));
      SR_ASSIGN_OR_RETURN(platform.variant, OptionalString(*p, "variant", what));
      entry.platform = std::move(platform);
    }
    index.manifests.push_back(std::move(entry));
  }
  SR_ASSIGN_OR_RETURN(index.annotations, ParseAnnotations(doc, "index"));
  return index;
}

Result<Descriptor> SelectPlatform(const Index& index, const Platform& want) {
  // Compatible variants, best first, as containers/image matches them: arm64 is v8 (or
  // unnamed); arm with no variant means v7, and a vN host also runs older variants.
  std::vector<std::string> variants = {want.variant};
  if (want.architecture == "arm64" && (want.variant.empty() || want.variant == "v8")) variants = {"v8", ""};
  if (want.architecture == "arm") {
    const std::vector<std::string> arm = {"v7", "v6", "v5"};
    auto from = std::find(arm.begin(), arm.end(), want.variant.empty() ? "v7" : want.variant);
    if (from != arm.end()) {
      variants.assign(from, arm.end());
      variants.emplace_back("");
    }
  }
  for (const std::string& variant : variants) {
    for (const IndexEntry& e : index.manifests) {
      if (!e.platform || !IsManifestMediaType(e.descriptor.media_type)) continue;
      const Platform& p = *e.platform;
      if (p.os == want.os && p.architecture == want.architecture && p.variant == variant) return e.descriptor;
    }
  }
  std::string offered;
  for (const IndexEntry& e : index.manifests) {
    if (e.platform) offered += (offered.empty() ? "" : ", ") + e.platform->ToString();
  }
  return NotFound("no manifest for platform " + want.ToString() +
                  " in the index (it offers: " + (offered.empty() ? "none" : offered) + ")");
}

Digest ChainId(const std::vector<Digest>& diff_ids) {
  std::string chain = diff_ids.front().str();
  for (std::size_t i = 1; i < diff_ids.size(); ++i) {
    chain = Digest::FromSha256(Sha256Of(chain + " " + diff_ids[i].str())).str();
  }
  return *Digest::Parse(chain);
}

}  // namespace sealroot::image
