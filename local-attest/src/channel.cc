#include "local-attest/channel.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "base/crypto.h"

namespace sealroot::local_attest {
namespace {

constexpr char kAad[] = "sealroot-la-v1";

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitFor(int fd, short events, Deadline deadline, const char* what) {
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return DeadlineExceeded(std::string(what) + ": the peer stalled (timeout)");
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1 << 30)));
    if (n > 0) return OkStatus();
    if (n < 0 && errno != EINTR) return ErrnoStatus(what, errno);
  }
}

// Reads exactly out.size() bytes. Returns the number read before EOF (== size on success).
Result<std::size_t> ReadFull(int fd, std::span<std::uint8_t> out, Deadline deadline) {
  std::size_t done = 0;
  while (done < out.size()) {
    SR_RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline, "reading a frame"));
    ssize_t n = ::recv(fd, out.data() + done, out.size() - done, MSG_DONTWAIT);
    if (n == 0) return done;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return done;
      return ErrnoStatus("reading a frame", errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

}  // namespace

Status WriteFrame(int fd, std::span<const std::uint8_t> payload, Deadline deadline) {
  if (payload.size() > 0xffffffffu) return InvalidArgument("frame too large");
  std::vector<std::uint8_t> frame(4 + payload.size());
  const auto size = static_cast<std::uint32_t>(payload.size());
  frame[0] = static_cast<std::uint8_t>(size >> 24);
  frame[1] = static_cast<std::uint8_t>(size >> 16);
  frame[2] = static_cast<std::uint8_t>(size >> 8);
  frame[3] = static_cast<std::uint8_t>(size);
  std::copy(payload.begin(), payload.end(), frame.begin() + 4);
  std::size_t done = 0;
  while (done < frame.size()) {
    SR_RETURN_IF_ERROR(WaitFor(fd, POLLOUT, deadline, "writing a frame"));
    ssize_t n = ::send(fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == EPIPE || errno == ECONNRESET)
        return Unavailable("writing a frame: the peer closed the connection");
      return ErrnoStatus("writing a frame", errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return OkStatus();
}

Result<std::vector<std::uint8_t>> ReadFrame(int fd, std::size_t max_size, Deadline deadline) {
  std::array<std::uint8_t, 4> header;
  SR_ASSIGN_OR_RETURN(std::size_t got, ReadFull(fd, header, deadline));
  if (got == 0) return Unavailable("the peer closed the connection");
  if (got < header.size()) return DataLoss("truncated frame: EOF inside the length prefix");
  const std::size_t size = (std::size_t{header[0]} << 24) | (std::size_t{header[1]} << 16) |
                           (std::size_t{header[2]} << 8) | header[3];
  if (size > max_size) {
    return ResourceExhausted("oversized frame: " + std::to_string(size) + " bytes, the cap is " +
                             std::to_string(max_size));
  }
  std::vector<std::uint8_t> payload(size);
  SR_ASSIGN_OR_RETURN(got, ReadFull(fd, payload, deadline));
  if (got < size) {
    return DataLoss("truncated frame: " + std::to_string(got) + " of " + std::to_string(size) +
                    " bytes before EOF");
  }
  return payload;
}

Result<SecureChannel> SecureChannel::Create(SecretBytes aek, ChannelRole role) {
  if (aek.size() != 16) return InvalidArgument("secure channel: AEK must be 16 bytes");
  return SecureChannel(std::move(aek), role);
}

std::array<std::uint8_t, 12> SecureChannel::Nonce(bool outgoing) const {
  // Direction 1: responder -> initiator; 2: initiator -> responder. One key, disjoint nonces.
  const bool from_responder = (role_ == ChannelRole::kResponder) == outgoing;
  const std::uint64_t counter = outgoing ? sent_ : received_;
  std::array<std::uint8_t, 12> nonce{};
  nonce[3] = from_responder ? 1 : 2;
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(counter >> (56 - 8 * i));
  return nonce;
}

Result<std::vector<std::uint8_t>> SecureChannel::Seal(std::span<const std::uint8_t> plaintext) {
  if (sent_ == UINT64_MAX) return ResourceExhausted("secure channel: nonce counter exhausted");
  SR_ASSIGN_OR_RETURN(auto sealed, AesGcmSeal(aek_.span(), Nonce(true), AsBytes(kAad), plaintext));
  ++sent_;
  return sealed;
}

Result<SecretBytes> SecureChannel::Open(std::span<const std::uint8_t> ciphertext) {
  if (received_ == UINT64_MAX) return ResourceExhausted("secure channel: nonce counter exhausted");
  SR_ASSIGN_OR_RETURN(SecretBytes plain, AesGcmOpen(aek_.span(), Nonce(false), AsBytes(kAad), ciphertext));
  ++received_;
  return plain;
}

}  // namespace sealroot::local_attest
