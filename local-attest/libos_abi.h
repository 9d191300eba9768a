// The LibOS interfaces the occlum and gramine backends speak, pinned at the byte level so the
// tests can check them without SGX (facts/sgx-local-attestation.md "LibOS interfaces").
#pragma once

#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

#include "local-attest/sgx_types.h"

namespace sealroot::local_attest::sgx::abi {

// Occlum /dev/sgx (magic 's').
struct OcclumCreateReportArg {
  const TargetInfo* target_info;  // null: a report targeted at the enclave itself
  const ReportData* report_data;  // null: zero report data
  Report* report;
};
struct OcclumGetKeyArg {
  const KeyRequest* key_request;
  Key128* key;
};
static_assert(sizeof(OcclumCreateReportArg) == 24);
static_assert(sizeof(OcclumGetKeyArg) == 16);

inline constexpr unsigned long kOcclumIsEdmmSupported = _IOR('s', 0, std::uint32_t);
inline constexpr unsigned long kOcclumSelfTarget = _IOR('s', 3, TargetInfo);
inline constexpr unsigned long kOcclumCreateReport = _IOWR('s', 4, OcclumCreateReportArg);
inline constexpr unsigned long kOcclumVerifyReport = _IOW('s', 5, Report);
inline constexpr unsigned long kOcclumGetKey = _IOWR('s', 11, OcclumGetKeyArg);
static_assert(kOcclumIsEdmmSupported == 0x80047300);
static_assert(kOcclumSelfTarget == 0x82007303);
static_assert(kOcclumCreateReport == 0xC0187304);
static_assert(kOcclumVerifyReport == 0x41B07305);
static_assert(kOcclumGetKey == 0xC010730B);

// Occlum's DCAP quote generation (the quoting enclave is reached through the LibOS).
struct OcclumGenDcapQuoteArg {
  const ReportData* report_data;  // in
  std::uint32_t* quote_len;       // in: buffer size; out: quote size
  std::uint8_t* quote_buf;        // out
};
static_assert(sizeof(OcclumGenDcapQuoteArg) == 24);
inline constexpr unsigned long kOcclumGetDcapQuoteSize = _IOR('s', 7, std::uint32_t);
inline constexpr unsigned long kOcclumGenDcapQuote = _IOWR('s', 8, OcclumGenDcapQuoteArg);
static_assert(kOcclumGetDcapQuoteSize == 0x80047307);
static_assert(kOcclumGenDcapQuote == 0xC0187308);

// Gramine /dev/attestation pseudo-files and their exact sizes.
inline constexpr const char kGramineMyTargetInfo[] = "my_target_info";      // r, 512
inline constexpr const char kGramineTargetInfo[] = "target_info";           // rw, 512
inline constexpr const char kGramineUserReportData[] = "user_report_data";  // rw, 64
inline constexpr const char kGramineReport[] = "report";                    // r, 432
// Reading `quote` returns a DCAP quote over the last user_report_data written ("dcap" in
// attestation_type; the manifest needs sgx.remote_attestation = "dcap").
inline constexpr const char kGramineQuote[] = "quote";
inline constexpr const char kGramineAttestationType[] = "attestation_type";
inline constexpr std::size_t kGramineMyTargetInfoSize = sizeof(TargetInfo);
inline constexpr std::size_t kGramineTargetInfoSize = sizeof(TargetInfo);
inline constexpr std::size_t kGramineUserReportDataSize = sizeof(ReportData);
inline constexpr std::size_t kGramineReportSize = sizeof(Report);
static_assert(kGramineMyTargetInfoSize == 512 && kGramineUserReportDataSize == 64 &&
              kGramineReportSize == 432);

// ENCLU leaf numbers (in RAX) for the in-enclave instructions.
inline constexpr std::uint64_t kEncluEreport = 0;
inline constexpr std::uint64_t kEncluEgetkey = 1;

}  // namespace sealroot::local_attest::sgx::abi
