// The simulated SGX CPU ("sim" backend). It gives NO SECURITY: the base keys are the Intel SDK
// simulation-mode constants, public by design, so anyone can forge a sim report or derive a sim
// key. What it models faithfully is SGX's *behaviour*: the byte-exact structures, EREPORT's MAC
// with the target's report key, and EGETKEY's derivations (the SDK simulation-mode ones, so the
// SDK's vectors apply), and that an enclave's identity is fixed by whoever created it, never
// claimed by the enclave.
//
// In sealroot the launcher (stub-enclave/launcher.h) is the simulated CPU: it measures an
// enclave, builds a SimCpu for that identity and serves it to the enclave process over an
// inherited socket (SimCpuServer below); the enclave reaches it through OpenTee() (tee.h).
// NewInProcessSimTee() puts a SimCpu in the caller's own process, for tests and benchmarks only:
// a process that builds its own SimCpu can claim any identity.
//
// Thread-safety: SimCpu is immutable after construction and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto.h"
#include "base/fd.h"
#include "base/secret.h"
#include "base/status.h"
#include "local-attest/sgx_types.h"
#include "local-attest/tee.h"

namespace sealroot::local_attest::sgx {

// What the CPU knows about an enclave after EINIT (the SECS fields reports and keys use).
struct EnclaveIdentity {
  Measurement mr_enclave{};
  Measurement mr_signer{};
  Attributes attributes{};  // INITTED is set by the CPU model itself
  std::uint32_t misc_select = 0;
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  ConfigId config_id{};  // KSS; non-zero only with kFlagKss
  std::uint16_t config_svn = 0;
  IsvFamilyId isv_family_id{};     // from SIGSTRUCT; KSS, non-zero only with kFlagKss
  IsvExtProdId isv_ext_prod_id{};  // from SIGSTRUCT; KSS, non-zero only with kFlagKss
};

// The SDK simulation-mode constants (facts/sgx-local-attestation.md).
// The simulated CPU runs at the default CPUSVN; EGETKEY also accepts the SDK's "downgraded" one
// (a key for an older TCB) and refuses its "upgraded" one, as the SDK simulator does.
inline constexpr CpuSvn kSimDefaultCpuSvn = {0x48, 0x20, 0xf3, 0x37, 0x6a, 0xe6, 0xb2, 0xf2,
                                             0x03, 0x4d, 0x3b, 0x7a, 0x4b, 0x48, 0xa7, 0x78};
inline constexpr CpuSvn kSimDowngradedCpuSvn = {0x64, 0xea, 0x4f, 0x3f, 0xa0, 0x03, 0x0c, 0x36,
                                                0x38, 0x3c, 0x32, 0x2d, 0x4f, 0x3a, 0x8d, 0x4f};
inline constexpr CpuSvn kSimUpgradedCpuSvn = {0x53, 0x39, 0xae, 0x8c, 0x93, 0xae, 0x8f, 0x3c,
                                              0xe4, 0x32, 0xdb, 0x92, 0x4d, 0x0f, 0x07, 0x33};

// The report key the CPU derives for `target` and `key_id` (the SDK-sim dd_report_key layout:
// 192 bytes CMAC'ed with the REPORT base key). Exposed for tests against the facts' layout.
Key128 DeriveSimReportKey(const TargetInfo& target, const KeyId& key_id);

class SimQuotingEnclave;

class SimCpu {
 public:
  // Refuses identities SGX could not have initialised (no MODE64BIT, XFRM without x87/SSE,
  // a CONFIGID, ISVFAMILYID or ISVEXTPRODID without KSS).
  static Result<SimCpu> Create(EnclaveIdentity identity);

  const EnclaveIdentity& identity() const { return identity_; }

  // EREPORT: a report on this enclave, MAC'ed with `target`'s report key.
  Report CreateReport(const TargetInfo& target, const ReportData& data) const;
  // EGETKEY as the SDK >= 2.19 simulator with sgx_get_key() in front of it. Each error names the
  // sgx_status_t the SDK returns: SGX_ERROR_INVALID_PARAMETER (InvalidArgument: reserved bytes,
  // unknown policy bits, KSS policies or a CONFIGSVN without the KSS attribute),
  // SGX_ERROR_INVALID_ISVSVN (PermissionDenied: ISVSVN or CONFIGSVN above the enclave's),
  // SGX_ERROR_INVALID_CPUSVN (PermissionDenied), SGX_ERROR_INVALID_ATTRIBUTE (PermissionDenied:
  // PROVISION/EINITTOKEN keys without the attribute), SGX_ERROR_INVALID_KEYNAME (InvalidArgument).
  // Keys: REPORT and SEAL; PROVISION, PROVISION_SEAL and EINITTOKEN are Unimplemented when the
  // enclave has the attribute that would allow them.
  Result<SecretBytes> GetKey(const KeyRequest& request) const;
  // A DCAP quote (local-attest/quote.h) on this enclave carrying `data`, signed by `qe`.
  Result<std::vector<std::uint8_t>> CreateQuote(const ReportData& data, const SimQuotingEnclave& qe) const;

 private:
  explicit SimCpu(EnclaveIdentity identity) : identity_(identity) {}
  EnclaveIdentity identity_;
};

// The simulated quoting enclave and its provisioning certificates: a root CA, an intermediate
// ("processor") CA and a PCK certificate, all P-256, whose keys are derived from a seed; the PCK
// key signs the QE's report, which vouches for the attestation key that signs quotes. NO
// SECURITY: the seed of the default root is public (kSimRootSeed), so anyone can sign sim quotes;
// what it models is the quote format and the checks a verifier makes. A test that needs "another
// root" creates a QE from another seed. The same seed gives the same keys and names in every
// process, so any copy of RootCertPem() is a valid trust anchor for every quote of that seed.
class SimQuotingEnclave {
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  explicit SimQuotingEnclave(PrivateTag) {}
  static Result<std::shared_ptr<const SimQuotingEnclave>> Create(std::string_view seed);
  // The root CA certificate a verifier (the key broker) is configured with.
  const std::string& root_cert_pem() const { return root_pem_; }
  // A quote of `body` (what the QE does after verifying the enclave's report for it).
  Result<std::vector<std::uint8_t>> Quote(const ReportBody& body) const;

 private:
  EvpPkeyPtr attest_key_;
  std::vector<std::uint8_t> qe_part_;  // attestation key .. certification data (fixed per QE)
  std::string root_pem_;
};

inline constexpr char kSimRootSeed[] = "sealroot sim root v1";
// The QE of kSimRootSeed, created once per process. The launcher quotes with it.
Result<std::shared_ptr<const SimQuotingEnclave>> DefaultSimQuotingEnclave();

// The launcher's side of the sim TEE socket: answers one enclave's EREPORT/EGETKEY requests.
// The socket is a SOCK_SEQPACKET pair end; every request and reply is one packet:
//   request  = op u32 (1 EREPORT, 2 EGETKEY) || TARGETINFO(512) || REPORTDATA(64)   (EREPORT)
//                                            || KEYREQUEST(512)                      (EGETKEY)
//                                            || REPORTDATA(64)                       (3 QUOTE)
//   reply    = status u32 (0 ok) || REPORT(432) | KEY(16) | quote
//              a refused EGETKEY: status = its Status code (base/status.h) || the error message
// Malformed requests get status 0xffffffff and the connection stays usable.
//
// Serve() loops until the peer closes its end (the enclave and all its fd copies are gone) or
// Shutdown() is called from another thread; it returns OK in both cases.
class SimCpuServer {
 public:
  SimCpuServer(SimCpu cpu, UniqueFd socket) : cpu_(std::move(cpu)), socket_(std::move(socket)) {}
  Status Serve();
  // Makes a running Serve() return soon (thread-safe).
  void Shutdown();

 private:
  SimCpu cpu_;
  UniqueFd socket_;
};

// The environment variable naming the inherited sim TEE socket fd in an enclave process.
inline constexpr const char kSimTeeFdEnv[] = "SEALROOT_SIM_TEE_FD";

// A Tee backed by a SimCpu living in this process (tests and benchmarks only; see above).
// Its quotes are signed by `qe` (the default sim QE when null).
std::unique_ptr<Tee> NewInProcessSimTee(SimCpu cpu, std::shared_ptr<const SimQuotingEnclave> qe = nullptr);
// A Tee that asks the launcher over `socket` (a SimCpuServer's peer end).
std::unique_ptr<Tee> NewRemoteSimTee(UniqueFd socket);

}  // namespace sealroot::local_attest::sgx
