// What the image pipeline asks of image trust (implemented under image/trust/):
//   - a SignatureVerifier, run once the manifest is fetched and its digest checked, before any
//     layer is fetched: signature policy (containers-policy.json);
//   - a LayerDecryptor, a stream stage for layers whose media type ends in "+encrypted"
//     (ocicrypt).
// Both are optional in the pipeline: no verifier means no policy was asked for by the caller
// (the CLI always builds one from --policy or the documented default); an encrypted layer with
// no decryptor is an error naming the layer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/args.h"
#include "base/status.h"
#include "image/digest.h"
#include "image/reader.h"
#include "image/reference.h"
#include "image/source.h"

namespace sealroot::image {

class SignatureVerifier {
 public:
  virtual ~SignatureVerifier() = default;
  // Ok if the policy for `source.reference()` accepts the image whose manifest (exact bytes)
  // has `manifest_digest`; otherwise kPermissionDenied saying which requirement failed.
  virtual Status VerifyImage(ImageSource& source, const ManifestBytes& manifest) = 0;
};

class LayerDecryptor {
 public:
  virtual ~LayerDecryptor() = default;
  // True if `media_type` is an encrypted layer type this decryptor handles.
  virtual bool IsEncrypted(std::string_view media_type) const = 0;
  // Wraps the (digest-verifying) ciphertext stream of `layer` into a stream of the compressed
  // plaintext. The returned reader fails with kDataLoss at end of stream if the HMAC or the
  // plaintext digest does not match, naming which check failed.
  virtual Result<std::unique_ptr<Reader>> Decrypt(const Descriptor& layer, std::unique_ptr<Reader> ciphertext) = 0;
  // The media type of the plaintext layer ("...tar+gzip+encrypted" -> "...tar+gzip").
  virtual std::string PlaintextMediaType(std::string_view media_type) const = 0;
};

// Command-line/config options for trust, shared by `sealroot unpack|pull|inspect` and the agent.
struct TrustOptions {
  std::string policy_path;                     // --policy
  std::string registries_d;                    // --registries.d
  std::vector<std::string> decryption_keys;    // --decryption-key FILE[:PASS] (repeatable)
  std::string passphrase_file;                 // --passphrase-file
  std::string keyprovider_config;              // --keyprovider-config / OCICRYPT_KEYPROVIDER_CONFIG
};

// Registers --policy, --registries.d, --decryption-key, --passphrase-file, --keyprovider-config.
void AddTrustFlags(ArgParser& parser);
TrustOptions TrustOptionsFromFlags(const ArgParser& parser);

// Builds the verifier for `options` (the default policy when no --policy is given, see
// design/trust.md).
Result<std::unique_ptr<SignatureVerifier>> MakeSignatureVerifier(const TrustOptions& options);
// Builds a decryptor from the configured keys/key providers; nullptr when none are configured.
Result<std::unique_ptr<LayerDecryptor>> MakeLayerDecryptor(const TrustOptions& options);

}  // namespace sealroot::image
