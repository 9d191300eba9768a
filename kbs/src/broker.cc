#include "kbs/broker.h"

#include <fcntl.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/log.h"
#include "base/thread_annotations.h"
#include "kbs/protocol.h"
#include "local-attest/p256.h"

namespace sealroot::kbs {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Session {
  std::string nonce;          // empty once consumed by an attestation
  Clock::time_point expires;  // challenge expiry, then session expiry
  bool attested = false;
  json tee_pubkey;
  std::string identity;  // for logs
};

HttpResponse Error(int status, std::string_view type, std::string_view detail) {
  json info = {{"type", "https://github.com/confidential-containers/kbs/errors/" + std::string(type)},
               {"detail", detail}};
  return {status, "application/json", {}, info.dump()};
}

Result<local_attest::sgx::Measurement> HexMeasurement(const json& entry, const char* name) {
  std::string hex = entry.at(name).get<std::string>();
  auto bytes = HexDecode(hex);
  if (!bytes.ok() || bytes->size() != 32) return InvalidArgument(std::string(name) + " is not 64 hex digits");
  local_attest::sgx::Measurement m;
  std::copy(bytes->begin(), bytes->end(), m.begin());
  return m;
}

Result<local_attest::IdentityPolicy> ParseEntry(const json& entry) {
  if (!entry.is_object()) return InvalidArgument("a trusted entry is not an object");
  for (auto& [key, value] : entry.items()) {
    if (key != "mrenclave" && key != "mrsigner" && key != "isv_prod_id" && key != "min_isv_svn" &&
        key != "config_id") {
      return InvalidArgument("unknown key \"" + key + "\" in a trusted entry");
    }
  }
  local_attest::IdentityPolicy p;
  if (entry.contains("mrenclave")) {
    SR_ASSIGN_OR_RETURN(p.mr_enclave, HexMeasurement(entry, "mrenclave"));
  }
  if (entry.contains("mrsigner")) {
    local_attest::SignerPolicy s;
    SR_ASSIGN_OR_RETURN(s.mr_signer, HexMeasurement(entry, "mrsigner"));
    if (!entry.contains("isv_prod_id")) return InvalidArgument("a signer entry needs isv_prod_id");
    s.isv_prod_id = entry.at("isv_prod_id").get<std::uint16_t>();
    s.min_isv_svn = entry.value("min_isv_svn", std::uint16_t{0});
    p.signer = s;
  } else if (entry.contains("isv_prod_id") || entry.contains("min_isv_svn")) {
    return InvalidArgument("isv_prod_id/min_isv_svn need mrsigner");
  }
  if (entry.contains("config_id")) {
    auto bytes = HexDecode(entry.at("config_id").get<std::string>());
    if (!bytes.ok() || bytes->empty() || bytes->size() > 64)
      return InvalidArgument("config_id: up to 128 hex digits");
    local_attest::sgx::ConfigId id{};
    std::copy(bytes->begin(), bytes->end(), id.begin());
    p.config_id = id;
  }
  SR_RETURN_IF_ERROR(p.Validate());
  return p;
}

// Type errors of the JSON library (a string where a number belongs) become InvalidArgument.
Result<local_attest::IdentityPolicy> ParseEntryOrError(const json& entry) {
  try {
    return ParseEntry(entry);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("malformed trusted entry: ") + e.what());
  }
}

class BrokerImpl final : public Broker {
 public:
  BrokerImpl(BrokerOptions options, EvpPkeyPtr token_key)
      : options_(std::move(options)), token_key_(std::move(token_key)) {
    for (auto& p : options_.trusted) p.allow_debug = false;
  }

  HttpResponse Handle(const HttpRequest& req) override {
    try {
      return Route(req);
    } catch (const json::exception& e) {  // a member of the wrong JSON type
      return Refuse(req, 400, "InvalidRequest", std::string("malformed JSON: ") + e.what());
    }
  }

 private:
  using Endpoint = HttpResponse (BrokerImpl::*)(const HttpRequest&);

  HttpResponse Route(const HttpRequest& req) {
    std::string target = req.target.substr(0, req.target.find('?'));
    if (target == "/kbs/v0/auth") return Post(req, &BrokerImpl::Auth);
    if (target == "/kbs/v0/attest") return Post(req, &BrokerImpl::Attest);
    if (target.starts_with(kResourcePrefix)) {
      if (req.method != "GET") return Refuse(req, 405, "MethodNotAllowed", "resources are only read here");
      return Resource(req, target.substr(std::string_view(kResourcePrefix).size()));
    }
    return Refuse(req, 404, "NotFound", "no such endpoint " + target);
  }

  HttpResponse Post(const HttpRequest& req, Endpoint endpoint) {
    if (req.method != "POST") return Refuse(req, 405, "MethodNotAllowed", req.target + " takes POST");
    return (this->*endpoint)(req);
  }

  HttpResponse Refuse(const HttpRequest& req, int status, std::string_view type, const std::string& why) {
    SR_LOG(kWarning) << "kbs: refused " << req.method << " " << req.target << " from " << req.peer << ": "
                     << why;
    return Error(status, type, status == 401 ? "attestation required or refused" : type);
  }

  HttpResponse Auth(const HttpRequest& req) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("version") || !body.contains("tee")) {
      return Refuse(req, 400, "InvalidRequest", "auth request is not a KBS Request");
    }
    if (body["version"] != kProtocolVersion) {
      return Refuse(req, 401, "ProtocolVersion",
                    "protocol version " + body["version"].dump() + " is not " + kProtocolVersion);
    }
    if (body["tee"] != "sgx")
      return Refuse(req, 401, "UnsupportedTee", "tee " + body["tee"].dump() + " (only sgx)");
    std::array<std::uint8_t, 32> id_bytes, nonce_bytes;
    RandomBytes(id_bytes);
    RandomBytes(nonce_bytes);
    std::string id = HexEncode(id_bytes);
    Session s{Base64Encode(nonce_bytes), Clock::now() + options_.challenge_ttl, false, {}, {}};
    std::string nonce = s.nonce;
    {
      MutexLock lock(mu_);
      Evict();
      if (sessions_.size() >= options_.max_sessions) {
        return Refuse(req, 401, "TooManySessions", "session table full");
      }
      sessions_[id] = std::move(s);
    }
    json challenge = {{"nonce", nonce}, {"extra-params", ""}};
    HttpResponse r{200, "application/json", {}, challenge.dump()};
    r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + id + "; Path=/kbs; HttpOnly");
    return r;
  }

  // Verifies the attestation of the session named by the cookie; the nonce is consumed first,
  // so whatever happens a challenge answers once.
  HttpResponse Attest(const HttpRequest& req) {
    std::string id = req.Cookie(kSessionCookie);
    std::string nonce;
    {
      MutexLock lock(mu_);
      auto it = sessions_.find(id);
      if (it == sessions_.end())
        return Refuse(req, 401, "InvalidCookie", "attestation without a known session");
      Session& s = it->second;
      if (s.nonce.empty())
        return Refuse(req, 401, "NonceUsed", "the session's challenge was already answered");
      nonce = std::move(s.nonce);
      s.nonce.clear();
      if (Clock::now() > s.expires) {
        sessions_.erase(it);
        return Refuse(req, 401, "ExpiredCookie", "the challenge expired");
      }
    }
    Result<std::pair<json, std::string>> verdict = Verify(req.body, nonce);
    if (!verdict.ok()) {
      Drop(id);
      return Refuse(req, 401, "AttestationFailed", verdict.status().message());
    }
    std::string jwt = Token(verdict->first, verdict->second);
    {
      MutexLock lock(mu_);
      auto it = sessions_.find(id);
      if (it == sessions_.end()) return Refuse(req, 401, "InvalidCookie", "session gone");
      it->second.attested = true;
      it->second.tee_pubkey = verdict->first;
      it->second.identity = verdict->second;
      it->second.expires = Clock::now() + options_.session_ttl;
    }
    SR_LOG(kInfo) << "kbs: attested " << req.peer << ": " << verdict->second;
    HttpResponse r{200, "application/json", {}, json{{"token", jwt}}.dump()};
    r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + id + "; Path=/kbs; HttpOnly");
    return r;
  }

  // The session's tee-pubkey and a description of the enclave, or why the evidence is refused.
  Result<std::pair<json, std::string>> Verify(const std::string& text, const std::string& nonce) {
    json body = json::parse(text, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return InvalidArgument("attestation is not a JSON object");
    const json runtime = body.value("runtime-data", json());
    const json evidence = body.value("tee-evidence", json());
    if (!runtime.is_object() || !evidence.is_object())
      return InvalidArgument("missing runtime-data or tee-evidence");
    if (runtime.value("nonce", "") != nonce)
      return PermissionDenied("the nonce is not this session's challenge");
    json pubkey = runtime.value("tee-pubkey", json());
    SR_RETURN_IF_ERROR(ValidateTeePubkey(pubkey));
    if (evidence.value("additional_evidence", "") != "")
      return InvalidArgument("additional evidence is not accepted");
    const json primary = evidence.value("primary_evidence", json());
    if (!primary.is_object() || !primary.contains("quote") || !primary["quote"].is_string()) {
      return InvalidArgument("tee-evidence.primary_evidence.quote is missing");
    }
    auto quote = Base64Decode(primary["quote"].get_ref<const std::string&>());
    if (!quote.ok()) return InvalidArgument("the quote is not base64");
    SR_ASSIGN_OR_RETURN(
        local_attest::sgx::ReportBody body_of,
        local_attest::sgx::VerifyQuote(*quote, options_.root_cert_pem, options_.quote_options));
    std::string who = local_attest::DescribeIdentity(body_of);
    local_attest::sgx::ReportData expected = RuntimeDataBinding(nonce, pubkey);
    if (!ConstantTimeEqual(expected, body_of.report_data)) {
      return PermissionDenied("report_data does not bind this nonce and tee-pubkey (" + who + ")");
    }
    if (body_of.attributes.flags & local_attest::sgx::kFlagDebug)
      return PermissionDenied("DEBUG enclave refused: " + who);
    std::string reasons;
    for (const local_attest::IdentityPolicy& p : options_.trusted) {
      Status s = local_attest::CheckIdentity(body_of, p);
      if (s.ok()) return std::make_pair(pubkey, who);
      reasons += (reasons.empty() ? "" : "; ") + s.message();
    }
    return PermissionDenied("untrusted enclave " + who +
                            (reasons.empty() ? ": the policy trusts nothing" : ": " + reasons));
  }

  // An ES256 JWT for the attester (the session cookie is what resource requests present).
  std::string Token(const json& pubkey, const std::string& who) {
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    json claims = {{"iat", now.count()},
                   {"exp", now.count() + options_.session_ttl.count()},
                   {"iss", "sealroot-kbs"},
                   {"tee-pubkey", pubkey},
                   {"enclave", who}};
    std::string signing = Base64UrlEncode(AsBytes(json{{"alg", "ES256"}, {"typ", "JWT"}}.dump())) + "." +
                          Base64UrlEncode(AsBytes(claims.dump()));
    Result<local_attest::sgx::EcdsaSignature> sig = p256::Sign(token_key_.get(), AsBytes(signing));
    return signing + "." + (sig.ok() ? Base64UrlEncode(*sig) : "");
  }

  HttpResponse Resource(const HttpRequest& req, std::string_view path) {
    json pubkey;
    std::string who;
    {
      MutexLock lock(mu_);
      auto it = sessions_.find(req.Cookie(kSessionCookie));
      if (it == sessions_.end() || !it->second.attested) {
        return Refuse(req, 401, "Unauthenticated", "resource request without an attested session");
      }
      if (Clock::now() > it->second.expires) {
        sessions_.erase(it);
        return Refuse(req, 401, "ExpiredCookie", "the attested session expired");
      }
      pubkey = it->second.tee_pubkey;
      who = it->second.identity;
    }
    Result<ResourceId> id = ResourceId::Parse(path);
    if (!id.ok()) return Refuse(req, 404, "NotFound", id.status().message());
    std::string file = JoinPath(options_.resource_dir, id->Path());
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return Refuse(req, 404, "NotFound", "no resource " + id->Path());
    Result<std::string> bytes = ReadFd(fd.get(), kMaxResourceSize);
    if (!bytes.ok())
      return Refuse(req, 404, "NotFound", "resource " + id->Path() + ": " + bytes.status().message());
    Result<std::string> sealed = SealToTeeKey(pubkey, AsBytes(*bytes));
    SecureWipe({reinterpret_cast<std::uint8_t*>(bytes->data()), bytes->size()});
    if (!sealed.ok()) return Refuse(req, 500, "Internal", sealed.status().message());
    SR_LOG(kInfo) << "kbs: released " << id->Path() << " to " << who;
    return {200, "application/json", {}, *std::move(sealed)};
  }

  void Drop(const std::string& id) {
    MutexLock lock(mu_);
    sessions_.erase(id);
  }

  void Evict() SR_REQUIRES(mu_) {
    auto now = Clock::now();
    std::erase_if(sessions_, [&](const auto& entry) { return now > entry.second.expires; });
  }

  BrokerOptions options_;
  const EvpPkeyPtr token_key_;  // signs the attestation tokens of this broker run
  Mutex mu_;
  std::map<std::string, Session> sessions_ SR_GUARDED_BY(mu_);
};

}  // namespace

Result<std::vector<local_attest::IdentityPolicy>> LoadBrokerPolicy(const std::string& path) {
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return InvalidArgument("broker policy " + path + ": not a JSON object");
  std::vector<local_attest::IdentityPolicy> out;
  for (auto& [key, value] : doc.items()) {
    if (key != "trusted" || !value.is_array()) {
      return InvalidArgument("broker policy " + path + ": unknown or malformed key \"" + key + "\"");
    }
    for (const json& entry : value) {
      Result<local_attest::IdentityPolicy> p = ParseEntryOrError(entry);
      if (!p.ok()) return std::move(p).status().WithContext("broker policy " + path);
      out.push_back(*std::move(p));
    }
  }
  return out;
}

Result<std::unique_ptr<Broker>> Broker::Create(BrokerOptions options) {
  if (options.root_cert_pem.empty()) return InvalidArgument("the broker needs a quote root certificate");
  if (options.resource_dir.empty()) return InvalidArgument("the broker needs a resource directory");
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr token_key, p256::GenerateKey());
  return std::unique_ptr<Broker>(std::make_unique<BrokerImpl>(std::move(options), std::move(token_key)));
}

}  // namespace sealroot::kbs
