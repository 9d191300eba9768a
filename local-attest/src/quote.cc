// DCAP quote v3 parsing and verification (local-attest/quote.h).
#include "local-attest/quote.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstring>

#include "base/crypto.h"
#include "base/encoding.h"
#include "local-attest/p256.h"

namespace sealroot::local_attest::sgx {
namespace {

using X509StorePtr = std::unique_ptr<X509_STORE, OsslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslDeleter<X509_STORE_CTX_free>>;

struct X509StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;

// A bounds-checked little-endian cursor.
class Cursor {
 public:
  explicit Cursor(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  Result<std::span<const std::uint8_t>> Take(std::size_t n, const char* what) {
    if (n > bytes_.size() - pos_) {
      return InvalidArgument(std::string("SGX quote: ") + what + " runs past the end");
    }
    auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  template <typename T>
  Result<T> Read(const char* what) {
    SR_ASSIGN_OR_RETURN(auto bytes, Take(sizeof(T), what));
    T value;
    std::memcpy(&value, bytes.data(), sizeof(T));
    return value;
  }
  std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

template <std::size_t N>
void CopyTo(std::array<std::uint8_t, N>& out, std::span<const std::uint8_t> in) {
  std::memcpy(out.data(), in.data(), N);
}

// One PEM certificate, canonical: its base64 text must be exactly the encoding of the DER it
// decodes to (base64's unused bits and non-DER encodings would let a flipped bit pass).
Result<X509Ptr> ParseOnePem(std::string_view pem, std::string_view base64_text) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) {
    OpensslErrors();
    return DataLoss("SGX quote: a certificate of the PCK chain does not parse");
  }
  unsigned char* der = nullptr;
  int der_len = i2d_X509(cert.get(), &der);
  if (der_len <= 0) return OpensslStatus("re-encoding a PCK chain certificate", Code::kDataLoss);
  std::string canonical = Base64Encode(std::span<const std::uint8_t>(der, static_cast<std::size_t>(der_len)));
  OPENSSL_free(der);
  std::string text;
  for (char c : base64_text) {
    if (c != '\n' && c != '\r') text.push_back(c);
  }
  if (text != canonical) return DataLoss("SGX quote: a PCK chain certificate is not in canonical form");
  return cert;
}

bool IsBlank(std::string_view s) {
  return s.find_first_not_of(std::string_view(" \t\r\n\0", 5)) == std::string_view::npos;
}

// Strict: only whole PEM certificates separated by whitespace (DCAP chains may end with NULs).
Result<std::vector<X509Ptr>> ParsePemChain(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<X509Ptr> out;
  for (;;) {
    std::size_t begin = pem.find(kBegin);
    if (begin == std::string_view::npos) break;
    if (!IsBlank(pem.substr(0, begin)))
      return DataLoss("SGX quote: stray bytes in the PCK certificate chain");
    std::size_t end = pem.find(kEnd, begin);
    if (end == std::string_view::npos) return DataLoss("SGX quote: a PCK chain certificate is cut short");
    end += kEnd.size();
    std::string_view inner = pem.substr(begin + kBegin.size(), end - kEnd.size() - begin - kBegin.size());
    SR_ASSIGN_OR_RETURN(X509Ptr cert, ParseOnePem(pem.substr(begin, end - begin), inner));
    out.push_back(std::move(cert));
    pem.remove_prefix(end);
  }
  if (!IsBlank(pem)) return DataLoss("SGX quote: stray bytes in the PCK certificate chain");
  if (out.empty()) return DataLoss("SGX quote: the PCK certificate chain holds no certificate");
  return out;
}

Status VerifyChain(const std::vector<X509Ptr>& chain, std::string_view root_cert_pem,
                   const QuoteVerifyOptions& options) {
  SR_ASSIGN_OR_RETURN(std::vector<X509Ptr> roots, ParsePemChain(root_cert_pem));
  if (chain.size() < 2) return DataLoss("SGX quote: the PCK chain needs the PCK and its issuers");
  // The chain ends with its root: self-signed, and the very key configured here.
  X509* last = chain.back().get();
  EvpPkeyPtr last_key(X509_get_pubkey(last));
  EvpPkeyPtr root_key(X509_get_pubkey(roots[0].get()));
  if (!last_key || !root_key || X509_verify(last, last_key.get()) != 1 ||
      EVP_PKEY_eq(last_key.get(), root_key.get()) != 1) {
    OpensslErrors();
    return DataLoss(
        "SGX quote: the PCK certificate chain does not lead to the configured root: "
        "its last certificate is not the configured root CA");
  }
  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) return OpensslStatus("X509 store");
  for (const X509Ptr& root : roots) {
    if (X509_STORE_add_cert(store.get(), root.get()) != 1)
      return OpensslStatus("adding the root certificate");
  }
  for (std::size_t i = 1; i < chain.size(); ++i) {
    X509_up_ref(chain[i].get());
    sk_X509_push(untrusted.get(), chain[i].get());
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    return OpensslStatus("X509 verification context");
  }
  if (!options.check_time) X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_NO_CHECK_TIME);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    OpensslErrors();
    return DataLoss(
        std::string("SGX quote: the PCK certificate chain does not lead to the configured root: ") +
        X509_verify_cert_error_string(err));
  }
  return OkStatus();
}

}  // namespace

Result<ParsedQuote> ParseQuote(std::span<const std::uint8_t> quote) {
  if (quote.size() > kMaxQuoteSize) return InvalidArgument("SGX quote: larger than 64 KiB");
  Cursor in(quote);
  ParsedQuote q;
  SR_ASSIGN_OR_RETURN(q.header, in.Read<QuoteHeader>("header"));
  if (q.header.version != kQuoteVersion3) {
    return InvalidArgument("SGX quote: version " + std::to_string(q.header.version) + " (only 3)");
  }
  if (q.header.att_key_type != kAttKeyEcdsaP256) {
    return InvalidArgument("SGX quote: attestation key type " + std::to_string(q.header.att_key_type) +
                           " (only 2, ECDSA P-256)");
  }
  if (q.header.tee_type != kTeeTypeSgx) return InvalidArgument("SGX quote: not an SGX quote (TEE type)");
  SR_ASSIGN_OR_RETURN(q.body, in.Read<ReportBody>("report body"));
  SR_ASSIGN_OR_RETURN(std::uint32_t sig_len, in.Read<std::uint32_t>("signature data length"));
  if (sig_len != in.remaining()) {
    return InvalidArgument("SGX quote: signature data length " + std::to_string(sig_len) +
                           " does not match the " + std::to_string(in.remaining()) + " bytes that follow");
  }
  SR_ASSIGN_OR_RETURN(auto sig, in.Take(64, "signature"));
  CopyTo(q.signature, sig);
  SR_ASSIGN_OR_RETURN(auto key, in.Take(64, "attestation key"));
  CopyTo(q.attest_key, key);
  SR_ASSIGN_OR_RETURN(q.qe_report, in.Read<ReportBody>("QE report"));
  SR_ASSIGN_OR_RETURN(auto qe_sig, in.Take(64, "QE report signature"));
  CopyTo(q.qe_report_signature, qe_sig);
  SR_ASSIGN_OR_RETURN(std::uint16_t auth_len, in.Read<std::uint16_t>("QE auth data size"));
  SR_ASSIGN_OR_RETURN(auto auth, in.Take(auth_len, "QE auth data"));
  q.qe_auth_data.assign(auth.begin(), auth.end());
  SR_ASSIGN_OR_RETURN(q.cert_type, in.Read<std::uint16_t>("certification data type"));
  if (q.cert_type != kCertDataPckChain) {
    return InvalidArgument("SGX quote: certification data type " + std::to_string(q.cert_type) +
                           " (only 5, PCK certificate chain)");
  }
  SR_ASSIGN_OR_RETURN(std::uint32_t cert_len, in.Read<std::uint32_t>("certification data size"));
  SR_ASSIGN_OR_RETURN(auto certs, in.Take(cert_len, "certification data"));
  if (in.remaining() != 0) return InvalidArgument("SGX quote: bytes after the certification data");
  q.cert_data.assign(AsChars(certs));
  return q;
}

Result<ReportBody> VerifyQuote(std::span<const std::uint8_t> quote, std::string_view root_cert_pem,
                               const QuoteVerifyOptions& options) {
  SR_ASSIGN_OR_RETURN(ParsedQuote q, ParseQuote(quote));
  SR_ASSIGN_OR_RETURN(std::vector<X509Ptr> chain, ParsePemChain(q.cert_data));
  SR_RETURN_IF_ERROR(VerifyChain(chain, root_cert_pem, options));
  EvpPkeyPtr pck(X509_get_pubkey(chain[0].get()));
  if (!pck) return DataLoss("SGX quote: the PCK certificate has no usable public key");
  if (!p256::Verify(pck.get(), BytesOf(q.qe_report), q.qe_report_signature)) {
    return DataLoss("SGX quote: the QE report signature does not verify with the PCK key");
  }
  Sha256 h;
  h.Update(q.attest_key);
  h.Update(q.qe_auth_data);
  Sha256Digest expected = h.Finish();
  ReportData want{};
  std::memcpy(want.data(), expected.data(), expected.size());
  if (q.qe_report.report_data != want) {
    return DataLoss("SGX quote: the QE report data is not SHA-256(attestation key || QE auth data)");
  }
  SR_ASSIGN_OR_RETURN(EvpPkeyPtr attest_key, p256::PublicKey(q.attest_key));
  if (!p256::Verify(attest_key.get(), quote.first(kQuoteSignedSize), q.signature)) {
    return DataLoss("SGX quote: the quote signature does not verify with the attestation key");
  }
  return q.body;
}

}  // namespace sealroot::local_attest::sgx
