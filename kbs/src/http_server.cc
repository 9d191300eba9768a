#include "kbs/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <thread>
#include <variant>

#include "base/fd.h"
#include "base/log.h"
#include "base/socket.h"

namespace sealroot::kbs {
namespace {

constexpr std::size_t kMaxHeader = 16 * 1024;
constexpr std::size_t kMaxBody = 1 << 20;
constexpr auto kConnectionDeadline = std::chrono::seconds(5);

using Clock = std::chrono::steady_clock;

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    default:
      return "Internal Server Error";
  }
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

std::string OpenSslError() {
  char text[256] = "unknown error";
  if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, text, sizeof text);
  ERR_clear_error();
  return text;
}

Result<SslCtxPtr> LoadTls(const TlsIdentity& tls) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Internal("TLS: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1) {
    return InvalidArgument("TLS certificate " + tls.cert_file + ": " + OpenSslError());
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> key_file(BIO_new_file(tls.key_file.c_str(), "r"), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      key_file ? PEM_read_bio_PrivateKey(key_file.get(), nullptr, nullptr, nullptr) : nullptr,
      &EVP_PKEY_free);
  if (!key) return InvalidArgument("TLS key " + tls.key_file + ": " + OpenSslError());
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 || SSL_CTX_check_private_key(ctx.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("TLS key " + tls.key_file + " does not match " + tls.cert_file);
  }
  return ctx;
}

// One accepted connection, plain or TLS. Every read and write is bounded by the connection's
// deadline (the socket's timeouts are set to what is left of it before each call).
class Connection {
 public:
  Connection(UniqueFd fd, Clock::time_point deadline) : fd_(std::move(fd)), deadline_(deadline) {}

  // The TLS handshake; false (logged) when the client does not complete it.
  bool StartTls(SSL_CTX* ctx) {
    ssl_.reset(SSL_new(ctx));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1 || !ArmTimeouts() || SSL_accept(ssl_.get()) != 1) {
      SR_LOG(kInfo) << "key broker: TLS handshake failed: " << OpenSslError();
      ssl_.reset();
      return false;
    }
    return true;
  }

  // Appends more bytes to `buf`; false on EOF, error or when the deadline has passed.
  bool ReadMore(std::string& buf) {
    if (!ArmTimeouts()) return false;
    char chunk[8192];
    long n = ssl_ ? SSL_read(ssl_.get(), chunk, sizeof chunk) : ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  void SendAll(std::string_view data) {
    while (!data.empty()) {
      if (!ArmTimeouts()) return;
      long n = ssl_ ? SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()))
                    : ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  ~Connection() {
    if (ssl_) SSL_shutdown(ssl_.get());
  }

 private:
  bool ArmTimeouts() {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline_ - Clock::now()).count();
    if (left <= 0) return false;
    timeval tv{static_cast<time_t>(left / 1000000), static_cast<suseconds_t>(left % 1000000)};
    return ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
           ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0;
  }

  UniqueFd fd_;
  const Clock::time_point deadline_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
};

void Respond(Connection& conn, const HttpResponse& r) {
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + Reason(r.status) + "\r\n";
  head += "Content-Type: " + r.content_type + "\r\nContent-Length: " + std::to_string(r.body.size()) +
          "\r\nConnection: close\r\n";
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  head += "\r\n";
  conn.SendAll(head);
  conn.SendAll(r.body);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

// Parses one request; an HttpResponse to send instead when it is malformed.
std::variant<HttpRequest, HttpResponse> ReadRequest(Connection& conn) {
  auto error = [](int status, std::string why) {
    return HttpResponse{status, "text/plain", {}, std::move(why) + "\n"};
  };
  std::string buf;
  std::size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > kMaxHeader) return error(413, "header too large");
    if (!conn.ReadMore(buf)) return error(400, "incomplete request");
  }
  HttpRequest req;
  std::string_view head(buf.data(), end);
  std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  std::size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
    return error(400, "bad request line");
  }
  req.method = std::string(line.substr(0, sp1));
  req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  while (!rest.empty()) {
    std::size_t eol = rest.find("\r\n");
    std::string_view h = rest.substr(0, eol);
    std::size_t colon = h.find(':');
    if (colon == std::string_view::npos) return error(400, "bad header");
    req.headers[Lower(std::string(h.substr(0, colon)))] = Trim(h.substr(colon + 1));
    if (eol == std::string_view::npos) break;
    rest.remove_prefix(eol + 2);
  }
  if (req.headers.contains("transfer-encoding")) return error(400, "chunked bodies are not supported");
  std::size_t length = 0;
  if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
    auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), length);
    if (ec != std::errc() || p != it->second.data() + it->second.size())
      return error(400, "bad Content-Length");
    if (length > kMaxBody) return error(413, "body too large");
  }
  if (Lower(req.headers["expect"]) == "100-continue") conn.SendAll("HTTP/1.1 100 Continue\r\n\r\n");
  req.headers.erase("expect");
  req.body = buf.substr(end + 4);
  while (req.body.size() < length) {
    if (!conn.ReadMore(req.body)) return error(400, "incomplete body");
  }
  if (req.body.size() != length) return error(400, "bytes after the body");
  return req;
}

class Server final : public HttpServer {
 public:
  Server(UniqueFd listener, std::uint16_t port, HttpHandler handler, SslCtxPtr tls)
      : listener_(std::move(listener)), port_(port), handler_(std::move(handler)), tls_(std::move(tls)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Server() override { Stop(); }
  std::uint16_t port() const override { return port_; }
  void Stop() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd pfd{listener_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      UniqueFd fd(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
      if (!fd) continue;
      char ip[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
      Connection conn(std::move(fd), Clock::now() + kConnectionDeadline);
      if (tls_ && !conn.StartTls(tls_.get())) continue;
      auto parsed = ReadRequest(conn);
      if (auto* bad = std::get_if<HttpResponse>(&parsed)) {
        Respond(conn, *bad);
        continue;
      }
      HttpRequest& req = std::get<HttpRequest>(parsed);
      req.peer = std::string(ip) + ":" + std::to_string(ntohs(peer.sin_port));
      Respond(conn, handler_(req));
    }
  }

  UniqueFd listener_;
  std::uint16_t port_;
  HttpHandler handler_;
  const SslCtxPtr tls_;  // null: plain HTTP
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::string HttpRequest::Cookie(std::string_view name) const {
  auto it = headers.find("cookie");
  if (it == headers.end()) return "";
  std::string_view all = it->second;
  while (!all.empty()) {
    std::size_t semi = all.find(';');
    std::string item = Trim(all.substr(0, semi));
    if (item.size() > name.size() && item.compare(0, name.size(), name) == 0 && item[name.size()] == '=') {
      return item.substr(name.size() + 1);
    }
    if (semi == std::string_view::npos) break;
    all.remove_prefix(semi + 1);
  }
  return "";
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address, HttpHandler handler,
                                                      const std::optional<TlsIdentity>& tls) {
  SslCtxPtr ctx;
  if (tls) {
    SR_ASSIGN_OR_RETURN(ctx, LoadTls(*tls));
  }
  std::size_t colon = address.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("listen address is not host:port: " + address);
  std::string host = address.substr(0, colon);
  int port = 0;
  auto [p, ec] = std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  if (ec != std::errc() || p != address.data() + address.size() || port < 0 || port > 65535) {
    return InvalidArgument("bad port in " + address);
  }
  if (host == "localhost") host = "127.0.0.1";
  SR_ASSIGN_OR_RETURN(UniqueFd fd, ListenTcp(host, static_cast<std::uint16_t>(port), 64));
  SR_ASSIGN_OR_RETURN(std::uint16_t bound, LocalPort(fd.get()));
  return std::unique_ptr<HttpServer>(
      std::make_unique<Server>(std::move(fd), bound, std::move(handler), std::move(ctx)));
}

}  // namespace sealroot::kbs
