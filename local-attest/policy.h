// Identity policy: which enclave may receive keys (the stub's check of the app enclave) and
// which stub an app enclave accepts keys from (the boot's check of the stub). SGX only proves
// *who* made a report; deciding whether that identity is acceptable is this file's job.
//
//   IdentityPolicy p;
//   p.signer = SignerPolicy{.mr_signer = ..., .isv_prod_id = 2, .min_isv_svn = 3};
//   SR_RETURN_IF_ERROR(CheckIdentity(report_body, p));
//
// Thread-safety: value types and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/crypto.h"
#include "base/status.h"
#include "local-attest/sgx_types.h"

namespace sealroot::local_attest {

// The enclave's author, as SIGSTRUCT states it: MRSIGNER and ISVPRODID must match, ISVSVN must
// be at least the minimum (older, possibly vulnerable versions are refused).
struct SignerPolicy {
  local_attest::sgx::Measurement mr_signer{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t min_isv_svn = 0;
};

struct IdentityPolicy {
  // At least one of the two. MRENCLAVE alone accepts the same code signed by anyone with any
  // ISVSVN; name the signer too when that matters.
  std::optional<local_attest::sgx::Measurement> mr_enclave;
  std::optional<SignerPolicy> signer;
  // DEBUG enclaves can be read by the host (EDBGRD); refused unless explicitly allowed.
  bool allow_debug = false;
  // KSS CONFIGID the enclave must have been launched with (binds a release to one container).
  std::optional<local_attest::sgx::ConfigId> config_id;

  Status Validate() const;
};

// PermissionDenied naming the first check that failed ("MRENCLAVE mismatch: expected .., got
// ..", "DEBUG enclave refused", "ISVSVN 1 below the minimum 2", "not INITTED", ...).
Status CheckIdentity(const local_attest::sgx::ReportBody& body, const IdentityPolicy& policy);

// The CONFIGID the launcher gives a container's app enclave and the stub's policy expects:
// SHA-256(container id bytes || 32-byte OCI process spec digest) in bytes [0, 32), zeros after.
local_attest::sgx::ConfigId ContainerConfigId(std::string_view container_id, const Sha256Digest& spec_digest);

// "mrenclave=<hex> mrsigner=<hex> prodid=N svn=N flags=0x.." for logs and errors.
std::string DescribeIdentity(const local_attest::sgx::ReportBody& body);

}  // namespace sealroot::local_attest
