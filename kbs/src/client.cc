#include "kbs/client.h"

#include <curl/curl.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/log.h"
#include "base/thread_annotations.h"
#include "kbs/protocol.h"

namespace sealroot::kbs {
namespace {

using nlohmann::json;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct HttpResult {
  long status = 0;
  std::string body;
};

std::size_t OnBody(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > kMaxResourceSize * 2) return 0;  // aborts the transfer
  body->append(data, size * n);
  return size * n;
}

class Client final : public KbsClient {
 public:
  Client(local_attest::sgx::Tee& tee, ClientOptions options, std::unique_ptr<CURL, CurlDeleter> curl)
      : tee_(&tee), options_(std::move(options)), curl_(std::move(curl)) {}

  Status Attest() override {
    MutexLock lock(mu_);
    return AttestLocked();
  }

  Result<SecretBytes> GetResource(std::string_view uri) override {
    SR_ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(uri));
    MutexLock lock(mu_);
    if (!key_) SR_RETURN_IF_ERROR(AttestLocked());
    SR_ASSIGN_OR_RETURN(HttpResult r, Request("GET", std::string(kResourcePrefix) + id.Path(), ""));
    if (r.status == 401) {  // the session expired: attest again, once
      SR_RETURN_IF_ERROR(AttestLocked());
      SR_ASSIGN_OR_RETURN(r, Request("GET", std::string(kResourcePrefix) + id.Path(), ""));
    }
    SR_RETURN_IF_ERROR(StatusOf(r, "resource " + id.Path()));
    Result<SecretBytes> plain = key_->Open(r.body);
    if (!plain.ok()) return std::move(plain).status().WithContext("resource " + id.Path());
    return plain;
  }

 private:
  Status AttestLocked() SR_REQUIRES(mu_) {
    key_.reset();
    json request = {{"version", kProtocolVersion}, {"tee", "sgx"}, {"extra-params", ""}};
    SR_ASSIGN_OR_RETURN(HttpResult auth, Request("POST", "/kbs/v0/auth", request.dump()));
    SR_RETURN_IF_ERROR(StatusOf(auth, "KBS auth"));
    json challenge = json::parse(auth.body, nullptr, false);
    if (challenge.is_discarded() || !challenge.is_object() || !challenge.contains("nonce") ||
        !challenge["nonce"].is_string()) {
      return InvalidArgument("KBS auth: the challenge has no nonce");
    }
    std::string nonce = challenge["nonce"].get<std::string>();
    SR_ASSIGN_OR_RETURN(TeeKey key, TeeKey::Generate());
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> quote,
                        tee_->CreateQuote(RuntimeDataBinding(nonce, key.public_jwk())));
    json attestation = {
        {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", key.public_jwk()}}},
        {"tee-evidence",
         {{"primary_evidence", {{"quote", Base64Encode(quote)}}}, {"additional_evidence", ""}}}};
    SR_ASSIGN_OR_RETURN(HttpResult attest, Request("POST", "/kbs/v0/attest", attestation.dump()));
    SR_RETURN_IF_ERROR(StatusOf(attest, "KBS attestation"));
    json token = json::parse(attest.body, nullptr, false);
    if (token.is_discarded() || !token.is_object() || !token.contains("token") ||
        !token["token"].is_string()) {
      return InvalidArgument("KBS attestation: the answer holds no token");
    }
    token_ = token["token"].get<std::string>();
    key_ = std::make_unique<TeeKey>(std::move(key));
    SR_LOG(kInfo) << "kbs: attested to " << options_.url;
    return OkStatus();
  }

  static Status StatusOf(const HttpResult& r, const std::string& what) {
    if (r.status == 200) return OkStatus();
    std::string detail;
    json info = json::parse(r.body, nullptr, false);
    if (info.is_object() && info.contains("detail") && info["detail"].is_string()) {
      detail = ": " + info["detail"].get<std::string>();
    }
    std::string msg = what + ": the key broker answered " + std::to_string(r.status) + detail;
    if (r.status == 401 || r.status == 403) return PermissionDenied(msg);
    if (r.status == 404) return NotFound(msg);
    return Unavailable(msg);
  }

  // One request on the shared handle (its cookie engine carries the KBS session).
  Result<HttpResult> Request(const char* method, const std::string& path, const std::string& body)
      SR_REQUIRES(mu_) {
    CURL* c = curl_.get();
    HttpResult out;
    std::string url = options_.url + path;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    if (std::string_view(method) == "POST") {
      curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
      list = curl_slist_append(list, "Expect:");
      headers.reset(list);
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    } else {
      curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
    if (rc != CURLE_OK) {
      return Unavailable(std::string(method) + " " + url + ": " + curl_easy_strerror(rc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
    return out;
  }

  local_attest::sgx::Tee* tee_;
  const ClientOptions options_;
  Mutex mu_;
  std::unique_ptr<CURL, CurlDeleter> curl_ SR_GUARDED_BY(mu_);
  std::unique_ptr<TeeKey> key_ SR_GUARDED_BY(mu_);
  std::string token_ SR_GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<KbsClient>> KbsClient::Create(local_attest::sgx::Tee& tee, ClientOptions options) {
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://")) {
    return InvalidArgument("key broker URL must be http:// or https://: " + options.url);
  }
  while (options.url.ends_with("/")) options.url.pop_back();
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Internal("curl_easy_init failed");
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");  // the cookie engine, in memory only
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!options.ca_pem.empty()) {
    curl_blob ca{options.ca_pem.data(), options.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  } else if (!options.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  return std::unique_ptr<KbsClient>(std::make_unique<Client>(tee, std::move(options), std::move(curl)));
}

}  // namespace sealroot::kbs
