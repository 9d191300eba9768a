// ListenAddress: where a ttrpc or gRPC server listens and a client connects, as written in
// configs and on command lines: "unix:///abs/path" or "tcp://127.0.0.1:PORT" (loopback only:
// the protocols here carry no authentication).
//
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sealroot::rpc {

struct ListenAddress {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string path;  // kUnix
  std::string host;  // kTcp: an IPv4 loopback address
  std::uint16_t port = 0;

  static Result<ListenAddress> Parse(std::string_view text);
  static ListenAddress Unix(std::string path) { return {.kind = Kind::kUnix, .path = std::move(path)}; }
  std::string ToString() const;
};

}  // namespace sealroot::rpc
