// The owner's key broker (`sealroot keyprovider --kbs`): the server side of the KBS protocol
// (kbs/protocol.h). It releases a resource only to a session whose SGX quote
//   - verifies against the configured root (local-attest/quote.h),
//   - carries report_data = the runtime-data binding of this session's nonce and tee-pubkey,
//     the nonce fresh (unexpired) and single-use (a session attests once),
//   - names a trusted identity: one of the policy's entries (MRENCLAVE, or MRSIGNER + ISVPRODID +
//     minimum ISVSVN, optionally a CONFIGID), never a DEBUG enclave.
// Resources come from one directory, <dir>/<repository>/<type>/<tag>, each sealed to the
// session's tee-pubkey. Every refusal is logged with its reason; the peer only learns the
// HTTP status (401 unauthenticated, 403 not allowed, 404 no such resource).
//
// Thread-safety: Handle() may be called from several threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "kbs/http_server.h"
#include "local-attest/policy.h"
#include "local-attest/quote.h"

namespace sealroot::kbs {

struct BrokerOptions {
  std::vector<local_attest::IdentityPolicy> trusted;  // allow_debug is ignored: DEBUG is never trusted
  std::string root_cert_pem;                          // the quote root (sim root, or Intel's SGX root CA)
  std::string resource_dir;
  std::chrono::seconds challenge_ttl{60};  // from /auth to /attest
  std::chrono::seconds session_ttl{300};   // from /attest to the last resource
  std::size_t max_sessions = 4096;
  local_attest::sgx::QuoteVerifyOptions quote_options;
};

// The broker's policy file:
//   {"trusted": [{"mrenclave": "<64 hex>"},
//                {"mrsigner": "<64 hex>", "isv_prod_id": 1, "min_isv_svn": 1,
//                 "config_id": "<up to 128 hex>"}]}
// Unknown keys are errors. An empty list trusts nothing.
Result<std::vector<local_attest::IdentityPolicy>> LoadBrokerPolicy(const std::string& path);

class Broker {
 public:
  static Result<std::unique_ptr<Broker>> Create(BrokerOptions options);
  virtual ~Broker() = default;
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
};

}  // namespace sealroot::kbs
