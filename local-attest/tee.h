// In-enclave access to the TEE: the few SGX instructions local attestation and sealing need,
// behind one interface with three backends (design/attestation.md "TEE backends"):
//   sim      the launcher's simulated CPU, over an inherited socket named by SEALROOT_SIM_TEE_FD
//            (local-attest/sim.h). No security; faithful behaviour.
//   occlum   Occlum's /dev/sgx ioctls (SELF_TARGET, CREATE_REPORT, VERIFY_REPORT, GET_KEY).
//   gramine  Gramine's /dev/attestation pseudo-files for target info and reports; EGETKEY is
//            executed directly (ENCLU), since Gramine apps run inside the enclave.
//
//   SR_ASSIGN_OR_RETURN(auto tee, local_attest::sgx::OpenTee());
//   SR_ASSIGN_OR_RETURN(local_attest::sgx::TargetInfo me, tee->SelfTargetInfo());
//
// Thread-safety: every Tee implementation is safe to call from several threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "base/status.h"
#include "local-attest/sgx_types.h"

namespace sealroot::local_attest::sgx {

class Tee {
 public:
  virtual ~Tee() = default;

  // "sim", "occlum" or "gramine".
  virtual std::string_view backend() const = 0;

  // Target info that lets another enclave create reports this enclave can verify.
  virtual Result<TargetInfo> SelfTargetInfo() = 0;
  // EREPORT: a report on this enclave for `target`, carrying `data`.
  virtual Result<Report> CreateReport(const TargetInfo& target, const ReportData& data) = 0;
  // Checks that `report` was produced by an enclave on this CPU for *this* enclave: EGETKEY
  // (REPORT, report.key_id) and a constant-time CMAC comparison. kDataLoss "report MAC does not
  // verify" when it does not; says nothing about *which* enclave made it (that is policy).
  virtual Status VerifyReport(const Report& report) = 0;
  // EGETKEY. The SEAL key with kPolicyMrEnclave/kPolicyMrSigner is what the agent seals its
  // persisted state with.
  virtual Result<SecretBytes> GetKey(const KeyRequest& request) = 0;
  // A DCAP ECDSA quote (local-attest/quote.h) on this enclave carrying `data`, for a remote
  // verifier: sim signs it with the simulated quoting enclave, occlum asks /dev/sgx
  // (GEN_DCAP_QUOTE), gramine writes /dev/attestation/user_report_data and reads .../quote.
  virtual Result<std::vector<std::uint8_t>> CreateQuote(const ReportData& data) = 0;
};

// Opens the TEE this process runs in: sim when SEALROOT_SIM_TEE_FD is set (the fd is made
// close-on-exec so it never leaks into programs the enclave execs), gramine when
// /dev/attestation/my_target_info exists, occlum when /dev/sgx is a character device.
// kFailedPrecondition "not running in an enclave" otherwise.
Result<std::unique_ptr<Tee>> OpenTee();

// The two LibOS backends, for callers that know where they run (and for the ABI tests).
Result<std::unique_ptr<Tee>> OpenOcclumTee(const std::string& device = "/dev/sgx");
Result<std::unique_ptr<Tee>> OpenGramineTee(const std::string& dir = "/dev/attestation");

// A 128-bit SEAL key bound to this enclave's MRENCLAVE (or MRSIGNER), at its own ISVSVN and the
// CPU's current CPUSVN; `key_id` diversifies it (e.g. one key per sealed file).
Result<SecretBytes> GetSealKey(Tee& tee, std::uint16_t policy, const KeyId& key_id);

}  // namespace sealroot::local_attest::sgx
