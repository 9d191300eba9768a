// Private keys for unwrapping layer keys: PEM or DER files (PKCS#8, traditional RSA/EC), with an
// optional passphrase, as skopeo's `--decryption-key FILE[:PASS]` takes them.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"

namespace sealroot::image::trust {

struct PrivateKey {
  std::string source;  // the file it came from, for messages (never the key or passphrase)
  EvpPkeyPtr key;
};

// Parses a PEM or DER private key. `passphrase` may be empty. Errors name `what`, never the key.
Result<EvpPkeyPtr> ParsePrivateKey(std::span<const std::uint8_t> data, const SecretBytes& passphrase,
                                   std::string_view what);

// Splits "FILE[:PASS]": the whole spec is a file name if such a file exists, otherwise the part
// after the last ':' is the passphrase.
struct KeySpec {
  std::string path;
  SecretBytes passphrase;
};
KeySpec ParseKeySpec(std::string_view spec);

// Loads every `--decryption-key`; `passphrase_file` (may be empty) supplies the passphrase for
// keys whose spec has none.
Result<std::vector<PrivateKey>> LoadPrivateKeys(const std::vector<std::string>& specs,
                                                const std::string& passphrase_file);

}  // namespace sealroot::image::trust
