// Limits: what one ttrpc server (and the agent's gRPC server, which shares its executor) lets
// clients use. design/api.md "Limits" gives the defaults and why.
//
// Thread-safety: a value type.
#pragma once

#include <chrono>
#include <cstddef>

namespace sealroot::rpc {

inline constexpr std::size_t kDefaultMaxMessageSize = 4u << 20;

struct Limits {
  std::size_t max_message_size = kDefaultMaxMessageSize;  // ttrpc's own limit, also applied to gRPC
  std::size_t max_connections = 64;
  std::size_t max_requests_in_flight = 256;
  // Calls the handler says may block for long (RpcHandler::IsBlocking): in total (below
  // max_requests_in_flight) and per ttrpc connection.
  std::size_t max_blocking_calls = 128;
  std::size_t max_blocking_calls_per_connection = 32;
  std::chrono::milliseconds frame_timeout{30'000};  // a started frame must complete within this
};

}  // namespace sealroot::rpc
