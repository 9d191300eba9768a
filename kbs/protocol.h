// The KBS attestation protocol of confidential-containers/trustee ("RCAR": request, challenge,
// attestation, response), the parts both ends share: resource ids, the runtime-data binding of
// SGX evidence, the enclave's ephemeral key and the JWE every resource comes back in.
//
//   POST /kbs/v0/auth    {"version":"0.4.0","tee":"sgx","extra-params":""}
//                        -> Set-Cookie kbs-session-id=..; {"nonce":"<b64>","extra-params":""}
//   POST /kbs/v0/attest  {"runtime-data":{"nonce":..,"tee-pubkey":<JWK>},
//                         "tee-evidence":{"primary_evidence":{"quote":"<b64 DCAP quote>"},
//                                         "additional_evidence":""}}
//                        -> {"token":"<JWT>"}
//   GET  /kbs/v0/resource/<repository>/<type>/<tag>  (cookie) -> JWE (flattened JSON)
//
// report_data of the quote = SHA-384 of the JCS-canonical JSON {"additional-evidence":"",
// "nonce":..,"tee-pubkey":..} followed by 16 zero bytes: what trustee's verifier expects for
// SGX (runtime data hashed with SHA-384, padded to 64 bytes).
//
// Thread-safety: value types; TeeKey is immutable after Generate.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "local-attest/sgx_types.h"

namespace sealroot::kbs {

inline constexpr char kProtocolVersion[] = "0.4.0";
inline constexpr char kSessionCookie[] = "kbs-session-id";
inline constexpr char kResourcePrefix[] = "/kbs/v0/resource/";
inline constexpr std::size_t kMaxResourceSize = 1 << 20;

// <repository>/<type>/<tag>; each part [A-Za-z0-9._-]+, never "." or "..".
struct ResourceId {
  std::string repository, type, tag;

  // "kbs:///repo/type/tag", "kbs://host:port/repo/type/tag" (the host is ignored: the agent's
  // broker is configured, not chosen by the image) or "repo/type/tag".
  static Result<ResourceId> Parse(std::string_view uri_or_path);
  std::string Path() const { return repository + "/" + type + "/" + tag; }
};

// RFC 8785 (JCS) for the documents hashed here (objects, arrays, strings, integers with ASCII
// keys), which is nlohmann's compact dump with sorted keys.
std::string CanonicalJson(const nlohmann::json& value);

// The 64-byte report_data binding `nonce` and `tee_pubkey` (see above).
local_attest::sgx::ReportData RuntimeDataBinding(std::string_view nonce, const nlohmann::json& tee_pubkey);

// The enclave's ephemeral P-256 key: its public JWK goes into the attestation, and every
// resource comes back as a JWE (ECDH-ES+A256KW, A256GCM) only this key opens.
class TeeKey {
 public:
  static Result<TeeKey> Generate();
  // {"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":..,"y":..}
  const nlohmann::json& public_jwk() const { return jwk_; }
  // Opens a resource response; kDataLoss if it was not sealed to this key or was altered.
  Result<SecretBytes> Open(std::string_view jwe_json) const;

 private:
  TeeKey(EvpPkeyPtr key, nlohmann::json jwk) : key_(std::move(key)), jwk_(std::move(jwk)) {}
  EvpPkeyPtr key_;
  nlohmann::json jwk_;
};

// The broker's side: `plaintext` sealed to `tee_pubkey` (an EC P-256 JWK) as trustee does.
Result<std::string> SealToTeeKey(const nlohmann::json& tee_pubkey, std::span<const std::uint8_t> plaintext);

// Checks a tee-pubkey JWK is an EC P-256 key this protocol can seal to (RSA keys are refused).
Status ValidateTeePubkey(const nlohmann::json& tee_pubkey);

}  // namespace sealroot::kbs
