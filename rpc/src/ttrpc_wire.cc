#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "rpc/ttrpc.h"
#include "ttrpc.pb.h"

namespace sealroot::rpc::ttrpc {
namespace {

void PutU32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t GetU32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

std::array<std::uint8_t, kHeaderSize> EncodeHeader(const FrameHeader& header) {
  std::array<std::uint8_t, kHeaderSize> out{};
  PutU32(out.data(), header.length);
  PutU32(out.data() + 4, header.stream_id);
  out[8] = header.type;
  out[9] = header.flags;
  return out;
}

FrameHeader DecodeHeader(std::span<const std::uint8_t, kHeaderSize> bytes) {
  return {GetU32(bytes.data()), GetU32(bytes.data() + 4), bytes[8], bytes[9]};
}

Status WriteFrame(int fd, const FrameHeader& header, std::string_view payload) {
  std::array<std::uint8_t, kHeaderSize> head = EncodeHeader(header);
  iovec iov[2] = {{head.data(), head.size()}, {const_cast<char*>(payload.data()), payload.size()}};
  std::size_t total = head.size() + payload.size();
  std::size_t sent = 0;
  while (sent < total) {
    msghdr msg{};
    // Skip what was already sent of the two buffers.
    iovec rest[2];
    int count = 0;
    std::size_t skip = sent;
    for (const iovec& v : iov) {
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      rest[count++] = {static_cast<char*>(v.iov_base) + skip, v.iov_len - skip};
      skip = 0;
    }
    msg.msg_iov = rest;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("writing ttrpc frame", errno);
    }
    sent += static_cast<std::size_t>(n);
  }
  return OkStatus();
}

Status ReadFull(int fd, std::span<std::uint8_t> out, std::chrono::steady_clock::time_point deadline) {
  std::size_t got = 0;
  while (got < out.size()) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return DeadlineExceeded("ttrpc frame not complete in time");
    pollfd pfd{fd, POLLIN, 0};
    int ready = poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 60'000)));
    if (ready < 0 && errno != EINTR) return ErrnoStatus("waiting for ttrpc data", errno);
    if (ready <= 0) continue;
    ssize_t n = recv(fd, out.data() + got, out.size() - got, 0);
    if (n == 0) return OutOfRange("connection closed");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoStatus("reading ttrpc frame", errno);
    }
    got += static_cast<std::size_t>(n);
  }
  return OkStatus();
}

Result<UniqueFd> Dial(const ListenAddress& address, Deadline deadline) {
  Result<UniqueFd> fd = address.kind == ListenAddress::Kind::kUnix
                            ? ConnectUnix(address.path, deadline)
                            : ConnectTcp(address.host, address.port, deadline);
  if (!fd.ok()) return std::move(fd).status().WithContext(address.ToString());
  return fd;
}

Status Probe(const ListenAddress& address, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Result<UniqueFd> fd = Dial(address);
  if (!fd.ok()) return Unavailable(fd.status().message());
  ::ttrpc::Request request;
  request.set_service("sealroot.rpc.Probe");
  request.set_method("Probe");
  const std::string bytes = request.SerializeAsString();
  std::array<std::uint8_t, kHeaderSize> head{};
  Status answered =
      WriteFrame(fd->get(), {static_cast<std::uint32_t>(bytes.size()), 1, kTypeRequest, 0}, bytes);
  if (answered.ok()) answered = ReadFull(fd->get(), head, deadline);
  if (answered.ok()) {
    // Read the answer whole: a unix socket closed with unread data resets its peer, and the
    // server would log a reset connection for every probe.
    std::string body(std::min<std::size_t>(DecodeHeader(head).length, kDefaultMaxMessageSize), '\0');
    (void)ReadFull(fd->get(), std::span(reinterpret_cast<std::uint8_t*>(body.data()), body.size()), deadline);
    return OkStatus();
  }
  if (answered.code() == Code::kDeadlineExceeded) return answered;
  return Unavailable(address.ToString() + ": the connection ended unanswered (" + answered.message() + ")");
}

Result<std::unique_ptr<Client>> Client::Connect(const ListenAddress& address) {
  SR_ASSIGN_OR_RETURN(UniqueFd fd, Dial(address));
  return std::unique_ptr<Client>(new Client(std::move(fd)));
}

Result<std::string> Client::Call(std::string_view service, std::string_view method, std::string_view payload,
                                 std::chrono::milliseconds timeout) {
  ::ttrpc::Request request;
  request.set_service(std::string(service));
  request.set_method(std::string(method));
  request.set_payload(std::string(payload));
  request.set_timeout_nano(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
  std::string bytes = request.SerializeAsString();
  if (bytes.size() > kDefaultMaxMessageSize)
    return ResourceExhausted("request larger than the ttrpc maximum");
  const std::uint32_t stream = next_stream_;
  next_stream_ += 2;
  SR_RETURN_IF_ERROR(
      WriteFrame(fd_.get(), {static_cast<std::uint32_t>(bytes.size()), stream, kTypeRequest, 0}, bytes));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<std::uint8_t, kHeaderSize> head{};
  SR_RETURN_IF_ERROR_CTX(ReadFull(fd_.get(), head, deadline), "reading ttrpc response");
  FrameHeader header = DecodeHeader(head);
  if (header.type != kTypeResponse || header.stream_id != stream || header.length > kDefaultMaxMessageSize) {
    return Internal("unexpected ttrpc frame from the server");
  }
  std::string body(header.length, '\0');
  SR_RETURN_IF_ERROR_CTX(
      ReadFull(fd_.get(), std::span(reinterpret_cast<std::uint8_t*>(body.data()), body.size()), deadline),
      "reading ttrpc response");
  ::ttrpc::Response response;
  if (!response.ParseFromString(body)) return Internal("malformed ttrpc response from the server");
  if (response.status().code() != 0) {
    int code = response.status().code();
    if (code < 0 || code > 16) code = static_cast<int>(Code::kUnknown);
    return Status(static_cast<Code>(code), response.status().message());
  }
  return std::move(*response.mutable_payload());
}

}  // namespace sealroot::rpc::ttrpc
