// JWE (RFC 7516) decryption as ocicrypt wraps layer keys: JSON serialization, flattened (one
// recipient) or general (several), content encryption A256GCM, key management RSA-OAEP,
// RSA-OAEP-256 and ECDH-ES+A128KW/A192KW/A256KW (P-256/P-384/P-521).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "base/status.h"
#include "image/trust/private_keys.h"

namespace sealroot::image::trust {

// Decrypts `jwe_json` with the first of `keys` that unwraps one of its recipients.
// kNotFound if no key fits any recipient; kInvalidArgument for a malformed or unsupported JWE.
Result<SecretBytes> JweDecrypt(std::string_view jwe_json, std::span<const PrivateKey> keys);

// The recipients' key-management algorithms, for `inspect` ("RSA-OAEP", "ECDH-ES+A256KW P-256").
Result<std::vector<std::string>> JweRecipients(std::string_view jwe_json);

}  // namespace sealroot::image::trust
