// ttrpc (containerd/ttrpc) framing and a blocking client. The server side is rpc/server.h. Each frame is a
// 10-byte header — payload length (u32 BE), stream id (u32 BE, odd for client-initiated calls), message type
// (1 request, 2 response), flags — then a ttrpc.Request or ttrpc.Response protobuf (rpc/proto/ttrpc.proto).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/socket.h"
#include "base/status.h"
#include "rpc/address.h"
#include "rpc/limits.h"

namespace sealroot::rpc::ttrpc {

inline constexpr std::size_t kHeaderSize = 10;
inline constexpr std::uint8_t kTypeRequest = 1;
inline constexpr std::uint8_t kTypeResponse = 2;

struct FrameHeader {
  std::uint32_t length = 0;
  std::uint32_t stream_id = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
};

std::array<std::uint8_t, kHeaderSize> EncodeHeader(const FrameHeader& header);
FrameHeader DecodeHeader(std::span<const std::uint8_t, kHeaderSize> bytes);

// Writes one frame (header + payload) with a single writev, retrying short writes.
Status WriteFrame(int fd, const FrameHeader& header, std::string_view payload);

// Reads exactly out.size() bytes before `deadline` (kDeadlineExceeded), kOutOfRange on EOF.
Status ReadFull(int fd, std::span<std::uint8_t> out, std::chrono::steady_clock::time_point deadline);

// A blocking ttrpc client over one connection; calls are serialized. Requests and responses
// are limited to kDefaultMaxMessageSize.
//
// Thread-safety: one thread at a time.
class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ListenAddress& address);
  // Sends service/method with `payload`, returns the response payload or the server's status.
  Result<std::string> Call(std::string_view service, std::string_view method, std::string_view payload,
                           std::chrono::milliseconds timeout = std::chrono::minutes(10));

 private:
  explicit Client(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::uint32_t next_stream_ = 1;
};

// Connects a stream socket to `address` (unix or tcp; base/socket.h), trying until `deadline`.
Result<UniqueFd> Dial(const ListenAddress& address, Deadline deadline = {});

// Whether a ttrpc server still serves `address`: it is sent a call no server implements, and any
// response frame answers. kUnavailable: nothing listens, or the connection ended unanswered (a
// server killed while its listening socket was still open: the connection was taken into the
// backlog, which a bare connect cannot tell from a live server); kDeadlineExceeded: no answer
// within `timeout` (a busy server, or a stopped one).
Status Probe(const ListenAddress& address, std::chrono::milliseconds timeout);

}  // namespace sealroot::rpc::ttrpc
