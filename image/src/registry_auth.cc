#include "image/src/registry_auth.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "image/registry_auth.h"

namespace sealroot::image {
namespace {

constexpr std::size_t kMaxAuthFile = 1u << 20;

using nlohmann::json;

// A registry path with the docker.io host spelled one way.
std::string CanonicalRegistryPath(std::string path) {
  for (std::string_view alias : {"index.docker.io", "registry-1.docker.io"}) {
    if (path == alias || (path.starts_with(alias) && path[alias.size()] == '/')) {
      path.replace(0, alias.size(), "docker.io");
    }
  }
  return path;
}

// A key of "auths" as a registry path: a URL names only its host (Docker's legacy
// "https://index.docker.io/v1/").
std::string NormalizeAuthKey(std::string_view key) {
  std::string k(key);
  for (std::string_view scheme : {"https://", "http://"}) {
    if (k.starts_with(scheme)) {
      k.erase(0, scheme.size());
      k.resize(std::min(k.size(), k.find('/')));
      break;
    }
  }
  while (k.ends_with('/')) k.pop_back();
  return CanonicalRegistryPath(std::move(k));
}

bool HasIdentityToken(const json& entry) {
  auto token = entry.find("identitytoken");
  return token != entry.end() && token->is_string() && !token->get_ref<const std::string&>().empty();
}

// The entry of `auths` for exactly `path`: its own key first, then any key that normalizes to it.
const json* EntryFor(const json& auths, const std::string& path, std::string* key_out) {
  auto usable = [](const json& entry) {
    if (!entry.is_object()) return false;
    auto auth = entry.find("auth");
    bool has_auth =
        auth != entry.end() && !(auth->is_string() && auth->get_ref<const std::string&>().empty());
    return has_auth || HasIdentityToken(entry);  // else a credential helper's marker
  };
  if (auto exact = auths.find(path); exact != auths.end() && usable(*exact)) {
    *key_out = path;
    return &*exact;
  }
  for (const auto& [key, entry] : auths.items()) {
    if (NormalizeAuthKey(key) == path && usable(entry)) {
      *key_out = key;
      return &entry;
    }
  }
  return nullptr;
}

Result<SecretBytes> DecodeEntry(const json& entry, const std::string& key) {
  if (HasIdentityToken(entry)) {
    return Unimplemented("the entry for " + key +
                         " holds an identity token (OAuth2), which sealroot does not use: log in with a "
                         "user name and password");
  }
  const json& auth = entry.at("auth");
  if (!auth.is_string()) return InvalidArgument("the \"auth\" of " + key + " is not a string");
  Result<std::vector<std::uint8_t>> decoded = Base64Decode(auth.get_ref<const std::string&>());
  if (!decoded.ok()) return InvalidArgument("the \"auth\" of " + key + " is not base64");
  SecretBytes creds{std::span<const std::uint8_t>(*decoded)};
  const bool has_colon = std::find(decoded->begin(), decoded->end(), ':') != decoded->end();
  SecureWipe(*decoded);
  if (!has_colon) return InvalidArgument("the \"auth\" of " + key + " is not base64 of user:pass");
  return creds;
}

// The document held secrets: its strings are wiped before it is freed.
void WipeStrings(json& j) {
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    SecureWipe({reinterpret_cast<std::uint8_t*>(s.data()), s.size()});
  } else if (j.is_structured()) {
    for (json& child : j) WipeStrings(child);
  }
}

Result<SecretBytes> Lookup(const json& doc, std::string_view registry, std::string_view repository) {
  if (!doc.is_object()) return InvalidArgument("not a containers-auth.json: not a JSON object");
  auto auths = doc.find("auths");
  if (auths == doc.end()) return SecretBytes();  // e.g. only "credHelpers"
  if (!auths->is_object()) return InvalidArgument("not a containers-auth.json: \"auths\" is not an object");
  std::string path = CanonicalRegistryPath(std::string(registry));
  if (!repository.empty()) path += "/" + std::string(repository);
  const std::size_t host_end = path.find('/');
  while (true) {
    std::string key;
    if (const json* entry = EntryFor(*auths, path, &key)) return DecodeEntry(*entry, key);
    std::size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash < host_end) return SecretBytes();
    path.resize(slash);
  }
}

std::vector<std::string> AuthFileCandidates(const std::string& explicit_file) {
  if (!explicit_file.empty()) return {explicit_file};
  std::vector<std::string> out;
  if (const char* f = std::getenv("REGISTRY_AUTH_FILE"); f && *f) out.push_back(f);
  if (const char* d = std::getenv("XDG_RUNTIME_DIR"); d && *d)
    out.push_back(std::string(d) + "/containers/auth.json");
  if (const char* h = std::getenv("HOME"); h && *h) out.push_back(std::string(h) + "/.docker/config.json");
  return out;
}

}  // namespace

Result<SecretBytes> CredentialsFromAuthJson(std::string_view document, std::string_view registry,
                                            std::string_view repository) {
  json doc = json::parse(document, nullptr, /*allow_exceptions=*/false);
  Result<SecretBytes> creds = Lookup(doc, registry, repository);
  WipeStrings(doc);
  return creds;
}

Result<SecretBytes> CredentialsFromAuthFile(const std::string& path, std::string_view registry,
                                            std::string_view repository) {
  SR_ASSIGN_OR_RETURN(SecretBytes text, ReadSecretFile(path, kMaxAuthFile));
  Result<SecretBytes> creds = CredentialsFromAuthJson(AsChars(text.span()), registry, repository);
  if (!creds.ok()) return std::move(creds).status().WithContext("auth file " + path);
  return creds;
}

namespace internal {

constexpr std::size_t kMaxTokenResponse = 1u << 20;

Result<SecretBytes> LookupCredentials(const std::string& authfile, const std::string& registry,
                                      const std::string& repository) {
  // Each file in turn until one has credentials for the image (containers-auth.json(5)).
  for (const std::string& path : AuthFileCandidates(authfile)) {
    Result<SecretBytes> creds = CredentialsFromAuthFile(path, registry, repository);
    if (!creds.ok()) {
      if (creds.status().code() == Code::kNotFound && authfile.empty()) continue;
      return creds;
    }
    if (!creds->empty()) return creds;
  }
  return SecretBytes();
}

Result<Challenge> ParseChallenge(std::string_view h) {
  Challenge c;
  std::size_t sp = h.find(' ');
  for (char ch : h.substr(0, sp))
    c.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  if (c.scheme != "basic" && c.scheme != "bearer")
    return Unauthenticated("unsupported auth challenge '" + std::string(h.substr(0, sp)) + "'");
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : h.substr(sp + 1);
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == ',')) rest.remove_prefix(1);
    std::size_t eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    std::string key(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      std::size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i]);
      }
      rest.remove_prefix(std::min(rest.size(), i + 1));
    } else {
      std::size_t comma = rest.find(',');
      value = std::string(rest.substr(0, comma));
      rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma);
    }
    c.params[key] = value;
  }
  return c;
}

std::string RegistryAuth::Header() const {
  MutexLock lock(mu_);
  return header_;
}

Status RegistryAuth::Answer(const std::string& www_authenticate, const std::string& registry_origin) {
  SR_ASSIGN_OR_RETURN(Challenge c, ParseChallenge(www_authenticate));
  std::string basic = creds_.empty() ? "" : "Authorization: Basic " + Base64Encode(creds_.span());
  if (c.scheme == "basic") {
    if (creds_.empty()) return Unauthenticated("the registry requires credentials (--creds or --authfile)");
    MutexLock lock(mu_);
    if (header_ == basic) return Unauthenticated("the registry refused the credentials");
    header_ = basic;
    return OkStatus();
  }
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty())
    return Unauthenticated("Bearer challenge without a realm");
  std::string url = realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&");
  if (auto s = c.params.find("service"); s != c.params.end()) url += "service=" + UrlEscape(s->second) + "&";
  std::string scope = c.params.count("scope") ? c.params["scope"] : scope_;
  url += "scope=" + UrlEscape(scope);
  // The credentials go to the registry itself or over HTTPS, never in clear text to another host
  // (a realm is the registry's to name, and a plain-HTTP one on another host exposes them to
  // anyone on the path). Such a realm gets an anonymous token request instead.
  const std::string realm_origin = UrlOrigin(realm->second);
  const bool withheld =
      !basic.empty() && !realm_origin.starts_with("https://") && realm_origin != UrlOrigin(registry_origin);
  std::vector<std::string> headers;
  if (!basic.empty() && !withheld) headers.push_back(basic);
  SR_ASSIGN_OR_RETURN(HttpClient::Response r, http_.Fetch(url, headers, kMaxTokenResponse));
  if (withheld && r.status != 200) {
    return Unauthenticated("the registry's token service " + realm_origin +
                           " is plain HTTP on another host: the credentials were not sent to it, and it "
                           "refused an anonymous token (HTTP " +
                           std::to_string(r.status) + ")");
  }
  if (r.status == 401 || r.status == 403) return Unauthenticated("the token service refused the credentials");
  if (r.status != 200) return Unauthenticated("token service answered HTTP " + std::to_string(r.status));
  auto doc = nlohmann::json::parse(r.body, nullptr, false);
  std::string token;
  if (doc.is_object()) {
    if (doc.contains("token") && doc["token"].is_string()) token = doc["token"].get<std::string>();
    if (token.empty() && doc.contains("access_token") && doc["access_token"].is_string()) {
      token = doc["access_token"].get<std::string>();
    }
  }
  if (token.empty()) return Unauthenticated("the token service returned no token");
  MutexLock lock(mu_);
  std::string header = "Authorization: Bearer " + token;
  if (header_ == header) return Unauthenticated("the registry refused the token");
  header_ = std::move(header);
  return OkStatus();
}

}  // namespace internal
}  // namespace sealroot::image
