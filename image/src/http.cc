#include "image/src/http.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "base/crypto.h"
#include "base/interrupt.h"

namespace sealroot::image::internal {
namespace {

constexpr long kBufferSize = 512 * 1024;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Adds the --cert-dir CAs to the verification store libcurl set up from the system CAs.
CURLcode AddCas(CURL*, void* ssl_ctx, void* user) {
  const auto* tls = static_cast<const TlsConfig*>(user);
  X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(ssl_ctx));
  for (const std::string& pem : tls->ca_pems) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, cert);  // takes its own reference
      X509_free(cert);
    }
    ERR_clear_error();  // the loop ends on a "no start line" error
  }
  return CURLE_OK;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

HttpStream::~HttpStream() {
  if (multi_ && easy_) curl_multi_remove_handle(multi_, easy_);
  if (easy_) curl_easy_cleanup(easy_);
  if (multi_) curl_multi_cleanup(multi_);
  if (headers_list_) curl_slist_free_all(headers_list_);
}

std::size_t HttpStream::OnWrite(char* data, std::size_t size, std::size_t count, void* self_ptr) {
  auto* self = static_cast<HttpStream*>(self_ptr);
  std::size_t n = size * count;
  if (self->pending_pos_ < self->pending_.size()) {
    self->paused_ = true;
    return CURL_WRITEFUNC_PAUSE;  // the reader is behind: hold the transfer (bounded memory)
  }
  self->pending_.assign(data, data + n);
  self->pending_pos_ = 0;
  return n;
}

std::size_t HttpStream::OnHeader(char* data, std::size_t size, std::size_t count, void* self_ptr) {
  auto* self = static_cast<HttpStream*>(self_ptr);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    self->response_headers_.clear();  // a new response (after 100 Continue)
    return size * count;
  }
  if (line == "\r\n" || line == "\n") {
    long code = 0;
    curl_easy_getinfo(self->easy_, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200) self->headers_done_ = true;
    return size * count;
  }
  std::size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    self->response_headers_[Lower(std::string(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  return size * count;
}

Status HttpStream::Start(CURL* easy, curl_slist* headers) {
  easy_ = easy;
  headers_list_ = headers;
  multi_ = curl_multi_init();
  if (!multi_) return Internal("curl_multi_init failed");
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpStream::OnWrite);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &HttpStream::OnHeader);
  curl_easy_setopt(easy_, CURLOPT_HEADERDATA, this);
  if (curl_multi_add_handle(multi_, easy_) != CURLM_OK) return Internal("curl_multi_add_handle failed");
  while (!headers_done_ && !done_) SR_RETURN_IF_ERROR(Pump());
  if (!headers_done_ && result_ != CURLE_OK) {
    return Unavailable("GET " + url_ + ": " + curl_easy_strerror(result_));
  }
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status_);
  if (status_ >= 300 && status_ < 400) {
    char* location = nullptr;
    curl_easy_getinfo(easy_, CURLINFO_REDIRECT_URL, &location);
    if (location) redirect_url_ = location;
  }
  return OkStatus();
}

Status HttpStream::Pump() {
  if (Interrupted()) return Cancelled("GET " + url_ + ": interrupted");
  int running = 0;
  if (curl_multi_perform(multi_, &running) != CURLM_OK) return Internal("curl_multi_perform failed");
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg == CURLMSG_DONE) {
      done_ = true;
      result_ = msg->data.result;
    }
  }
  if (!done_ && pending_pos_ >= pending_.size() && !paused_) {
    curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
  }
  return OkStatus();
}

std::string HttpStream::Header(const std::string& name) const {
  auto it = response_headers_.find(name);
  return it == response_headers_.end() ? std::string() : it->second;
}

Result<std::size_t> HttpStream::Read(std::span<std::uint8_t> out) {
  while (pending_pos_ >= pending_.size()) {
    if (paused_) {
      paused_ = false;
      pending_.clear();
      pending_pos_ = 0;
      curl_easy_pause(easy_, CURLPAUSE_CONT);  // may deliver the held data right away
      continue;
    }
    if (done_) {
      if (result_ != CURLE_OK) return Unavailable("GET " + url_ + ": " + curl_easy_strerror(result_));
      return std::size_t{0};
    }
    SR_RETURN_IF_ERROR(Pump());
  }
  std::size_t n = std::min(out.size(), pending_.size() - pending_pos_);
  std::memcpy(out.data(), pending_.data() + pending_pos_, n);
  pending_pos_ += n;
  return n;
}

Result<std::unique_ptr<HttpStream>> HttpClient::Get(const std::string& url,
                                                    const std::vector<std::string>& headers,
                                                    std::uint64_t offset) const {
  GlobalInit();
  CURL* easy = curl_easy_init();
  if (!easy) return Internal("curl_easy_init failed");
  std::unique_ptr<HttpStream> stream(new HttpStream());
  stream->url_ = url;
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  if (offset > 0) list = curl_slist_append(list, ("Range: bytes=" + std::to_string(offset) + "-").c_str());
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, kBufferSize);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for 60 s) fails and is retried with Range.
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "sealroot/" SEALROOT_VERSION);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, tls_.verify ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, tls_.verify ? 2L : 0L);
  if (!tls_.ca_pems.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, &AddCas);
    curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, &tls_);
  }
  if (!tls_.client_cert_file.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLCERT, tls_.client_cert_file.c_str());
    curl_easy_setopt(easy, CURLOPT_SSLKEY, tls_.client_key_file.c_str());
  }
  SR_RETURN_IF_ERROR(stream->Start(easy, list));
  return stream;
}

Result<HttpClient::Response> HttpClient::Fetch(const std::string& url,
                                               const std::vector<std::string>& headers,
                                               std::size_t max_body) const {
  SR_ASSIGN_OR_RETURN(std::unique_ptr<HttpStream> stream, Get(url, headers));
  Response r;
  r.status = stream->status();
  r.headers = stream->response_headers_;
  r.redirect_url = stream->redirect_url();
  std::vector<std::uint8_t> buf(64 * 1024);
  while (true) {
    SR_ASSIGN_OR_RETURN(std::size_t n, stream->Read(buf));
    if (n == 0) break;
    if (r.body.size() + n > max_body)
      return ResourceExhausted("GET " + url + ": response larger than " + std::to_string(max_body) +
                               " bytes");
    r.body.append(reinterpret_cast<const char*>(buf.data()), n);
  }
  return r;
}

std::string UrlOrigin(const std::string& url) {
  std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return Lower(url);
  std::size_t host_end = url.find_first_of("/?#", scheme_end + 3);
  return Lower(url.substr(0, host_end));
}

std::string UrlEscape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

}  // namespace sealroot::image::internal
