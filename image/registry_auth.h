// containers-auth.json(5): the credentials a registry auth file holds for an image. The one
// lookup for every part that reads such a file: the image pull (--authfile and the default
// files), the agent (an auth.json from the owner's key broker) and `sealroot ctl pull
// --authfile`.
//
// Thread-safety: functions of their arguments only.
#pragma once

#include <string>
#include <string_view>

#include "base/secret.h"
#include "base/status.h"

namespace sealroot::image {

// "user:pass" for `registry` and `repository` ("127.0.0.1:5000", "team/app") from a
// containers-auth.json document, or empty when no entry matches (anonymous access).
//
// The keys of "auths" are matched in hierarchical order, most specific first: registry/team/app,
// registry/team, registry. A key written as a URL ("https://index.docker.io/v1/", Docker's
// legacy form) names only its host; docker.io, index.docker.io and registry-1.docker.io are one
// registry. An entry without "auth" (a credential helper's marker) is passed over.
//
// kInvalidArgument: not a JSON object, "auths" not an object, or the entry chosen has an "auth"
// that is not base64 of "user:pass". kUnimplemented: the entry chosen holds an "identitytoken"
// (an OAuth2 refresh token, which sealroot does not exchange). Messages name the entry, never
// its content; the document's strings are wiped before it is freed.
Result<SecretBytes> CredentialsFromAuthJson(std::string_view document, std::string_view registry,
                                            std::string_view repository);

// The same from the file at `path` (read as a secret; errors name the file).
Result<SecretBytes> CredentialsFromAuthFile(const std::string& path, std::string_view registry,
                                            std::string_view repository);

}  // namespace sealroot::image
