// Registry authentication: credentials (--creds, the auth files), WWW-Authenticate parsing,
// Basic and Bearer (token fetched from the realm, cached per scope). Private to image/.
//
// Thread-safety: RegistryAuth is shared by parallel downloads; its token cache is locked.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "base/secret.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "image/src/http.h"

namespace sealroot::image::internal {

struct Challenge {
  std::string scheme;                         // lowercase: "basic" or "bearer"
  std::map<std::string, std::string> params;  // realm, service, scope
};
Result<Challenge> ParseChallenge(std::string_view header);

// "user:pass" for `registry`/`repository` (image/registry_auth.h's lookup): from `authfile` if
// given, else from the first of REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json and
// ~/.docker/config.json that has credentials for it. Empty when none has.
Result<SecretBytes> LookupCredentials(const std::string& authfile, const std::string& registry,
                                      const std::string& repository);

class RegistryAuth {
 public:
  RegistryAuth(const HttpClient& http, SecretBytes creds, std::string scope)
      : http_(http), creds_(std::move(creds)), scope_(std::move(scope)) {}
  // The Authorization header line to send, or empty.
  std::string Header() const;
  // Answers a 401's challenge (fetching a token for Bearer). kUnauthenticated when the
  // credentials are refused or missing. `registry_origin` ("scheme://host[:port]") is where the
  // registry itself was reached: a Bearer realm gets the credentials only there or over HTTPS.
  Status Answer(const std::string& www_authenticate, const std::string& registry_origin);

 private:
  const HttpClient& http_;
  SecretBytes creds_;  // "user:pass"
  std::string scope_;
  mutable Mutex mu_;
  std::string header_ SR_GUARDED_BY(mu_);  // holds credentials or a token: never logged
};

}  // namespace sealroot::image::internal
