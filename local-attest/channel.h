// The wire between the stub (agent) and the app enclave (boot), design/attestation.md "The
// protocol": frames of a u32 big-endian length and that many bytes, a hard cap per frame,
// and a deadline on every read and write; after msg3, AES-128-GCM under AEK with 96-bit nonces
// from per-direction counters.
//
// Thread-safety: SecureChannel is single-threaded (one per session).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "base/secret.h"
#include "base/status.h"

namespace sealroot::local_attest {

using Deadline = std::chrono::steady_clock::time_point;

// Writes one frame. kDeadlineExceeded if the peer does not take it in time, kUnavailable if it
// went away.
Status WriteFrame(int fd, std::span<const std::uint8_t> payload, Deadline deadline);
// Reads one frame of at most `max_size` bytes: kResourceExhausted for an oversized length
// (nothing more is read), kDataLoss for a frame cut short by EOF, kUnavailable for EOF before
// a frame, kDeadlineExceeded for a peer that stalls.
Result<std::vector<std::uint8_t>> ReadFrame(int fd, std::size_t max_size, Deadline deadline);

// Which end of the session this is; each direction has its own nonce space.
enum class ChannelRole { kResponder, kInitiator };

class SecureChannel {
 public:
  // `aek` must be 16 bytes (the LA session key).
  static Result<SecureChannel> Create(SecretBytes aek, ChannelRole role);

  // Encrypts the next outgoing message (nonce = direction u32 BE || counter u64 BE).
  Result<std::vector<std::uint8_t>> Seal(std::span<const std::uint8_t> plaintext);
  // Decrypts the next incoming message; any reordering, replay or tampering fails with
  // kDataLoss "authentication failed".
  Result<SecretBytes> Open(std::span<const std::uint8_t> ciphertext);

 private:
  SecureChannel(SecretBytes aek, ChannelRole role) : aek_(std::move(aek)), role_(role) {}
  std::array<std::uint8_t, 12> Nonce(bool outgoing) const;
  SecretBytes aek_;
  ChannelRole role_;
  std::uint64_t sent_ = 0, received_ = 0;
};

}  // namespace sealroot::local_attest
