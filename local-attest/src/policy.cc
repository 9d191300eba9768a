#include "local-attest/policy.h"

#include <cstdio>

#include "base/encoding.h"

namespace sealroot::local_attest {

Status IdentityPolicy::Validate() const {
  if (!mr_enclave && !signer) {
    return InvalidArgument("identity policy names neither an MRENCLAVE nor a signer");
  }
  return OkStatus();
}

Status CheckIdentity(const local_attest::sgx::ReportBody& body, const IdentityPolicy& policy) {
  SR_RETURN_IF_ERROR(policy.Validate());
  if ((body.attributes.flags & local_attest::sgx::kFlagInitted) == 0) {
    return PermissionDenied("identity check: enclave is not INITTED");
  }
  if ((body.attributes.flags & local_attest::sgx::kFlagDebug) != 0 && !policy.allow_debug) {
    return PermissionDenied("identity check: DEBUG enclave refused (its memory is readable by the host)");
  }
  if (policy.mr_enclave && !ConstantTimeEqual(*policy.mr_enclave, body.mr_enclave)) {
    return PermissionDenied("identity check: MRENCLAVE mismatch: expected " + HexEncode(*policy.mr_enclave) +
                            ", got " + HexEncode(body.mr_enclave));
  }
  if (policy.signer) {
    const SignerPolicy& s = *policy.signer;
    if (!ConstantTimeEqual(s.mr_signer, body.mr_signer)) {
      return PermissionDenied("identity check: MRSIGNER mismatch: expected " + HexEncode(s.mr_signer) +
                              ", got " + HexEncode(body.mr_signer));
    }
    if (body.isv_prod_id != s.isv_prod_id) {
      return PermissionDenied("identity check: ISVPRODID " + std::to_string(body.isv_prod_id) +
                              " is not the expected " + std::to_string(s.isv_prod_id));
    }
    if (body.isv_svn < s.min_isv_svn) {
      return PermissionDenied("identity check: ISVSVN " + std::to_string(body.isv_svn) +
                              " is below the minimum " + std::to_string(s.min_isv_svn));
    }
  }
  if (policy.config_id && !ConstantTimeEqual(*policy.config_id, body.config_id)) {
    return PermissionDenied(
        "identity check: CONFIGID mismatch: the enclave was launched for another "
        "container or spec (expected " +
        HexEncode(std::span(policy.config_id->data(), 32)) + ", got " +
        HexEncode(std::span(body.config_id.data(), 32)) + ")");
  }
  return OkStatus();
}

local_attest::sgx::ConfigId ContainerConfigId(std::string_view container_id,
                                              const Sha256Digest& spec_digest) {
  Sha256 h;
  h.Update(container_id);
  h.Update(spec_digest);
  Sha256Digest d = h.Finish();
  local_attest::sgx::ConfigId id{};
  std::copy(d.begin(), d.end(), id.begin());
  return id;
}

std::string DescribeIdentity(const local_attest::sgx::ReportBody& body) {
  char flags[32];
  std::snprintf(flags, sizeof(flags), "0x%llx", static_cast<unsigned long long>(body.attributes.flags));
  return "mrenclave=" + HexEncode(body.mr_enclave) + " mrsigner=" + HexEncode(body.mr_signer) +
         " prodid=" + std::to_string(body.isv_prod_id) + " svn=" + std::to_string(body.isv_svn) +
         " flags=" + flags;
}

}  // namespace sealroot::local_attest
