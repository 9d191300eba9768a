// The simulated quoting enclave (local-attest/sim.h): a certificate chain and keys derived from
// a seed, and quotes in the DCAP v3 layout (local-attest/quote.h). No security (the seed is public).
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "base/encoding.h"
#include "local-attest/p256.h"
#include "local-attest/quote.h"
#include "local-attest/sim.h"

namespace sealroot::local_attest::sgx {
namespace {

using X509ExtPtr = std::unique_ptr<X509_EXTENSION, OsslDeleter<X509_EXTENSION_free>>;

Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return OpensslStatus("certificate extension");
  return OkStatus();
}

// A certificate for `key` named `cn`, signed by `issuer_key` (issued by `issuer`, or self-signed).
Result<X509Ptr> MakeCert(EVP_PKEY* key, const std::string& cn, EVP_PKEY* issuer_key, X509* issuer,
                         long serial, bool ca) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) != 1 ||
      ASN1_TIME_set_string(X509_getm_notBefore(cert.get()), "20240101000000Z") != 1 ||
      ASN1_TIME_set_string(X509_getm_notAfter(cert.get()), "20491231235959Z") != 1 ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OpensslStatus("sim certificate");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto add = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC,
                                      reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) == 1;
  };
  if (!add("O", "sealroot SGX simulation (no security)") || !add("CN", cn))
    return OpensslStatus("sim certificate");
  X509* signer = issuer ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1)
    return OpensslStatus("sim certificate");
  SR_RETURN_IF_ERROR(
      AddExtension(cert.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
  SR_RETURN_IF_ERROR(
      AddExtension(cert.get(), signer, NID_key_usage,
                   ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,nonRepudiation"));
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return OpensslStatus("signing a sim certificate");
  return cert;
}

Result<std::string> Pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpensslStatus("PEM");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

template <typename T>
void Append(std::vector<std::uint8_t>& out, const T& value) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

void AppendBytes(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

}  // namespace

Result<std::shared_ptr<const SimQuotingEnclave>> SimQuotingEnclave::Create(std::string_view seed) {
  using p256::DeterministicKey;
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr root_key, DeterministicKey(seed, "root CA"));
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, DeterministicKey(seed, "processor CA"));
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr pck_key, DeterministicKey(seed, "PCK"));
  auto qe = std::make_shared<SimQuotingEnclave>(PrivateTag{});
  SR_ASSIGN_OR_RETURN(qe->attest_key_, DeterministicKey(seed, "attestation key"));
  const Sha256Digest seed_hash = Sha256Of(seed);
  std::string tag = HexEncode(std::span(seed_hash).first(4));
  SR_ASSIGN_OR_RETURN(X509Ptr root, MakeCert(root_key.get(), "sealroot sim SGX Root CA " + tag,
                                             root_key.get(), nullptr, 1, true));
  SR_ASSIGN_OR_RETURN(X509Ptr ca, MakeCert(ca_key.get(), "sealroot sim SGX PCK Processor CA " + tag,
                                           root_key.get(), root.get(), 2, true));
  SR_ASSIGN_OR_RETURN(X509Ptr pck, MakeCert(pck_key.get(), "sealroot sim SGX PCK Certificate " + tag,
                                            ca_key.get(), ca.get(), 3, false));
  SR_ASSIGN_OR_RETURN(qe->root_pem_, Pem(root.get()));
  SR_ASSIGN_OR_RETURN(std::string ca_pem, Pem(ca.get()));
  SR_ASSIGN_OR_RETURN(std::string pck_pem, Pem(pck.get()));
  std::string chain = pck_pem + ca_pem + qe->root_pem_;

  SR_ASSIGN_OR_RETURN(EcPoint attest_point, p256::PointOf(qe->attest_key_.get()));
  std::vector<std::uint8_t> auth_data(32);
  for (std::size_t i = 0; i < auth_data.size(); ++i) auth_data[i] = static_cast<std::uint8_t>(i);
  // The QE's own report: its identity, and report data binding the attestation key.
  ReportBody qe_report;
  qe_report.cpu_svn = kSimDefaultCpuSvn;
  qe_report.attributes = {.flags = kFlagInitted | kFlagMode64Bit, .xfrm = kXfrmLegacy};
  qe_report.mr_enclave = Sha256Of(std::string_view("sealroot sim quoting enclave"));
  qe_report.mr_signer = Sha256Of(std::string_view("sealroot sim quoting enclave signer"));
  qe_report.isv_prod_id = 1;
  Sha256 h;
  h.Update(attest_point);
  h.Update(auth_data);
  Sha256Digest binding = h.Finish();
  std::memcpy(qe_report.report_data.data(), binding.data(), binding.size());
  SR_ASSIGN_OR_RETURN(EcdsaSignature qe_sig, p256::Sign(pck_key.get(), BytesOf(qe_report)));

  std::vector<std::uint8_t>& part = qe->qe_part_;
  AppendBytes(part, attest_point);
  AppendBytes(part, BytesOf(qe_report));
  AppendBytes(part, qe_sig);
  Append(part, static_cast<std::uint16_t>(auth_data.size()));
  AppendBytes(part, auth_data);
  Append(part, kCertDataPckChain);
  Append(part, static_cast<std::uint32_t>(chain.size()));
  AppendBytes(part, AsBytes(chain));
  return std::shared_ptr<const SimQuotingEnclave>(std::move(qe));
}

Result<std::vector<std::uint8_t>> SimQuotingEnclave::Quote(const ReportBody& body) const {
  QuoteHeader header;
  header.version = kQuoteVersion3;
  header.att_key_type = kAttKeyEcdsaP256;
  header.tee_type = kTeeTypeSgx;
  header.qe_vendor_id = kIntelQeVendorId;
  std::vector<std::uint8_t> quote;
  Append(quote, header);
  AppendBytes(quote, BytesOf(body));
  SR_ASSIGN_OR_RETURN(EcdsaSignature sig, p256::Sign(attest_key_.get(), quote));
  Append(quote, static_cast<std::uint32_t>(sig.size() + qe_part_.size()));
  AppendBytes(quote, sig);
  AppendBytes(quote, qe_part_);
  return quote;
}

Result<std::shared_ptr<const SimQuotingEnclave>> DefaultSimQuotingEnclave() {
  static const Result<std::shared_ptr<const SimQuotingEnclave>> qe = SimQuotingEnclave::Create(kSimRootSeed);
  return qe;
}

Result<std::vector<std::uint8_t>> SimCpu::CreateQuote(const ReportData& data,
                                                      const SimQuotingEnclave& qe) const {
  return qe.Quote(CreateReport(TargetInfo{}, data).body);
}

}  // namespace sealroot::local_attest::sgx
