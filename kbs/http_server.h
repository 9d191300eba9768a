// A small HTTP/1.1 server for the key broker, plain or over TLS (1.2 or later): one request per
// connection (Connection: close),
// Content-Length bodies only (no chunked requests), headers capped at 16 KiB and bodies at
// 1 MiB, a 5 s deadline per connection. Requests are served one at a time by the accept
// thread: the broker's work per request is a few milliseconds, and a stalled client holds the
// server for at most the deadline.
//
// Thread-safety: Stop() may be called from any thread; the handler runs on the server thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sealroot::kbs {

struct HttpRequest {
  std::string method;
  std::string target;                          // path and query, as sent
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string peer;  // "address:port"

  // The value of cookie `name`, or "" if the request has none.
  std::string Cookie(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// The server's TLS identity: a PEM certificate (chain) and its private key.
struct TlsIdentity {
  std::string cert_file;
  std::string key_file;
};

class HttpServer {
 public:
  // Listens on "host:port" (port 0 picks one; see port()); with `tls`, serves HTTPS only (a
  // certificate or key that does not load, or do not match, is an error here, not per request).
  static Result<std::unique_ptr<HttpServer>> Start(const std::string& address, HttpHandler handler,
                                                   const std::optional<TlsIdentity>& tls = std::nullopt);
  virtual ~HttpServer() = default;
  virtual std::uint16_t port() const = 0;
  // Stops accepting and joins the server thread.
  virtual void Stop() = 0;
};

}  // namespace sealroot::kbs
