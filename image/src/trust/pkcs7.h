// PKCS#7 EnvelopedData as ocicrypt (via go pkcs7) wraps layer keys: RSA PKCS#1 v1.5 key
// transport per recipient, content encrypted with AES-GCM whose parameters are encoded in a
// non-standard way (a SEQUENCE wrapped in a *primitive* universal tag 16), which `openssl cms`
// rejects; so the structure is walked here with OpenSSL's DER primitives.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/secret.h"
#include "base/status.h"
#include "image/trust/private_keys.h"

namespace sealroot::image::trust {

// Decrypts with the first RSA key that opens the content. kNotFound if none does;
// kInvalidArgument for malformed or unsupported structures.
Result<SecretBytes> Pkcs7Decrypt(std::span<const std::uint8_t> der, std::span<const PrivateKey> keys);

// "issuer=<DN> serial=<hex>" per recipient, for `inspect`.
Result<std::vector<std::string>> Pkcs7Recipients(std::span<const std::uint8_t> der);

}  // namespace sealroot::image::trust
