#include "image/src/registry_auth.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"

namespace sealroot::image::internal {
namespace {

constexpr std::size_t kMaxAuthFile = 1u << 20;
constexpr std::size_t kMaxTokenResponse = 1u << 20;

std::string NormalizeAuthKey(std::string key) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.starts_with(scheme)) key.erase(0, scheme.size());
  }
  if (key.ends_with("/v1/")) key.resize(key.size() - 4);  // legacy Docker keys
  if (key.ends_with("/")) key.pop_back();
  if (key == "index.docker.io" || key.starts_with("index.docker.io/")) key.replace(0, 15, "docker.io");
  return key;
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

Result<SecretBytes> LookupCredentials(const std::string& authfile, const std::string& registry,
                                      const std::string& repository) {
  for (const std::string& path : AuthFileCandidates(authfile)) {
    auto text = ReadFile(path, kMaxAuthFile);
    if (!text.ok()) {
      if (text.status().code() == Code::kNotFound && authfile.empty()) continue;
      return std::move(text).status().WithContext("reading auth file");
    }
    auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (!doc.is_object()) return InvalidArgument("auth file " + path + ": not a JSON object");
    auto auths = doc.find("auths");
    if (auths == doc.end() || !auths->is_object()) return SecretBytes();
    std::string host = NormalizeAuthKey(registry);
    std::string best_key;
    std::string best_auth;
    for (const auto& [key, entry] : auths->items()) {
      std::string k = NormalizeAuthKey(key);
      std::string full = host + "/" + repository;
      bool matches = k == full || full.starts_with(k + "/");
      if (!matches || k.size() <= best_key.size() || !entry.is_object() || !entry.contains("auth")) continue;
      if (!entry["auth"].is_string()) continue;
      best_key = k;
      best_auth = entry["auth"].get<std::string>();
    }
    if (best_key.empty()) return SecretBytes();
    auto decoded = Base64Decode(best_auth);
    SecureWipe(std::span(reinterpret_cast<std::uint8_t*>(best_auth.data()), best_auth.size()));
    if (!decoded.ok())
      return InvalidArgument("auth file " + path + ": entry for " + best_key + " is not base64");
    SecretBytes out{std::span<const std::uint8_t>(*decoded)};
    SecureWipe(*decoded);
    return out;
  }
  return SecretBytes();
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

}  // namespace sealroot::image::internal
