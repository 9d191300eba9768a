// OpenTee(): picks the backend this process runs under; shared report verification.
#include <fcntl.h>
#include <sys/stat.h>

#include <charconv>
#include <cstdlib>

#include "base/crypto.h"
#include "local-attest/sim.h"
#include "local-attest/src/tee_internal.h"

namespace sealroot::local_attest::sgx {
namespace internal {

Status VerifyReportWithReportKey(Tee& tee, const Report& report) {
  KeyRequest request;
  request.key_name = static_cast<std::uint16_t>(KeyName::kReport);
  request.key_id = report.key_id;
  SR_ASSIGN_OR_RETURN(SecretBytes key, tee.GetKey(request));
  Block16 mac = AesCmac128(key.span(), BytesOf(report.body));
  if (!ConstantTimeEqual(mac, report.mac)) {
    return DataLoss("report MAC does not verify (not a report for this enclave, or tampered)");
  }
  return OkStatus();
}

}  // namespace internal

namespace {

Result<std::unique_ptr<Tee>> OpenSimFromEnv(std::string_view value) {
  int fd = -1;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), fd);
  if (ec != std::errc() || end != value.data() + value.size() || fd < 0) {
    return InvalidArgument(std::string(kSimTeeFdEnv) + " is not a file descriptor number");
  }
  // Keep the inherited fd out of whatever this enclave execs next (the container's entrypoint).
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return ErrnoStatus(std::string("sim TEE: inherited fd ") + std::to_string(fd), errno);
  }
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return ErrnoStatus("sim TEE: duplicating the inherited fd", errno);
  return NewRemoteSimTee(UniqueFd(copy));
}

}  // namespace

Result<std::unique_ptr<Tee>> OpenTee() {
  if (const char* sim_fd = std::getenv(kSimTeeFdEnv)) return OpenSimFromEnv(sim_fd);
  struct stat st {};
  if (::stat("/dev/attestation/my_target_info", &st) == 0) return OpenGramineTee();
  if (::stat("/dev/sgx", &st) == 0 && S_ISCHR(st.st_mode)) return OpenOcclumTee();
  return FailedPrecondition(
      "not running in an enclave: no SEALROOT_SIM_TEE_FD (sim launcher), /dev/attestation "
      "(Gramine) or /dev/sgx character device (Occlum)");
}

Result<SecretBytes> GetSealKey(Tee& tee, std::uint16_t policy, const KeyId& key_id) {
  // Our own ISVSVN and CPUSVN come from a report on ourselves, as the SDK's sgx_seal_data does.
  SR_ASSIGN_OR_RETURN(Report self, tee.CreateReport(TargetInfo{}, ReportData{}));
  KeyRequest request;
  request.key_name = static_cast<std::uint16_t>(KeyName::kSeal);
  request.key_policy = policy;
  request.isv_svn = self.body.isv_svn;
  request.cpu_svn = self.body.cpu_svn;
  request.config_svn = self.body.config_svn;  // part of the key only under the CONFIGID policy
  // sgx_seal_data()'s defaults: INITTED, DEBUG, MODE64BIT and the reserved high flag bits; no XFRM.
  request.attribute_mask = {.flags = 0xff0000000000000bull, .xfrm = 0};
  request.misc_mask = 0xf0000000u;
  request.key_id = key_id;
  return tee.GetKey(request);
}

}  // namespace sealroot::local_attest::sgx
