#include "rpc/address.h"

#include <arpa/inet.h>

#include <charconv>

namespace sealroot::rpc {

Result<ListenAddress> ListenAddress::Parse(std::string_view text) {
  ListenAddress address;
  if (text.starts_with("unix://")) {
    address.kind = Kind::kUnix;
    address.path = std::string(text.substr(7));
    if (!address.path.starts_with('/'))
      return InvalidArgument("unix socket path must be absolute: " + std::string(text));
    if (address.path.size() >= 108) return InvalidArgument("unix socket path too long: " + std::string(text));
    return address;
  }
  if (text.starts_with("tcp://")) {
    std::string_view rest = text.substr(6);
    std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos)
      return InvalidArgument("tcp address needs HOST:PORT: " + std::string(text));
    address.kind = Kind::kTcp;
    address.host = std::string(rest.substr(0, colon));
    std::string_view port = rest.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgument("bad tcp port in " + std::string(text));
    }
    address.port = static_cast<std::uint16_t>(value);
    in_addr parsed{};
    if (inet_pton(AF_INET, address.host.c_str(), &parsed) != 1 || (ntohl(parsed.s_addr) >> 24) != 127) {
      // No authentication: only the local host may reach it.
      return InvalidArgument("tcp listen address must be an IPv4 loopback address: " + std::string(text));
    }
    return address;
  }
  return InvalidArgument("listen address must be unix:///PATH or tcp://127.0.0.1:PORT, got \"" +
                         std::string(text) + "\"");
}

std::string ListenAddress::ToString() const {
  return kind == Kind::kUnix ? "unix://" + path : "tcp://" + host + ":" + std::to_string(port);
}

}  // namespace sealroot::rpc
