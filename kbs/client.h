// The enclave's side of the KBS protocol (kbs/protocol.h): attests to the owner's broker with an
// SGX quote from the enclave's TEE and fetches resources sealed to an ephemeral key that never
// leaves the enclave. Works against `sealroot keyprovider --kbs` and against a trustee KBS.
//
//   SR_ASSIGN_OR_RETURN(auto kbs, KbsClient::Create(tee, {.url = "http://127.0.0.1:8080"}));
//   SR_ASSIGN_OR_RETURN(SecretBytes key, kbs->GetResource("kbs:///default/key/layer"));
//
// The first GetResource attests (auth -> challenge -> attest); later ones reuse the session
// cookie, and an expired session (401) is attested once more.
//
// Thread-safety: every method may be called from several threads (one request at a time).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "base/secret.h"
#include "base/status.h"
#include "local-attest/tee.h"

namespace sealroot::kbs {

struct ClientOptions {
  std::string url;  // http(s)://host:port of the broker
  // For https, the broker's CA: inline PEM (what a measured manifest carries) or a file; the
  // system's CAs when both are empty.
  std::string ca_pem;
  std::string ca_file;
  std::chrono::seconds timeout{30};
};

class KbsClient {
 public:
  // `tee` must outlive the client.
  static Result<std::unique_ptr<KbsClient>> Create(local_attest::sgx::Tee& tee, ClientOptions options);
  virtual ~KbsClient() = default;
  // auth + attest now (GetResource does it when needed). kPermissionDenied if the broker refused.
  virtual Status Attest() = 0;
  // The resource at a kbs:// URI or repository/type/tag path, opened in the enclave.
  // kPermissionDenied (401/403), kNotFound (404).
  virtual Result<SecretBytes> GetResource(std::string_view uri) = 0;
};

}  // namespace sealroot::kbs
