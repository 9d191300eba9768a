// A small HTTP client over libcurl for the registry source: streaming GETs read through the
// Reader interface with bounded buffering (the transfer pauses while the reader is behind).
// Redirects are not followed here: the caller decides, so Authorization never crosses hosts.
// Proxies come from the usual environment variables (libcurl's http_proxy/https_proxy/no_proxy).
// Private to image/.
//
// Thread-safety: an HttpClient is immutable and shared; each HttpStream is used by one thread.
#pragma once

#include <curl/curl.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/reader.h"
#include "base/status.h"

namespace sealroot::image::internal {

struct TlsConfig {
  bool verify = true;                // false: certificates and host names are not checked
  std::vector<std::string> ca_pems;  // extra trusted CAs (--cert-dir *.crt), besides the system's
  std::string client_cert_file;      // --cert-dir *.cert
  std::string client_key_file;       // --cert-dir *.key
};

class HttpStream final : public Reader {
 public:
  ~HttpStream() override;
  long status() const { return status_; }
  // Response header (lowercase name); empty if absent.
  std::string Header(const std::string& lowercase_name) const;
  // The Location of a 3xx response, resolved against the request URL.
  const std::string& redirect_url() const { return redirect_url_; }
  // Body bytes; 0 at the end. A broken connection is kUnavailable (retryable).
  Result<std::size_t> Read(std::span<std::uint8_t> out) override;

 private:
  friend class HttpClient;
  HttpStream() = default;
  Status Start(CURL* easy, curl_slist* headers);
  Status Pump();
  static std::size_t OnWrite(char* data, std::size_t size, std::size_t count, void* self);
  static std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* self);

  CURLM* multi_ = nullptr;
  CURL* easy_ = nullptr;
  curl_slist* headers_list_ = nullptr;
  std::vector<std::uint8_t> pending_;
  std::size_t pending_pos_ = 0;
  bool paused_ = false;
  bool headers_done_ = false;
  bool done_ = false;
  CURLcode result_ = CURLE_OK;
  long status_ = 0;
  std::string url_;
  std::string redirect_url_;
  std::map<std::string, std::string> response_headers_;
};

class HttpClient {
 public:
  explicit HttpClient(TlsConfig tls) : tls_(std::move(tls)) {}
  // Starts a GET and returns once the status line and headers arrived. `headers` are full
  // header lines ("Accept: ..."); offset > 0 adds "Range: bytes=<offset>-".
  Result<std::unique_ptr<HttpStream>> Get(const std::string& url, const std::vector<std::string>& headers,
                                          std::uint64_t offset = 0) const;
  // A GET whose whole body (at most max_body bytes) is wanted.
  struct Response {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;
    std::string redirect_url;
  };
  Result<Response> Fetch(const std::string& url, const std::vector<std::string>& headers,
                         std::size_t max_body) const;

 private:
  TlsConfig tls_;
};

// scheme://host[:port] of a URL (for same-origin checks), lowercase.
std::string UrlOrigin(const std::string& url);
std::string UrlEscape(const std::string& text);

}  // namespace sealroot::image::internal
