// Intel SGX DCAP ECDSA quotes, version 3 (the evidence a remote verifier checks), and their
// verification against a configured root certificate.
//
// Layout (all integers little-endian; ECDSA values big-endian, as DCAP writes them):
//   header (48)            version u16 = 3, attestation key type u16 = 2 (ECDSA-256 with P-256),
//                          TEE type u32 = 0 (SGX), QE SVN u16, PCE SVN u16, QE vendor id [16],
//                          user data [20]
//   report body (384)      the quoted enclave's REPORTBODY                         @48
//   signature data length u32                                                      @432
//   signature data         ECDSA signature r||s [64] over bytes [0, 432)           @436
//                          attestation public key x||y [64]                        @500
//                          QE report body [384]                                    @564
//                          QE report signature r||s [64] over the QE report body   @948
//                          QE auth data: size u16, bytes                           @1012
//                          certification data: type u16 (5 = PCK certificate chain,
//                          PEM: PCK leaf, intermediate CA, root CA), size u32, bytes
//
// A quote is good when: the PCK chain leads to the configured root; the PCK key signed the QE
// report; the QE report's report_data is SHA-256(attestation key || QE auth data) || 32 zeros
// (the QE vouches for the attestation key); the attestation key signed header + body. Then the
// report body is the CPU's statement about the enclave.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "local-attest/sgx_types.h"

namespace sealroot::local_attest::sgx {

struct QuoteHeader {
  std::uint16_t version = 0;
  std::uint16_t att_key_type = 0;
  std::uint32_t tee_type = 0;
  std::uint16_t qe_svn = 0;
  std::uint16_t pce_svn = 0;
  std::array<std::uint8_t, 16> qe_vendor_id{};
  std::array<std::uint8_t, 20> user_data{};
};
static_assert(sizeof(QuoteHeader) == 48);
static_assert(offsetof(QuoteHeader, qe_svn) == 8 && offsetof(QuoteHeader, pce_svn) == 10 &&
              offsetof(QuoteHeader, qe_vendor_id) == 12 && offsetof(QuoteHeader, user_data) == 28);

inline constexpr std::uint16_t kQuoteVersion3 = 3;
inline constexpr std::uint16_t kAttKeyEcdsaP256 = 2;
inline constexpr std::uint32_t kTeeTypeSgx = 0;
inline constexpr std::uint16_t kCertDataPckChain = 5;
// Intel's quoting enclave vendor id, 939a7233-f79c-4ca9-940a-0db3957f0607.
inline constexpr std::array<std::uint8_t, 16> kIntelQeVendorId = {
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

// Offsets of the fixed part.
inline constexpr std::size_t kQuoteBodyOffset = 48;
inline constexpr std::size_t kQuoteSignedSize = 432;  // header + report body
inline constexpr std::size_t kQuoteSigDataLenOffset = 432;
inline constexpr std::size_t kQuoteSignatureOffset = 436;
inline constexpr std::size_t kQuoteAttestKeyOffset = 500;
inline constexpr std::size_t kQuoteQeReportOffset = 564;
inline constexpr std::size_t kQuoteQeReportSigOffset = 948;
inline constexpr std::size_t kQuoteQeAuthOffset = 1012;
// The largest quote accepted (the PCK chain is ~4 KiB in practice).
inline constexpr std::size_t kMaxQuoteSize = 64 * 1024;

using EcdsaSignature = std::array<std::uint8_t, 64>;  // r || s, big-endian
using EcPoint = std::array<std::uint8_t, 64>;         // x || y, big-endian

struct ParsedQuote {
  QuoteHeader header;
  ReportBody body;
  EcdsaSignature signature{};
  EcPoint attest_key{};
  ReportBody qe_report;
  EcdsaSignature qe_report_signature{};
  std::vector<std::uint8_t> qe_auth_data;
  std::uint16_t cert_type = 0;
  std::string cert_data;  // the PEM chain for type 5
};

// Strict parsing: version 3, ECDSA P-256, SGX, every length inside the quote, certification data
// of type 5 ending exactly at the end. kInvalidArgument names the first problem.
Result<ParsedQuote> ParseQuote(std::span<const std::uint8_t> quote);

struct QuoteVerifyOptions {
  // Check certificate validity periods against the current time (off only for old test vectors).
  bool check_time = true;
};

// Verifies `quote` against `root_cert_pem` (the one trusted root: Intel's SGX root CA on hardware,
// the sim root in simulation) and returns the quoted enclave's report body. kDataLoss names the
// check that failed (chain, QE report signature, QE report data, quote signature). Identity
// policy is the caller's (local-attest/policy.h).
Result<ReportBody> VerifyQuote(std::span<const std::uint8_t> quote, std::string_view root_cert_pem,
                               const QuoteVerifyOptions& options = {});

}  // namespace sealroot::local_attest::sgx
