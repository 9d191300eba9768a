#include "agent/server/src/key_broker.h"

#include "base/crypto.h"
#include "image/registry_auth.h"

namespace sealroot::agent {

Result<SecretBytes> KeyBrokerSession::Fetch(std::string_view uri) {
  kbs::KbsClient* client = nullptr;
  {
    MutexLock lock(mu_);
    if (!client_) {
      Result<std::unique_ptr<local_attest::sgx::Tee>> tee = local_attest::sgx::OpenTee();
      if (!tee.ok()) return std::move(tee).status().WithContext("key broker: the agent cannot attest");
      SR_ASSIGN_OR_RETURN(
          client_, kbs::KbsClient::Create(
                       **tee, {config_.url, config_.ca_pem, config_.ca_file, std::chrono::seconds(30)}));
      tee_ = std::move(*tee);
    }
    client = client_.get();  // the client is thread-safe and lives as long as this session
  }
  Result<SecretBytes> resource = client->GetResource(uri);
  if (!resource.ok()) return std::move(resource).status().WithContext("key broker " + config_.url);
  return resource;
}

Status KeyBrokerSession::Apply(const std::string& registry, const std::string& repository,
                               image::TrustOptions& trust, SecretBytes& creds) {
  trust.key_broker = [this](std::string_view uri) { return Fetch(uri); };
  if (!config_.signature_policy.empty()) {
    SR_ASSIGN_OR_RETURN(SecretBytes policy, Fetch(config_.signature_policy));
    trust.policy_text.assign(AsChars(policy.span()));
  }
  if (creds.empty() && !config_.credentials.empty()) {
    SR_ASSIGN_OR_RETURN(SecretBytes auth, Fetch(config_.credentials));
    Result<SecretBytes> found = image::CredentialsFromAuthJson(AsChars(auth.span()), registry, repository);
    if (!found.ok()) return std::move(found).status().WithContext(config_.credentials);
    creds = *std::move(found);
  }
  return OkStatus();
}

WorkloadPolicySource BrokerWorkloadPolicy(std::shared_ptr<KeyBrokerSession> session, std::string uri) {
  struct Cache {
    Mutex mu;
    std::shared_ptr<const WorkloadPolicy> policy SR_GUARDED_BY(mu);
  };
  auto cache = std::make_shared<Cache>();
  return [session = std::move(session), uri = std::move(uri),
          cache]() -> Result<std::shared_ptr<const WorkloadPolicy>> {
    MutexLock lock(cache->mu);
    if (!cache->policy) {
      SR_ASSIGN_OR_RETURN(SecretBytes document, session->Fetch(uri));
      Result<WorkloadPolicy> parsed = ParseWorkloadPolicy(AsChars(document.span()));
      if (!parsed.ok()) return std::move(parsed).status().WithContext(uri);
      cache->policy = std::make_shared<const WorkloadPolicy>(*std::move(parsed));
    }
    return cache->policy;
  };
}

}  // namespace sealroot::agent
