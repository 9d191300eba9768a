// The agent's session with the owner's key broker (kbs/client.h): one attested KBS session per
// agent, opened on the first pull that needs it (the TEE is opened then too, so an agent outside
// an enclave starts and fails only the pulls that need the broker).
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>
#include <string>

#include "agent/server/config.h"
#include "agent/server/service.h"
#include "base/secret.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "image/trust.h"
#include "kbs/client.h"

namespace sealroot::agent {

class KeyBrokerSession {
 public:
  explicit KeyBrokerSession(KeyBrokerConfig config) : config_(std::move(config)) {}

  // The resource at a kbs:// URI, attesting first if needed.
  Result<SecretBytes> Fetch(std::string_view uri);
  // Points one pull's trust options at the broker (layer keys; the signature policy when it is
  // configured) and, when the pull carries no credentials and the broker holds an auth.json,
  // sets `creds` to its entry for `registry`/`repository` ("user:pass"; image/registry_auth.h).
  Status Apply(const std::string& registry, const std::string& repository, image::TrustOptions& trust,
               SecretBytes& creds);

 private:
  const KeyBrokerConfig config_;
  Mutex mu_;
  std::unique_ptr<local_attest::sgx::Tee> tee_ SR_GUARDED_BY(mu_);  // outlives client_
  std::unique_ptr<kbs::KbsClient> client_ SR_GUARDED_BY(mu_);
};

// The owner's workload policy at the kbs:// `uri`: fetched and parsed on first use, then kept in
// enclave memory; a failed fetch is retried by the next call.
WorkloadPolicySource BrokerWorkloadPolicy(std::shared_ptr<KeyBrokerSession> session, std::string uri);

}  // namespace sealroot::agent
