// The occlum (/dev/sgx ioctls) and gramine (/dev/attestation files + ENCLU EGETKEY) backends.
// Both only work inside those LibOSes on SGX hardware; here they compile and their ABI is
// tested (tests/local-attest/libos_abi_test.cc), and the gramine file protocol is exercised
// against a directory of regular files standing in for /dev/attestation.
#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "base/crypto.h"
#include "base/file.h"
#include "base/thread_annotations.h"
#include "local-attest/libos_abi.h"
#include "local-attest/quote.h"
#include "local-attest/src/tee_internal.h"

namespace sealroot::local_attest::sgx {
namespace {

class OcclumTee final : public Tee {
 public:
  explicit OcclumTee(UniqueFd device) : device_(std::move(device)) {}
  std::string_view backend() const override { return "occlum"; }

  Result<TargetInfo> SelfTargetInfo() override {
    TargetInfo target;
    SR_RETURN_IF_ERROR(Ioctl(abi::kOcclumSelfTarget, &target, "SELF_TARGET"));
    return target;
  }
  Result<Report> CreateReport(const TargetInfo& target, const ReportData& data) override {
    Report report;
    abi::OcclumCreateReportArg arg{&target, &data, &report};
    SR_RETURN_IF_ERROR(Ioctl(abi::kOcclumCreateReport, &arg, "CREATE_REPORT"));
    return report;
  }
  Status VerifyReport(const Report& report) override {
    Report copy = report;
    if (::ioctl(device_.get(), abi::kOcclumVerifyReport, &copy) != 0) {
      if (errno == EINVAL) return DataLoss("report MAC does not verify (occlum VERIFY_REPORT)");
      return ErrnoStatus("occlum /dev/sgx VERIFY_REPORT", errno);
    }
    return OkStatus();
  }
  Result<SecretBytes> GetKey(const KeyRequest& request) override {
    Key128 key{};
    abi::OcclumGetKeyArg arg{&request, &key};
    SR_RETURN_IF_ERROR(Ioctl(abi::kOcclumGetKey, &arg, "GET_KEY"));
    SecretBytes out(key);
    SecureWipe(key);
    return out;
  }
  Result<std::vector<std::uint8_t>> CreateQuote(const ReportData& data) override {
    std::uint32_t size = 0;
    SR_RETURN_IF_ERROR(Ioctl(abi::kOcclumGetDcapQuoteSize, &size, "GET_DCAP_QUOTE_SIZE"));
    if (size == 0 || size > kMaxQuoteSize) return DataLoss("occlum: implausible DCAP quote size");
    std::vector<std::uint8_t> quote(size);
    abi::OcclumGenDcapQuoteArg arg{&data, &size, quote.data()};
    SR_RETURN_IF_ERROR(Ioctl(abi::kOcclumGenDcapQuote, &arg, "GEN_DCAP_QUOTE"));
    if (size > quote.size()) return DataLoss("occlum: GEN_DCAP_QUOTE overran its buffer");
    quote.resize(size);
    return quote;
  }

 private:
  Status Ioctl(unsigned long request, void* arg, const char* what) {
    if (::ioctl(device_.get(), request, arg) != 0) {
      return ErrnoStatus(std::string("occlum /dev/sgx ") + what, errno);
    }
    return OkStatus();
  }
  UniqueFd device_;  // ioctls on one fd are safe from several threads
};

// EGETKEY executed by the enclave itself (Gramine has no key file for it).
Result<SecretBytes> EncluGetKey(const KeyRequest& request) {
#if defined(__x86_64__)
  alignas(512) KeyRequest aligned = request;
  alignas(16) Key128 key{};
  std::uint64_t rax = abi::kEncluEgetkey;
  asm volatile("enclu" : "+a"(rax) : "b"(&aligned), "c"(&key) : "memory", "cc");
  if (rax != 0) {
    return PermissionDenied("EGETKEY failed with SGX error " + std::to_string(rax));
  }
  SecretBytes out(key);
  SecureWipe(key);
  return out;
#else
  (void)request;
  return Unimplemented("EGETKEY needs x86-64");
#endif
}

class GramineTee final : public Tee {
 public:
  explicit GramineTee(std::string dir) : dir_(std::move(dir)) {}
  std::string_view backend() const override { return "gramine"; }

  Result<TargetInfo> SelfTargetInfo() override {
    SR_ASSIGN_OR_RETURN(std::string bytes, ReadExact(abi::kGramineMyTargetInfo, sizeof(TargetInfo)));
    return StructFromBytes<TargetInfo>(AsBytes(bytes), "gramine my_target_info");
  }
  Result<Report> CreateReport(const TargetInfo& target, const ReportData& data) override {
    // target_info, user_report_data and report form one transaction per process.
    MutexLock lock(mu_);
    SR_RETURN_IF_ERROR(WriteExact(abi::kGramineTargetInfo, BytesOf(target)));
    SR_RETURN_IF_ERROR(WriteExact(abi::kGramineUserReportData, data));
    SR_ASSIGN_OR_RETURN(std::string bytes, ReadExact(abi::kGramineReport, sizeof(Report)));
    return StructFromBytes<Report>(AsBytes(bytes), "gramine report");
  }
  Status VerifyReport(const Report& report) override {
    return internal::VerifyReportWithReportKey(*this, report);
  }
  Result<SecretBytes> GetKey(const KeyRequest& request) override { return EncluGetKey(request); }
  Result<std::vector<std::uint8_t>> CreateQuote(const ReportData& data) override {
    MutexLock lock(mu_);
    SR_RETURN_IF_ERROR(WriteExact(abi::kGramineUserReportData, data));
    std::string path = JoinPath(dir_, abi::kGramineQuote);
    SR_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, kMaxQuoteSize));
    if (bytes.empty()) return DataLoss(path + ": empty quote");
    return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
  }

 private:
  Result<std::string> ReadExact(const char* name, std::size_t size) {
    std::string path = JoinPath(dir_, name);
    SR_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, size));
    if (bytes.size() != size) {
      return DataLoss(path + ": expected " + std::to_string(size) + " bytes, read " +
                      std::to_string(bytes.size()));
    }
    return bytes;
  }
  Status WriteExact(const char* name, std::span<const std::uint8_t> bytes) {
    std::string path = JoinPath(dir_, name);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return ErrnoStatus("opening " + path, errno);
    return WriteAll(fd.get(), bytes).WithContext("writing " + path);
  }

  const std::string dir_;
  Mutex mu_;
};

}  // namespace

Result<std::unique_ptr<Tee>> OpenOcclumTee(const std::string& device) {
  UniqueFd fd(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening the Occlum SGX device " + device, errno);
  return std::unique_ptr<Tee>(std::make_unique<OcclumTee>(std::move(fd)));
}

Result<std::unique_ptr<Tee>> OpenGramineTee(const std::string& dir) {
  std::string probe = JoinPath(dir, abi::kGramineMyTargetInfo);
  if (::access(probe.c_str(), R_OK) != 0) return ErrnoStatus("Gramine attestation file " + probe, errno);
  return std::unique_ptr<Tee>(std::make_unique<GramineTee>(dir));
}

}  // namespace sealroot::local_attest::sgx
