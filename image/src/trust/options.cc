// Trust options from the command line and environment, and the decryptor they configure.
#include <cstdlib>

#include "image/src/trust/decryptor.h"
#include "image/trust.h"

namespace sealroot::image {

void AddTrustFlags(ArgParser& parser) {
  parser.Option("policy", "FILE",
                "containers-policy.json to enforce (default: $HOME/.config/containers/policy.json, then "
                "/etc/containers/policy.json)");
  parser.Flag("insecure-policy", "accept any image, signed or not (tests and demos only)");
  parser.Option("registries.d", "DIR", "registries.d directory with signature lookaside locations");
  parser.Option("decryption-key", "FILE[:PASS]", "private key (PEM/DER) for encrypted layers; repeatable");
  parser.Option("passphrase-file", "FILE", "passphrase for the decryption keys");
  parser.Option("keyprovider-config", "FILE",
                "ocicrypt keyprovider config (default: $OCICRYPT_KEYPROVIDER_CONFIG)");
}

TrustOptions TrustOptionsFromFlags(const ArgParser& parser) {
  TrustOptions options;
  options.policy_path = parser.Get("policy").value_or("");
  options.insecure_policy = parser.Bool("insecure-policy");
  options.search_policy = true;  // these flags are the standalone tool's: look where skopeo looks
  options.registries_d = parser.Get("registries.d").value_or("");
  options.decryption_keys = parser.GetAll("decryption-key");
  options.passphrase_file = parser.Get("passphrase-file").value_or("");
  options.keyprovider_config = parser.Get("keyprovider-config").value_or("");
  if (options.keyprovider_config.empty()) {
    if (const char* env = std::getenv("OCICRYPT_KEYPROVIDER_CONFIG")) options.keyprovider_config = env;
  }
  return options;
}

Result<std::unique_ptr<LayerDecryptor>> MakeLayerDecryptor(const TrustOptions& options) {
  SR_ASSIGN_OR_RETURN(auto keys, trust::LoadPrivateKeys(options.decryption_keys, options.passphrase_file));
  std::vector<trust::KeyProvider> providers;
  if (options.key_broker) {
    providers.push_back({std::string(trust::kBrokerProviderName), {}, {}, {}, options.key_broker});
  }
  if (!options.keyprovider_config.empty()) {
    SR_ASSIGN_OR_RETURN(auto configured, trust::LoadKeyProviderConfig(options.keyprovider_config));
    providers.insert(providers.end(), configured.begin(), configured.end());
  }
  if (keys.empty() && providers.empty()) return std::unique_ptr<LayerDecryptor>();
  return std::unique_ptr<LayerDecryptor>(
      std::make_unique<trust::OcicryptDecryptor>(std::move(keys), std::move(providers)));
}

}  // namespace sealroot::image
