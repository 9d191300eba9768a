// The simulated CPU: EREPORT and EGETKEY as the Intel SGX SDK >= 2.19 simulator (the KSS-aware
// one) does them: derive_key = AES-128-CMAC(base_key[name], derivation data), the derivation data
// laid out as the SDK's naturally aligned C structs, zeroed padding included.
#include <cstring>

#include "base/crypto.h"
#include "local-attest/sim.h"

namespace sealroot::local_attest::sgx {
namespace {

// SDK-sim base keys and OWNEREPOCH. Public on purpose: sim gives no security.
constexpr Key128 kReportBaseKey = {0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00,
                                   0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00};
constexpr Key128 kSealBaseKey = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
constexpr std::array<std::uint8_t, 16> kOwnerEpoch = {'T', 'H', 'I', 'S', 'I', 'S', 'O', 'W',
                                                      'N', 'E', 'R', 'E', 'P', 'O', 'C', 'H'};

// dd_report_key_t of the KSS-aware SDK simulator (192 bytes with its tail padding).
struct ReportKeyDerivation {
  std::uint16_t key_name = 0;
  std::array<std::uint8_t, 6> pad0{};
  Attributes attributes{};
  std::uint32_t misc_select = 0;
  std::array<std::uint8_t, 16> owner_epoch{};
  Measurement mr_enclave{};
  CpuSvn cpu_svn{};
  std::uint16_t config_svn = 0;
  ConfigId config_id{};
  KeyId key_id{};
  std::array<std::uint8_t, 2> pad1{};
};
static_assert(sizeof(ReportKeyDerivation) == 192);
static_assert(offsetof(ReportKeyDerivation, attributes) == 8);
static_assert(offsetof(ReportKeyDerivation, misc_select) == 24);
static_assert(offsetof(ReportKeyDerivation, owner_epoch) == 28);
static_assert(offsetof(ReportKeyDerivation, mr_enclave) == 44);
static_assert(offsetof(ReportKeyDerivation, cpu_svn) == 76);
static_assert(offsetof(ReportKeyDerivation, config_svn) == 92);
static_assert(offsetof(ReportKeyDerivation, config_id) == 94);
static_assert(offsetof(ReportKeyDerivation, key_id) == 158);

// dd_seal_key_t of the KSS-aware SDK simulator (SDK >= 2.19; 280 bytes with its padding). The
// MISCMASK is stored inverted, as the SDK does; CONFIGSVN/CONFIGID, ISVFAMILYID, ISVEXTPRODID and
// MRENCLAVE/MRSIGNER are zero unless the key policy selects them; ISVPRODID unless NOISVPRODID.
struct SealKeyDerivation {
  std::uint16_t key_name = 0;
  std::uint16_t key_policy = 0;
  std::array<std::uint8_t, 4> pad0{};
  Attributes attributes{};  // the enclave's attributes & (mask | INITTED | DEBUG)
  Attributes attribute_mask{};
  std::uint32_t misc_select = 0;  // the enclave's MISCSELECT & KEYREQUEST.MISCMASK
  std::uint32_t misc_mask = 0;    // ~KEYREQUEST.MISCMASK
  std::array<std::uint8_t, 16> owner_epoch{};
  CpuSvn cpu_svn{};
  std::uint16_t isv_svn = 0;
  std::uint16_t isv_prod_id = 0;
  std::uint16_t config_svn = 0;
  ConfigId config_id{};
  IsvFamilyId isv_family_id{};
  IsvExtProdId isv_ext_prod_id{};
  Measurement mr_enclave{};
  Measurement mr_signer{};
  KeyId key_id{};
  std::array<std::uint8_t, 2> pad1{};
};
static_assert(sizeof(SealKeyDerivation) == 280);
static_assert(offsetof(SealKeyDerivation, attributes) == 8);
static_assert(offsetof(SealKeyDerivation, attribute_mask) == 24);
static_assert(offsetof(SealKeyDerivation, misc_select) == 40);
static_assert(offsetof(SealKeyDerivation, misc_mask) == 44);
static_assert(offsetof(SealKeyDerivation, owner_epoch) == 48);
static_assert(offsetof(SealKeyDerivation, cpu_svn) == 64);
static_assert(offsetof(SealKeyDerivation, isv_svn) == 80);
static_assert(offsetof(SealKeyDerivation, isv_prod_id) == 82);
static_assert(offsetof(SealKeyDerivation, config_svn) == 84);
static_assert(offsetof(SealKeyDerivation, config_id) == 86);
static_assert(offsetof(SealKeyDerivation, isv_family_id) == 150);
static_assert(offsetof(SealKeyDerivation, isv_ext_prod_id) == 166);
static_assert(offsetof(SealKeyDerivation, mr_enclave) == 182);
static_assert(offsetof(SealKeyDerivation, mr_signer) == 214);
static_assert(offsetof(SealKeyDerivation, key_id) == 246);

// The key policy bits that need the KSS attribute (NOISVPRODID included, as the SDK checks).
constexpr std::uint16_t kKssPolicies =
    kPolicyConfigId | kPolicyIsvFamilyId | kPolicyIsvExtProdId | kPolicyNoIsvProdId;
constexpr std::uint16_t kKnownPolicies = kPolicyMrEnclave | kPolicyMrSigner | kKssPolicies;

template <typename T>
Key128 DeriveKey(const Key128& base_key, const T& derivation) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(&derivation);
  return AesCmac128(base_key, std::span(bytes, sizeof(T)));
}

bool IsZero(std::span<const std::uint8_t> bytes) {
  for (std::uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace

Key128 DeriveSimReportKey(const TargetInfo& target, const KeyId& key_id) {
  ReportKeyDerivation dd;
  dd.key_name = static_cast<std::uint16_t>(KeyName::kReport);
  dd.attributes = target.attributes;
  dd.misc_select = target.misc_select;
  dd.owner_epoch = kOwnerEpoch;
  dd.mr_enclave = target.mr_enclave;
  dd.cpu_svn = kSimDefaultCpuSvn;
  dd.config_svn = target.config_svn;
  dd.config_id = target.config_id;
  dd.key_id = key_id;
  Key128 key = DeriveKey(kReportBaseKey, dd);
  SecureWipe(MutableBytesOf(dd));
  return key;
}

Result<SimCpu> SimCpu::Create(EnclaveIdentity identity) {
  if ((identity.attributes.flags & kFlagMode64Bit) == 0) {
    return InvalidArgument("sim enclave: attributes lack MODE64BIT");
  }
  if ((identity.attributes.xfrm & kXfrmLegacy) != kXfrmLegacy) {
    return InvalidArgument("sim enclave: XFRM must enable x87 and SSE (0x3)");
  }
  if ((identity.attributes.flags & kFlagKss) == 0) {
    if (!IsZero(identity.config_id))
      return InvalidArgument("sim enclave: a CONFIGID needs the KSS attribute");
    if (!IsZero(identity.isv_family_id) || !IsZero(identity.isv_ext_prod_id)) {
      // EINIT refuses such a SIGSTRUCT (the SDK simulator: SGX_ERROR_INVALID_SIGNATURE).
      return InvalidArgument("sim enclave: an ISVFAMILYID or ISVEXTPRODID needs the KSS attribute");
    }
  }
  identity.attributes.flags |= kFlagInitted;
  return SimCpu(identity);
}

Report SimCpu::CreateReport(const TargetInfo& target, const ReportData& data) const {
  Report report;
  ReportBody& body = report.body;
  body.cpu_svn = kSimDefaultCpuSvn;
  body.misc_select = identity_.misc_select;
  body.isv_ext_prod_id = identity_.isv_ext_prod_id;
  body.attributes = identity_.attributes;
  body.mr_enclave = identity_.mr_enclave;
  body.mr_signer = identity_.mr_signer;
  body.config_id = identity_.config_id;
  body.isv_prod_id = identity_.isv_prod_id;
  body.isv_svn = identity_.isv_svn;
  body.config_svn = identity_.config_svn;
  body.isv_family_id = identity_.isv_family_id;
  body.report_data = data;
  // As the SDK simulator: key_id = the REPORT base key's first 16 bytes, then zeros.
  std::memcpy(report.key_id.data(), kReportBaseKey.data(), 16);
  Key128 key = DeriveSimReportKey(target, report.key_id);
  report.mac = AesCmac128(key, BytesOf(report.body));
  SecureWipe(key);
  return report;
}

Result<SecretBytes> SimCpu::GetKey(const KeyRequest& request) const {
  // sgx_get_key()'s parameter checks (the SDK simulator's EGETKEY would #GP on the same).
  if (request.reserved1 != 0 || !IsZero(request.reserved2)) {
    return InvalidArgument("EGETKEY: reserved KEYREQUEST bytes are not zero (SGX_ERROR_INVALID_PARAMETER)");
  }
  if ((request.key_policy & ~kKnownPolicies) != 0) {
    return InvalidArgument("EGETKEY: reserved key policy bits are set (SGX_ERROR_INVALID_PARAMETER)");
  }
  if ((identity_.attributes.flags & kFlagKss) == 0 &&
      ((request.key_policy & kKssPolicies) != 0 || request.config_svn > 0)) {
    return InvalidArgument(
        "EGETKEY: CONFIGID/ISVFAMILYID/ISVEXTPRODID/NOISVPRODID policies and a CONFIGSVN need the "
        "KSS attribute (SGX_ERROR_INVALID_PARAMETER)");
  }
  const auto name = static_cast<KeyName>(request.key_name);
  if (name == KeyName::kReport) {
    TargetInfo self = TargetInfoFromReport(CreateReport(TargetInfo{}, ReportData{}).body);
    Key128 key = DeriveSimReportKey(self, request.key_id);
    SecretBytes out(key);
    SecureWipe(key);
    return out;
  }
  if (name == KeyName::kProvision || name == KeyName::kProvisionSeal || name == KeyName::kEinittoken) {
    const std::uint64_t needed = name == KeyName::kEinittoken ? kFlagEinittokenKey : kFlagProvisionKey;
    if ((identity_.attributes.flags & needed) == 0) {
      return PermissionDenied("EGETKEY: key name " + std::to_string(request.key_name) +
                              " needs an attribute this enclave lacks (SGX_ERROR_INVALID_ATTRIBUTE)");
    }
    return Unimplemented("EGETKEY: PROVISION, PROVISION_SEAL and EINITTOKEN keys are not modelled");
  }
  if (name != KeyName::kSeal) {
    return InvalidArgument("EGETKEY: key name " + std::to_string(request.key_name) +
                           " is not a key name (SGX_ERROR_INVALID_KEYNAME)");
  }
  if (request.isv_svn > identity_.isv_svn) {
    return PermissionDenied("EGETKEY: requested ISVSVN is above the enclave's (SGX_ERROR_INVALID_ISVSVN)");
  }
  if (request.config_svn > identity_.config_svn) {
    // The SDK simulator answers a CONFIGSVN check failure with the ISVSVN error, as hardware.
    return PermissionDenied("EGETKEY: requested CONFIGSVN is above the enclave's (SGX_ERROR_INVALID_ISVSVN)");
  }
  CpuSvn cpu_svn = request.cpu_svn;
  if (IsZero(cpu_svn)) cpu_svn = kSimDefaultCpuSvn;  // as hardware: zero means current
  if (cpu_svn != kSimDefaultCpuSvn && cpu_svn != kSimDowngradedCpuSvn) {
    return PermissionDenied(
        "EGETKEY: requested CPUSVN is above or unknown to the CPU's (SGX_ERROR_INVALID_CPUSVN)");
  }
  SealKeyDerivation dd;
  dd.key_name = request.key_name;
  dd.key_policy = request.key_policy;
  dd.attributes.flags =
      (request.attribute_mask.flags | kFlagInitted | kFlagDebug) & identity_.attributes.flags;
  dd.attributes.xfrm = request.attribute_mask.xfrm & identity_.attributes.xfrm;
  dd.attribute_mask = request.attribute_mask;
  dd.misc_select = request.misc_mask & identity_.misc_select;
  dd.misc_mask = ~request.misc_mask;
  dd.owner_epoch = kOwnerEpoch;
  dd.cpu_svn = cpu_svn;
  dd.isv_svn = request.isv_svn;
  if ((request.key_policy & kPolicyNoIsvProdId) == 0) dd.isv_prod_id = identity_.isv_prod_id;
  if (request.key_policy & kPolicyConfigId) {
    dd.config_svn = request.config_svn;
    dd.config_id = identity_.config_id;
  }
  if (request.key_policy & kPolicyIsvFamilyId) dd.isv_family_id = identity_.isv_family_id;
  if (request.key_policy & kPolicyIsvExtProdId) dd.isv_ext_prod_id = identity_.isv_ext_prod_id;
  if (request.key_policy & kPolicyMrEnclave) dd.mr_enclave = identity_.mr_enclave;
  if (request.key_policy & kPolicyMrSigner) dd.mr_signer = identity_.mr_signer;
  dd.key_id = request.key_id;
  Key128 key = DeriveKey(kSealBaseKey, dd);
  SecureWipe(MutableBytesOf(dd));
  SecretBytes out(key);
  SecureWipe(key);
  return out;
}

TargetInfo TargetInfoFromReport(const ReportBody& body) {
  TargetInfo target;
  target.mr_enclave = body.mr_enclave;
  target.attributes = body.attributes;
  target.config_svn = body.config_svn;
  target.misc_select = body.misc_select;
  target.config_id = body.config_id;
  return target;
}

}  // namespace sealroot::local_attest::sgx
