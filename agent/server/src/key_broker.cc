#include "agent/server/src/key_broker.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"

namespace sealroot::agent {

using nlohmann::json;

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

Status KeyBrokerSession::Apply(const std::string& registry, image::TrustOptions& trust, SecretBytes& creds) {
  trust.key_broker = [this](std::string_view uri) { return Fetch(uri); };
  if (!config_.signature_policy.empty()) {
    SR_ASSIGN_OR_RETURN(SecretBytes policy, Fetch(config_.signature_policy));
    trust.policy_text.assign(AsChars(policy.span()));
  }
  if (creds.empty() && !config_.credentials.empty()) {
    SR_ASSIGN_OR_RETURN(SecretBytes auth, Fetch(config_.credentials));
    Result<SecretBytes> found = CredentialsFromAuthJson(auth.span(), registry);
    if (found.ok()) {
      creds = *std::move(found);
    } else if (found.status().code() != Code::kNotFound) {
      return std::move(found).status().WithContext(config_.credentials);
    }
  }
  return OkStatus();
}

Result<SecretBytes> CredentialsFromAuthJson(std::span<const std::uint8_t> auth_json,
                                            const std::string& registry) {
  json doc = json::parse(AsChars(auth_json), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument("auth.json is not a JSON object");
  Result<SecretBytes> out = NotFound("no credentials for " + registry);
  auto auths = doc.find("auths");
  if (auths != doc.end() && auths->is_object()) {
    for (const std::string& key : {registry, "https://" + registry, "http://" + registry}) {
      auto entry = auths->find(key);
      if (entry == auths->end() || !entry->is_object() || !entry->contains("auth") ||
          !(*entry)["auth"].is_string()) {
        continue;
      }
      auto decoded = Base64Decode((*entry)["auth"].get<std::string>());
      if (!decoded.ok() || std::find(decoded->begin(), decoded->end(), ':') == decoded->end()) {
        out = InvalidArgument("auth.json: the entry for " + registry + " is not base64 of user:pass");
      } else {
        out = SecretBytes(*decoded);
      }
      if (decoded.ok()) SecureWipe(*decoded);
      break;
    }
  }
  // The document held secrets: wipe its strings before it is freed.
  std::function<void(json&)> wipe = [&](json& j) {
    if (j.is_string()) {
      auto& s = j.get_ref<std::string&>();
      SecureWipe({reinterpret_cast<std::uint8_t*>(s.data()), s.size()});
    } else if (j.is_structured()) {
      for (json& child : j) wipe(child);
    }
  };
  wipe(doc);
  return out;
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
