// The SGX architectural structures, byte-exact (Intel SDM vol. 3D ch. 38, and the SDK's
// sgx_report.h / sgx_key.h / arch.h). All integers are little-endian; every field sits at its
// natural alignment, so plain structs give the architectural layout and the static_asserts below
// pin every size and offset. Hardware wants TARGETINFO/REPORT/KEYREQUEST 512-aligned in memory;
// that is an ENCLU requirement, not a layout one, and only the gramine backend (which executes
// ENCLU itself) allocates aligned copies.
//
// Thread-safety: plain value types.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "base/status.h"

namespace sealroot::local_attest::sgx {

static_assert(std::endian::native == std::endian::little, "SGX structures are little-endian");

using Measurement = std::array<std::uint8_t, 32>;  // MRENCLAVE / MRSIGNER
using CpuSvn = std::array<std::uint8_t, 16>;
using ConfigId = std::array<std::uint8_t, 64>;
using ReportData = std::array<std::uint8_t, 64>;
using KeyId = std::array<std::uint8_t, 32>;
using IsvFamilyId = std::array<std::uint8_t, 16>;   // KSS
using IsvExtProdId = std::array<std::uint8_t, 16>;  // KSS
using Mac = std::array<std::uint8_t, 16>;
using Key128 = std::array<std::uint8_t, 16>;

// ATTRIBUTES.FLAGS bits.
inline constexpr std::uint64_t kFlagInitted = 0x1;
inline constexpr std::uint64_t kFlagDebug = 0x2;
inline constexpr std::uint64_t kFlagMode64Bit = 0x4;
inline constexpr std::uint64_t kFlagProvisionKey = 0x10;
inline constexpr std::uint64_t kFlagEinittokenKey = 0x20;
inline constexpr std::uint64_t kFlagKss = 0x80;
inline constexpr std::uint64_t kFlagAexNotify = 0x400;
inline constexpr std::uint64_t kXfrmLegacy = 0x3;  // x87 + SSE, required

struct Attributes {
  std::uint64_t flags = 0;
  std::uint64_t xfrm = 0;
};

struct TargetInfo {
  Measurement mr_enclave{};
  Attributes attributes{};
  std::array<std::uint8_t, 2> reserved1{};
  std::uint16_t config_svn = 0;
  std::uint32_t misc_select = 0;
  std::array<std::uint8_t, 8> reserved2{};
  ConfigId config_id{};
  std::array<std::uint8_t, 384> reserved3{};
};

struct ReportBody {
  CpuSvn cpu_svn{};
  std::uint32_t misc_select = 0;
  std::array<std::uint8_t, 12> reserved1{};
  IsvExtProdId isv_ext_prod_id{};
  Attributes attributes{};
  Measurement mr_enclave{};
  std::array<std::uint8_t, 32> reserved2{};
  Measurement mr_signer{};
  std::array<std::uint8_t, 32> reserved3{};
  ConfigId config_id{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  std::uint16_t config_svn = 0;
  std::array<std::uint8_t, 42> reserved4{};
  IsvFamilyId isv_family_id{};
  ReportData report_data{};
};

struct Report {
  ReportBody body{};
  KeyId key_id{};
  Mac mac{};
};

// KEYREQUEST.KEYNAME values.
enum class KeyName : std::uint16_t {
  kEinittoken = 0,
  kProvision = 1,
  kProvisionSeal = 2,
  kReport = 3,
  kSeal = 4,
};

// KEYREQUEST.KEYPOLICY bits.
inline constexpr std::uint16_t kPolicyMrEnclave = 0x1;
inline constexpr std::uint16_t kPolicyMrSigner = 0x2;
inline constexpr std::uint16_t kPolicyNoIsvProdId = 0x4;
inline constexpr std::uint16_t kPolicyConfigId = 0x8;
inline constexpr std::uint16_t kPolicyIsvFamilyId = 0x10;
inline constexpr std::uint16_t kPolicyIsvExtProdId = 0x20;

struct KeyRequest {
  std::uint16_t key_name = 0;
  std::uint16_t key_policy = 0;
  std::uint16_t isv_svn = 0;
  std::uint16_t reserved1 = 0;
  CpuSvn cpu_svn{};
  Attributes attribute_mask{};
  KeyId key_id{};
  std::uint32_t misc_mask = 0;
  std::uint16_t config_svn = 0;
  std::array<std::uint8_t, 434> reserved2{};
};

// SIGSTRUCT: the enclave author's signed statement of MRENCLAVE and the enclave's attributes.
// Signed bytes: [0, 128) || [900, 1028). RSA-3072, public exponent 3; modulus, signature, q1
// and q2 are little-endian.
struct Sigstruct {
  std::array<std::uint8_t, 12> header{};
  std::uint32_t type = 0;  // bit 31: debug-signed
  std::uint32_t vendor = 0;
  std::uint32_t date = 0;  // BCD yyyymmdd
  std::array<std::uint8_t, 16> header2{};
  std::uint32_t sw_defined = 0;
  std::array<std::uint8_t, 84> reserved1{};
  std::array<std::uint8_t, 384> modulus{};
  std::uint32_t exponent = 0;
  std::array<std::uint8_t, 384> signature{};
  std::uint32_t misc_select = 0;
  std::uint32_t misc_mask = 0;
  std::array<std::uint8_t, 4> reserved2{};
  IsvFamilyId isv_family_id{};
  Attributes attributes{};
  Attributes attribute_mask{};
  Measurement enclave_hash{};
  std::array<std::uint8_t, 16> reserved3{};
  IsvExtProdId isv_ext_prod_id{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  std::array<std::uint8_t, 12> reserved4{};
  std::array<std::uint8_t, 384> q1{};
  std::array<std::uint8_t, 384> q2{};
};

#define SR_SGX_FIELD(type, field, offset) \
  static_assert(offsetof(type, field) == (offset), #type "." #field " offset")

static_assert(sizeof(Attributes) == 16);
SR_SGX_FIELD(Attributes, xfrm, 8);

static_assert(sizeof(TargetInfo) == 512);
SR_SGX_FIELD(TargetInfo, attributes, 32);
SR_SGX_FIELD(TargetInfo, reserved1, 48);
SR_SGX_FIELD(TargetInfo, config_svn, 50);
SR_SGX_FIELD(TargetInfo, misc_select, 52);
SR_SGX_FIELD(TargetInfo, reserved2, 56);
SR_SGX_FIELD(TargetInfo, config_id, 64);
SR_SGX_FIELD(TargetInfo, reserved3, 128);

static_assert(sizeof(ReportBody) == 384);
SR_SGX_FIELD(ReportBody, misc_select, 16);
SR_SGX_FIELD(ReportBody, reserved1, 20);
SR_SGX_FIELD(ReportBody, isv_ext_prod_id, 32);
SR_SGX_FIELD(ReportBody, attributes, 48);
SR_SGX_FIELD(ReportBody, mr_enclave, 64);
SR_SGX_FIELD(ReportBody, reserved2, 96);
SR_SGX_FIELD(ReportBody, mr_signer, 128);
SR_SGX_FIELD(ReportBody, reserved3, 160);
SR_SGX_FIELD(ReportBody, config_id, 192);
SR_SGX_FIELD(ReportBody, isv_prod_id, 256);
SR_SGX_FIELD(ReportBody, isv_svn, 258);
SR_SGX_FIELD(ReportBody, config_svn, 260);
SR_SGX_FIELD(ReportBody, reserved4, 262);
SR_SGX_FIELD(ReportBody, isv_family_id, 304);
SR_SGX_FIELD(ReportBody, report_data, 320);

static_assert(sizeof(Report) == 432);
SR_SGX_FIELD(Report, key_id, 384);
SR_SGX_FIELD(Report, mac, 416);

static_assert(sizeof(KeyRequest) == 512);
SR_SGX_FIELD(KeyRequest, key_policy, 2);
SR_SGX_FIELD(KeyRequest, isv_svn, 4);
SR_SGX_FIELD(KeyRequest, reserved1, 6);
SR_SGX_FIELD(KeyRequest, cpu_svn, 8);
SR_SGX_FIELD(KeyRequest, attribute_mask, 24);
SR_SGX_FIELD(KeyRequest, key_id, 40);
SR_SGX_FIELD(KeyRequest, misc_mask, 72);
SR_SGX_FIELD(KeyRequest, config_svn, 76);
SR_SGX_FIELD(KeyRequest, reserved2, 78);

static_assert(sizeof(Sigstruct) == 1808);
SR_SGX_FIELD(Sigstruct, type, 12);
SR_SGX_FIELD(Sigstruct, vendor, 16);
SR_SGX_FIELD(Sigstruct, date, 20);
SR_SGX_FIELD(Sigstruct, header2, 24);
SR_SGX_FIELD(Sigstruct, sw_defined, 40);
SR_SGX_FIELD(Sigstruct, modulus, 128);
SR_SGX_FIELD(Sigstruct, exponent, 512);
SR_SGX_FIELD(Sigstruct, signature, 516);
SR_SGX_FIELD(Sigstruct, misc_select, 900);
SR_SGX_FIELD(Sigstruct, misc_mask, 904);
SR_SGX_FIELD(Sigstruct, isv_family_id, 912);
SR_SGX_FIELD(Sigstruct, attributes, 928);
SR_SGX_FIELD(Sigstruct, attribute_mask, 944);
SR_SGX_FIELD(Sigstruct, enclave_hash, 960);
SR_SGX_FIELD(Sigstruct, isv_ext_prod_id, 1008);
SR_SGX_FIELD(Sigstruct, isv_prod_id, 1024);
SR_SGX_FIELD(Sigstruct, isv_svn, 1026);
SR_SGX_FIELD(Sigstruct, q1, 1040);
SR_SGX_FIELD(Sigstruct, q2, 1424);

#undef SR_SGX_FIELD

template <typename T>
concept SgxStruct = std::is_trivially_copyable_v<T> && std::has_unique_object_representations_v<T>;

// The wire/memory bytes of a structure.
template <SgxStruct T>
std::span<const std::uint8_t, sizeof(T)> BytesOf(const T& value) {
  return std::span<const std::uint8_t, sizeof(T)>(reinterpret_cast<const std::uint8_t*>(&value), sizeof(T));
}
template <SgxStruct T>
std::span<std::uint8_t, sizeof(T)> MutableBytesOf(T& value) {
  return std::span<std::uint8_t, sizeof(T)>(reinterpret_cast<std::uint8_t*>(&value), sizeof(T));
}

// Parses a structure from exactly sizeof(T) bytes; `what` names it in the error.
template <SgxStruct T>
Result<T> StructFromBytes(std::span<const std::uint8_t> bytes, const char* what) {
  if (bytes.size() != sizeof(T)) {
    return InvalidArgument(std::string(what) + ": expected " + std::to_string(sizeof(T)) + " bytes, got " +
                           std::to_string(bytes.size()));
  }
  T value;
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

// The target info that makes EREPORT produce a report verifiable by the enclave that produced
// `self_report` (what sgx_self_target() does).
TargetInfo TargetInfoFromReport(const ReportBody& body);

}  // namespace sealroot::local_attest::sgx
