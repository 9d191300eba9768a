#include "image/src/trust/policy.h"

#include <openssl/pem.h>

#include <array>
#include <filesystem>

#include "base/encoding.h"
#include "base/file.h"
#include "image/src/trust/simple_signing.h"
#include "image/src/trust/strict_json.h"

namespace sealroot::image::trust {
namespace {

using nlohmann::json;
constexpr std::size_t kMaxKeyFile = 1 << 20;

// Transport names containers/image knows; only the ones sealroot reads get requirements
// evaluated, the others are accepted so a shared policy.json still loads.
constexpr std::array<std::string_view, 11> kKnownTransports = {
    "docker", "oci",    "oci-archive", "dir",    "docker-archive", "docker-daemon", "containers-storage",
    "atomic", "ostree", "sif",         "tarball"};

Result<SignedIdentity> ParseIdentity(const json& j, std::string_view what) {
  SignedIdentity id;
  std::string where = std::string(what) + ".signedIdentity";
  SR_ASSIGN_OR_RETURN(std::string type, StringMember(j, "type", where));
  if (type == "matchExact" || type == "matchRepoDigestOrExact" || type == "matchRepository") {
    SR_RETURN_IF_ERROR(CheckMembers(j, {"type"}, where));
    id.kind = type == "matchExact"        ? SignedIdentity::Kind::kMatchExact
              : type == "matchRepository" ? SignedIdentity::Kind::kMatchRepository
                                          : SignedIdentity::Kind::kMatchRepoDigestOrExact;
  } else if (type == "exactReference") {
    SR_RETURN_IF_ERROR(CheckMembers(j, {"type", "dockerReference"}, where));
    SR_ASSIGN_OR_RETURN(std::string text, StringMember(j, "dockerReference", where));
    SR_ASSIGN_OR_RETURN(DockerRef ref, DockerRef::Parse(text));
    if (ref.NameOnly()) return InvalidArgument(where + ": dockerReference must have a tag or digest");
    id.kind = SignedIdentity::Kind::kExactReference;
    id.reference = std::move(ref);
  } else if (type == "exactRepository") {
    SR_RETURN_IF_ERROR(CheckMembers(j, {"type", "dockerRepository"}, where));
    SR_ASSIGN_OR_RETURN(std::string text, StringMember(j, "dockerRepository", where));
    SR_ASSIGN_OR_RETURN(DockerRef ref, DockerRef::Parse(text));
    if (!ref.NameOnly()) return InvalidArgument(where + ": dockerRepository must not have a tag or digest");
    id.kind = SignedIdentity::Kind::kExactRepository;
    id.reference = std::move(ref);
  } else if (type == "remapIdentity") {
    SR_RETURN_IF_ERROR(CheckMembers(j, {"type", "prefix", "signedPrefix"}, where));
    SR_ASSIGN_OR_RETURN(id.prefix, StringMember(j, "prefix", where));
    SR_ASSIGN_OR_RETURN(id.signed_prefix, StringMember(j, "signedPrefix", where));
    SR_RETURN_IF_ERROR(ValidateRemapPrefix(id.prefix, where + ".prefix"));
    SR_RETURN_IF_ERROR(ValidateRemapPrefix(id.signed_prefix, where + ".signedPrefix"));
    id.kind = SignedIdentity::Kind::kRemapIdentity;
  } else {
    return InvalidArgument(where + ": unknown type \"" + type + "\"");
  }
  return id;
}

Result<std::string> ReadKeyFile(const json& path, const std::string& what) {
  if (!path.is_string() || path.get_ref<const std::string&>().empty()) {
    return InvalidArgument(what + ": key paths must be non-empty strings");
  }
  Result<std::string> data = ReadFile(path.get<std::string>(), kMaxKeyFile);
  if (!data.ok()) return std::move(data).status().WithContext(what + ": reading " + path.get<std::string>());
  return data;
}

Result<std::string> DecodeKeyData(const json& data, const std::string& what) {
  if (!data.is_string()) return InvalidArgument(what + ": keyData is not a string");
  auto bytes = Base64Decode(data.get_ref<const std::string&>());
  if (!bytes.ok() || bytes->empty()) return InvalidArgument(what + ": keyData is not non-empty base64");
  return std::string(AsChars(*bytes));
}

Status ParseSignedBy(const json& j, const std::string& what, Requirement& req) {
  SR_RETURN_IF_ERROR(
      CheckMembers(j, {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"}, what));
  SR_ASSIGN_OR_RETURN(std::string key_type, StringMember(j, "keyType", what));
  if (key_type != "GPGKeys") {
    return InvalidArgument(what + ": keyType \"" + key_type + "\" is not supported (only GPGKeys)");
  }
  int sources = j.contains("keyPath") + j.contains("keyPaths") + j.contains("keyData");
  if (sources != 1)
    return InvalidArgument(what + ": exactly one of keyPath, keyPaths and keyData is required");
  std::vector<std::string> keyrings;
  std::string origin;
  if (j.contains("keyPath")) {
    SR_ASSIGN_OR_RETURN(std::string k, ReadKeyFile(j["keyPath"], what));
    keyrings.push_back(std::move(k));
    origin = "keyPath=" + j["keyPath"].get<std::string>();
  } else if (j.contains("keyPaths")) {
    if (!j["keyPaths"].is_array() || j["keyPaths"].empty())
      return InvalidArgument(what + ": keyPaths is not a non-empty array");
    for (const json& p : j["keyPaths"]) {
      SR_ASSIGN_OR_RETURN(std::string k, ReadKeyFile(p, what));
      keyrings.push_back(std::move(k));
    }
    origin = "keyPaths";
  } else {
    SR_ASSIGN_OR_RETURN(std::string k, DecodeKeyData(j["keyData"], what));
    keyrings.push_back(std::move(k));
    origin = "keyData";
  }
  SR_ASSIGN_OR_RETURN(req.keyring, GpgKeyring::Create(keyrings, what));
  req.description = "signedBy(GPGKeys, " + origin + ")";
  return OkStatus();
}

Status ParseSigstoreSigned(const json& j, const std::string& what, Requirement& req) {
  SR_RETURN_IF_ERROR(CheckMembers(
      j,
      {"type", "keyPath", "keyData", "fulcio", "rekorPublicKeyPath", "rekorPublicKeyData", "signedIdentity"},
      what));
  for (const char* unsupported : {"fulcio", "rekorPublicKeyPath", "rekorPublicKeyData"}) {
    if (j.contains(unsupported)) {
      return Unimplemented(what + ": \"" + unsupported +
                           "\" is not supported (an enclave has no Fulcio/Rekor "
                           "access; use keyPath or keyData)");
    }
  }
  if (j.contains("keyPath") == j.contains("keyData"))
    return InvalidArgument(what + ": exactly one of keyPath and keyData is required");
  std::string pem;
  if (j.contains("keyPath")) {
    SR_ASSIGN_OR_RETURN(pem, ReadKeyFile(j["keyPath"], what));
    req.description = "sigstoreSigned(keyPath=" + j["keyPath"].get<std::string>() + ")";
  } else {
    SR_ASSIGN_OR_RETURN(pem, DecodeKeyData(j["keyData"], what));
    req.description = "sigstoreSigned(keyData)";
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) {
    OpensslErrors();
    return InvalidArgument(what + ": the key is not a PEM public key");
  }
  req.sigstore_key = std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
  int id = EVP_PKEY_get_base_id(key);
  if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
    return InvalidArgument(what + ": unsupported key type (ECDSA, RSA or Ed25519)");
  }
  return OkStatus();
}

Result<Requirement> ParseRequirement(const json& j, const std::string& what) {
  Requirement req;
  SR_ASSIGN_OR_RETURN(std::string type, StringMember(j, "type", what));
  if (type == "insecureAcceptAnything" || type == "reject") {
    SR_RETURN_IF_ERROR(CheckMembers(j, {"type"}, what));
    req.type = type == "reject" ? Requirement::Type::kReject : Requirement::Type::kInsecureAcceptAnything;
    req.description = type;
    return req;
  }
  if (type == "signedBy") {
    req.type = Requirement::Type::kSignedBy;
    SR_RETURN_IF_ERROR(ParseSignedBy(j, what, req));
  } else if (type == "sigstoreSigned") {
    req.type = Requirement::Type::kSigstoreSigned;
    SR_RETURN_IF_ERROR(ParseSigstoreSigned(j, what, req));
  } else {
    return InvalidArgument(what + ": unknown requirement type \"" + type + "\"");
  }
  if (j.contains("signedIdentity")) {
    SR_ASSIGN_OR_RETURN(req.identity, ParseIdentity(j["signedIdentity"], what));
  }
  req.description += " with " + req.identity.ToString();
  return req;
}

Result<Requirements> ParseRequirements(const json& j, const std::string& what) {
  if (!j.is_array() || j.empty()) return InvalidArgument(what + ": must be a non-empty list of requirements");
  Requirements reqs;
  for (std::size_t i = 0; i < j.size(); ++i) {
    SR_ASSIGN_OR_RETURN(Requirement r, ParseRequirement(j[i], what + "[" + std::to_string(i) + "]"));
    reqs.push_back(std::move(r));
  }
  return reqs;
}

Status ValidateScope(std::string_view transport, const std::string& scope, const std::string& what) {
  if (scope.empty()) return OkStatus();  // the transport-wide default
  if (transport == "docker") {
    if (scope.starts_with("*.")) {
      if (scope.size() < 3 || scope.find_first_of("/:@*", 1) != std::string::npos) {
        return InvalidArgument(what + ": a wildcard scope is \"*.domain\"");
      }
      return OkStatus();
    }
    auto ref = DockerRef::Parse(scope);
    bool host_only = scope.find('/') == std::string::npos && scope.find_first_of(".:") != std::string::npos;
    if (!host_only && (!ref.ok() || ref->String() != scope)) {
      return InvalidArgument(what +
                             ": not a fully qualified docker reference, repository, namespace or host");
    }
    return OkStatus();
  }
  if (transport == "oci" || transport == "oci-archive") {
    std::string_view path = std::string_view(scope).substr(0, scope.find(':'));
    if (!path.starts_with('/') || path == "/")
      return InvalidArgument(what + ": must be an absolute path other than /");
    if (std::filesystem::path(path).lexically_normal().string() != path) {
      return InvalidArgument(what + ": path is not in canonical form");
    }
  }
  return OkStatus();
}

}  // namespace

Result<Policy> Policy::Parse(std::string_view text, std::string_view origin) {
  std::string where(origin);
  SR_ASSIGN_OR_RETURN(json j, ParseStrictJson(text, where));
  SR_RETURN_IF_ERROR(CheckMembers(j, {"default", "transports"}, where));
  if (!j.contains("default")) return InvalidArgument(where + ": missing \"default\"");
  Policy policy;
  policy.origin_ = where;
  SR_ASSIGN_OR_RETURN(policy.default_, ParseRequirements(j["default"], where + ": default"));
  if (auto t = j.find("transports"); t != j.end()) {
    if (!t->is_object()) return InvalidArgument(where + ": \"transports\" is not an object");
    for (const auto& [transport, scopes] : t->items()) {
      if (std::find(kKnownTransports.begin(), kKnownTransports.end(), transport) == kKnownTransports.end()) {
        return InvalidArgument(where + ": unknown transport \"" + transport + "\"");
      }
      if (!scopes.is_object())
        return InvalidArgument(where + ": transports." + transport + " is not an object");
      auto& table = policy.transports_[transport];
      for (const auto& [scope, reqs] : scopes.items()) {
        std::string what = where + ": transports." + transport + "[\"" + scope + "\"]";
        SR_RETURN_IF_ERROR(ValidateScope(transport, scope, what));
        SR_ASSIGN_OR_RETURN(table[scope], ParseRequirements(reqs, what));
      }
    }
  }
  return policy;
}

Policy::Selection Policy::For(const Reference& ref) const {
  std::string_view transport = TransportName(ref.transport);
  auto t = transports_.find(transport);
  if (t != transports_.end()) {
    for (const std::string& scope : ScopesFor(ref)) {
      if (auto s = t->second.find(scope); s != t->second.end())
        return {&s->second, std::string(transport) + ":" + scope};
    }
    if (auto s = t->second.find(""); s != t->second.end()) return {&s->second, std::string(transport) + ":"};
  }
  return {&default_, "default"};
}

std::string_view TransportName(Transport transport) {
  switch (transport) {
    case Transport::kDocker:
      return "docker";
    case Transport::kOciLayout:
      return "oci";
    case Transport::kOciArchive:
      return "oci-archive";
  }
  return "docker";
}

std::vector<std::string> ScopesFor(const Reference& ref) {
  if (auto docker = DockerRef::FromReference(ref)) return DockerScopes(*docker);
  if (ref.transport == Transport::kDocker) return {};
  // As containers/image: the path with symlinks resolved when it exists.
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(ref.path, ec).lexically_normal();
  if (auto canonical = std::filesystem::canonical(path, ec); !ec) path = canonical;
  std::string dir = path.string();
  if (dir.size() > 1 && dir.ends_with('/')) dir.pop_back();
  std::vector<std::string> scopes;
  if (!ref.tag.empty()) scopes.push_back(dir + ":" + ref.tag);
  for (std::string ns = dir; ns.size() > 1; ns.resize(ns.rfind('/'))) {
    scopes.push_back(ns);
    if (ns.rfind('/') == 0) break;
  }
  return scopes;
}

}  // namespace sealroot::image::trust
