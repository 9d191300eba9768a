// The Intel SDK's ECDH local-attestation protocol (sgx_dh, "LAv1"), byte-compatible:
//   responder -> initiator  msg1 (576) = g_a || responder TARGETINFO
//   initiator -> responder  msg2 (512) = g_b || REPORT(for msg1's target, SHA256(g_a||g_b)||01 00)
//                                        || CMAC(SMK, REPORT)
//   responder -> initiator  msg3 (452+n) = CMAC(SMK, rest) || REPORT(for the initiator,
//                                        SHA256(g_b||g_a)) || n u32 || additional properties[n]
// P-256 points and the shared secret are little-endian; SMK and AEK come from the SDK's KDF.
// LAv2 (a "SGX LA" proto_spec in report_data) is refused explicitly: msg2 must carry the LAv1
// KDF id 0x0001 and zeros after it. Both objects use fresh ephemeral keys, so no message of one
// session verifies in another (a replayed msg2 fails its CMAC).
//
// Identity policy is NOT checked here: ProcessMsg2/ProcessMsg3 return the peer's verified
// report body, and the caller applies policy.h before trusting it.
//
// Thread-safety: one session object per connection, used from one thread. `tee` must outlive it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "local-attest/sgx_types.h"
#include "local-attest/tee.h"

namespace sealroot::local_attest {

inline constexpr std::size_t kMsg1Size = 576;
inline constexpr std::size_t kMsg2Size = 512;
inline constexpr std::size_t kMsg3MinSize = 452;
inline constexpr std::size_t kMsg3MaxProperties = 4096;

// The SDK's LA key derivation from a little-endian ECDH x coordinate: KDK = CMAC(0^16, shared),
// key = CMAC(KDK, 01 || label || 00 || 80 00). Labels: "SMK" (msg2/msg3 MAC), "AEK" (session).
SecretBytes DeriveLaKey(std::span<const std::uint8_t> shared_secret_le, std::string_view label);

class EphemeralKey;  // a P-256 key pair (private to local-attest)

class DhResponder {
 public:
  static Result<DhResponder> Create(local_attest::sgx::Tee& tee);
  DhResponder(DhResponder&&) noexcept;
  DhResponder& operator=(DhResponder&&) noexcept;
  ~DhResponder();

  const std::vector<std::uint8_t>& msg1() const { return msg1_; }
  // Checks msg2 (size, g_b on the curve, CMAC under SMK, LAv1 KDF id, the report's MAC by
  // EGETKEY, report_data = SHA256(g_a||g_b)) and returns the initiator's report body.
  Result<local_attest::sgx::ReportBody> ProcessMsg2(std::span<const std::uint8_t> msg2);
  // msg3, after ProcessMsg2 succeeded and the caller's policy accepted the initiator.
  Result<std::vector<std::uint8_t>> MakeMsg3();
  // The session key (AEK), once msg2 was accepted; empty before.
  SecretBytes TakeAek() { return std::move(aek_); }

 private:
  DhResponder(local_attest::sgx::Tee& tee, std::unique_ptr<EphemeralKey> key, std::vector<std::uint8_t> msg1);
  local_attest::sgx::Tee* tee_;
  std::unique_ptr<EphemeralKey> key_;
  std::vector<std::uint8_t> msg1_;
  std::array<std::uint8_t, 64> g_b_{};
  std::optional<local_attest::sgx::ReportBody> peer_;
  SecretBytes smk_, aek_;
};

class DhInitiator {
 public:
  static Result<DhInitiator> Create(local_attest::sgx::Tee& tee);
  DhInitiator(DhInitiator&&) noexcept;
  DhInitiator& operator=(DhInitiator&&) noexcept;
  ~DhInitiator();

  // Checks msg1 (size, g_a on the curve) and returns msg2.
  Result<std::vector<std::uint8_t>> ProcessMsg1(std::span<const std::uint8_t> msg1);
  // Checks msg3 (size, CMAC under SMK, the report's MAC, report_data = SHA256(g_b||g_a)) and
  // returns the responder's report body.
  Result<local_attest::sgx::ReportBody> ProcessMsg3(std::span<const std::uint8_t> msg3);
  SecretBytes TakeAek() { return std::move(aek_); }

 private:
  DhInitiator(local_attest::sgx::Tee& tee, std::unique_ptr<EphemeralKey> key);
  local_attest::sgx::Tee* tee_;
  std::unique_ptr<EphemeralKey> key_;
  std::array<std::uint8_t, 64> g_a_{};
  bool have_msg1_ = false;
  SecretBytes smk_, aek_;
};

}  // namespace sealroot::local_attest
