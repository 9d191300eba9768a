// The ocicrypt key-provider protocol (ocicrypt >= 1.1), both sides:
//   - the JSON documents exchanged (the same for the gRPC service and for `cmd` providers),
//   - the client: unwrapping a layer's `org.opencontainers.image.enc.keys.provider.<name>`
//     annotation through the provider configured under that name in an ocicrypt keyprovider
//     config ({"key-providers":{"<name>":{"cmd":{"path":..,"args":[..]}} | {"grpc":"host:port"}}}).
// The server side (`sealroot keyprovider`) lives in tool/src/trust_commands.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "base/status.h"
#include "image/trust/private_keys.h"

namespace sealroot::image::trust {

inline constexpr std::string_view kProviderAnnotationPrefix = "org.opencontainers.image.enc.keys.provider.";

// {"op":"keyunwrap","keyunwrapparams":{"dc":{"Parameters":{}},"annotation":"<b64>"}}
std::string BuildUnwrapRequest(std::span<const std::uint8_t> annotation);
// The annotation bytes of an unwrap request; kInvalidArgument for anything else (other ops too).
Result<std::vector<std::uint8_t>> ParseUnwrapRequest(std::string_view request);
// {"keyunwrapresults":{"optsdata":"<b64>"}} — secret, hence SecretBytes both ways.
SecretBytes BuildUnwrapResponse(const SecretBytes& optsdata);
Result<SecretBytes> ParseUnwrapResponse(std::span<const std::uint8_t> response);

struct KeyProvider {
  std::string name;
  std::string grpc_address;  // set for {"grpc": ...}
  std::string cmd_path;      // set for {"cmd": ...}
  std::vector<std::string> cmd_args;
  // Set for the attested key broker (TrustOptions::key_broker): the annotation is CoCo's
  // AnnotationPacket {"kid":"kbs:///..","wrapped_data":"<b64>","iv":"<b64>","wrap_type":"A256GCM"};
  // the broker's resource at kid is the AES-256-GCM key that opens wrapped_data.
  std::function<Result<SecretBytes>(std::string_view uri)> broker;
};

// The provider name CoCo's attestation agent answers to, which the key broker takes over.
inline constexpr std::string_view kBrokerProviderName = "attestation-agent";

// Parses an ocicrypt keyprovider config file. Unknown provider kinds are errors.
Result<std::vector<KeyProvider>> LoadKeyProviderConfig(const std::string& path);

// Asks `provider` to unwrap `annotation` (one decoded element of the provider annotation);
// returns the private options JSON.
Result<SecretBytes> ProviderUnwrap(const KeyProvider& provider, std::span<const std::uint8_t> annotation,
                                   std::chrono::seconds timeout = std::chrono::seconds(30));

// The offline key broker (`sealroot keyprovider`): every private key (PEM/DER) directly in
// `dir`; `passphrase_file` (may be empty) unlocks encrypted ones.
Result<std::vector<PrivateKey>> LoadKeyDirectory(const std::string& dir, const std::string& passphrase_file);
// Answers one unwrap request: the annotation is a JWE, as ocicrypt's JWE key wrapper makes it,
// for one of `keys`. Returns the response document (secret). kNotFound if no key fits.
Result<SecretBytes> ServeUnwrapRequest(std::string_view request, std::span<const PrivateKey> keys);

}  // namespace sealroot::image::trust
