// What the image pipeline asks of image trust (implemented under image/trust/):
//   - a SignatureVerifier, run once the manifest is fetched and its digest checked, before any
//     layer is fetched: signature policy (containers-policy.json);
//   - a LayerDecryptor, a stream stage for layers whose media type ends in "+encrypted"
//     (ocicrypt).
// Both are optional in the pipeline: no verifier means no policy was asked for by the caller
// (the CLI always builds one from --policy or the documented default); an encrypted layer with
// no decryptor is an error naming the layer.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/args.h"
#include "base/reader.h"
#include "base/secret.h"
#include "base/status.h"
#include "image/digest.h"
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
  virtual Result<std::unique_ptr<Reader>> Decrypt(const Descriptor& layer,
                                                  std::unique_ptr<Reader> ciphertext) = 0;
  // The media type of the plaintext layer ("...tar+gzip+encrypted" -> "...tar+gzip").
  virtual std::string PlaintextMediaType(std::string_view media_type) const = 0;
};

// Command-line/config options for trust, shared by `sealroot unpack|pull|inspect` and the agent.
struct TrustOptions {
  std::string policy_path;                   // --policy
  std::string registries_d;                  // --registries.d
  std::vector<std::string> decryption_keys;  // --decryption-key FILE[:PASS] (repeatable)
  std::string passphrase_file;               // --passphrase-file
  std::string keyprovider_config;            // --keyprovider-config / OCICRYPT_KEYPROVIDER_CONFIG
  bool insecure_policy = false;              // --insecure-policy: accept any image, unsigned too
  // The standalone tool, on a person's own machine: without --policy, use the policy skopeo
  // would ($HOME/.config/containers/policy.json, then /etc/containers/policy.json; an error if
  // neither exists), and say in every rejection how to choose another. The agent leaves this
  // false: its policy is the explicit, measured one of its configuration.
  bool search_policy = false;
  // The agent's attested key broker (kbs/client.h), when it has one: fetches a resource by its
  // kbs:// URI. Layers whose key the broker holds (the provider annotation
  // "org.opencontainers.image.enc.keys.provider.attestation-agent", as CoCo encrypts) are
  // unwrapped through it; the fetched key stays in memory.
  std::function<Result<SecretBytes>(std::string_view uri)> key_broker;
  // The signature policy's text when it came from the key broker (instead of policy_path).
  std::string policy_text;
};

// Registers --policy, --registries.d, --decryption-key, --passphrase-file, --keyprovider-config,
// --insecure-policy.
void AddTrustFlags(ArgParser& parser);
TrustOptions TrustOptionsFromFlags(const ArgParser& parser);

// Builds the verifier for `options`. Without --policy: with search_policy, the first of
// FindPolicyFile(); otherwise the default policy, which rejects every image (design/trust.md,
// "Default policy"). --insecure-policy accepts any.
Result<std::unique_ptr<SignatureVerifier>> MakeSignatureVerifier(const TrustOptions& options);
// The policy file skopeo would use without --policy: $HOME/.config/containers/policy.json if it
// exists, else /etc/containers/policy.json if it exists; kNotFound naming both otherwise.
Result<std::string> FindPolicyFile();
// Builds a decryptor from the configured keys/key providers; nullptr when none are configured.
Result<std::unique_ptr<LayerDecryptor>> MakeLayerDecryptor(const TrustOptions& options);

// What `sealroot inspect` shows about trust: per layer, whether it is encrypted and for which
// recipients; which signatures exist and whether they verify under the policy; the verdict.
struct LayerTrustInfo {
  std::size_t index = 0;
  std::string digest;
  std::string media_type;
  bool encrypted = false;
  // One per wrapped key: "jwe RSA-OAEP", "jwe ECDH-ES+A256KW P-256", "pkcs7 rsa issuer=/CN=x
  // serial=..", "provider <name>", "pgp" — recipients, never key material.
  std::vector<std::string> recipients;
  bool decryptable = false;  // a configured key or provider unwraps it (only tried if keys given)
};

struct SignatureTrustInfo {
  std::string kind;              // "simple-signing" or "cosign"
  std::string location;          // lookaside URL / attachment tag
  std::string signed_reference;  // claims, only filled once the signature verified
  std::string signed_digest;
  std::string signer;     // OpenPGP fingerprint (simple signing)
  bool verified = false;  // accepted by a requirement of the policy that applies
  std::string detail;     // why not, when not verified
};

struct TrustReport {
  std::string policy_scope;               // which scope of the policy applies
  std::vector<std::string> requirements;  // their descriptions
  bool accepted = false;                  // the policy verdict
  std::string verdict;                    // "accepted" or the rejection message
  std::vector<LayerTrustInfo> layers;     // empty when `manifest` is an index
  std::vector<SignatureTrustInfo> signatures;
};

// Gathers the report for the image manifest `manifest` fetched from `source`.
Result<TrustReport> InspectTrust(ImageSource& source, const ManifestBytes& manifest,
                                 const TrustOptions& options);
// Human-readable lines (one per layer and signature) and a JSON object for `--json`.
std::string FormatTrustReport(const TrustReport& report);
std::string TrustReportJson(const TrustReport& report);

}  // namespace sealroot::image
