// DCAP quote v3: the layout (offsets and sizes of every field), sim quotes verifying against the
// sim root and nothing else, a flipped bit anywhere refused, and a real Occlum quote from SGX
// hardware parsing and verifying.
#include "local-attest/quote.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/file.h"
#include "local-attest/libos_abi.h"
#include "local-attest/sim.h"
#include "tests/support/process.h"

namespace sealroot::local_attest::sgx {
namespace {

std::unique_ptr<Tee> SimEnclave(std::shared_ptr<const SimQuotingEnclave> qe = nullptr) {
  EnclaveIdentity id;
  id.mr_enclave.fill(0x11);
  id.mr_signer.fill(0x22);
  id.isv_prod_id = 7;
  id.isv_svn = 3;
  id.attributes = {.flags = kFlagMode64Bit, .xfrm = kXfrmLegacy};
  return NewInProcessSimTee(SimCpu::Create(id).value(), std::move(qe));
}

std::string SimRoot() {
  return DefaultSimQuotingEnclave().value()->root_cert_pem();
}

std::vector<std::uint8_t> SimQuote(std::uint8_t fill = 0x5a) {
  ReportData data;
  data.fill(fill);
  return SimEnclave()->CreateQuote(data).value();
}

template <typename T>
T At(const std::vector<std::uint8_t>& q, std::size_t offset) {
  T v;
  std::memcpy(&v, q.data() + offset, sizeof(T));
  return v;
}

TEST(QuoteLayout, FieldsSitAtTheDcapOffsets) {
  std::vector<std::uint8_t> q = SimQuote();
  ParsedQuote p = ParseQuote(q).value();
  EXPECT_EQ(At<std::uint16_t>(q, 0), 3);  // version
  EXPECT_EQ(At<std::uint16_t>(q, 2), 2);  // ECDSA-256-with-P-256
  EXPECT_EQ(At<std::uint32_t>(q, 4), 0);  // SGX
  EXPECT_EQ(0, std::memcmp(q.data() + 12, kIntelQeVendorId.data(), 16));
  // The report body at 48: MRENCLAVE at 48+64, MRSIGNER at 48+128, ISVPRODID at 48+256,
  // report data at 48+320.
  EXPECT_EQ(q[48 + 64], 0x11);
  EXPECT_EQ(q[48 + 128], 0x22);
  EXPECT_EQ(At<std::uint16_t>(q, 48 + 256), 7);
  EXPECT_EQ(At<std::uint16_t>(q, 48 + 258), 3);
  EXPECT_EQ(q[48 + 320], 0x5a);
  EXPECT_EQ(q[48 + 383], 0x5a);
  EXPECT_EQ(At<std::uint32_t>(q, 432), q.size() - 436);  // signature data length
  EXPECT_EQ(0, std::memcmp(q.data() + 436, p.signature.data(), 64));
  EXPECT_EQ(0, std::memcmp(q.data() + 500, p.attest_key.data(), 64));
  EXPECT_EQ(0, std::memcmp(q.data() + 564, &p.qe_report, 384));
  EXPECT_EQ(0, std::memcmp(q.data() + 948, p.qe_report_signature.data(), 64));
  std::uint16_t auth = At<std::uint16_t>(q, 1012);
  EXPECT_EQ(auth, p.qe_auth_data.size());
  EXPECT_EQ(At<std::uint16_t>(q, 1014 + auth), 5);  // PCK certificate chain
  EXPECT_EQ(At<std::uint32_t>(q, 1016 + auth), q.size() - (1020 + auth));
  EXPECT_EQ(p.cert_data.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  // The QE's report binds the attestation key and auth data.
  Sha256 h;
  h.Update(p.attest_key);
  h.Update(p.qe_auth_data);
  Sha256Digest d = h.Finish();
  EXPECT_EQ(0, std::memcmp(p.qe_report.report_data.data(), d.data(), 32));
}

TEST(QuoteVerify, SimQuoteVerifiesAgainstTheSimRootAndReturnsTheBody) {
  std::vector<std::uint8_t> q = SimQuote(0x77);
  ReportBody body = VerifyQuote(q, SimRoot()).value();
  EXPECT_EQ(body.mr_enclave[0], 0x11);
  EXPECT_EQ(body.report_data[63], 0x77);
  EXPECT_NE(body.attributes.flags & kFlagInitted, 0u);
}

TEST(QuoteVerify, TheSameSeedGivesTheSameRootInEveryProcess) {
  // A root made again from the seed (a new certificate, same keys and names) anchors the quote.
  auto again = SimQuotingEnclave::Create(kSimRootSeed).value();
  EXPECT_TRUE(VerifyQuote(SimQuote(), again->root_cert_pem()).ok());
}

TEST(QuoteVerify, AQuoteFromAnotherSimRootIsRefused) {
  auto other = SimQuotingEnclave::Create("another sim root").value();
  std::vector<std::uint8_t> q = SimEnclave(other)->CreateQuote(ReportData{}).value();
  ASSERT_TRUE(VerifyQuote(q, other->root_cert_pem()).ok());
  Result<ReportBody> r = VerifyQuote(q, SimRoot());
  EXPECT_EQ(r.status().code(), Code::kDataLoss);
  EXPECT_NE(r.status().message().find("configured root"), std::string::npos) << r.status().ToString();
  // And the default sim quote against the other root.
  EXPECT_FALSE(VerifyQuote(SimQuote(), other->root_cert_pem()).ok());
}

TEST(QuoteVerify, AFlippedBitAnywhereIsRefused) {
  std::vector<std::uint8_t> q = SimQuote();
  std::string root = SimRoot();
  std::size_t accepted = 0;
  std::string where;
  const std::size_t chain_at = q.size() - ParseQuote(q).value().cert_data.size();
  // Every byte of the binary part; in the PEM chain (mostly base64 text) every third byte, which
  // still hits every line and every certificate's signature.
  for (std::size_t i = 0; i < q.size(); i += i < chain_at ? 1 : 3) {
    std::vector<std::uint8_t> bad = q;
    bad[i] ^= static_cast<std::uint8_t>(1u << (i % 8));
    if (VerifyQuote(bad, root).ok()) {
      ++accepted;
      where += " " + std::to_string(i);
    }
  }
  EXPECT_EQ(accepted, 0u) << "accepted with a bit flipped at:" << where;
}

TEST(QuoteParse, TruncationsAndTrailingBytesAreRefused) {
  std::vector<std::uint8_t> q = SimQuote();
  for (std::size_t n : {std::size_t{0}, std::size_t{47}, std::size_t{432}, std::size_t{436},
                        std::size_t{1012}, q.size() - 1}) {
    EXPECT_EQ(ParseQuote(std::span(q).first(n)).status().code(), Code::kInvalidArgument) << n;
  }
  q.push_back(0);
  EXPECT_EQ(ParseQuote(q).status().code(), Code::kInvalidArgument);
  std::vector<std::uint8_t> v4 = SimQuote();
  v4[0] = 4;
  EXPECT_NE(ParseQuote(v4).status().message().find("version 4"), std::string::npos);
}

std::vector<std::uint8_t> OcclumSample() {
  std::string bytes =
      ReadFile(std::string(SEALROOT_SOURCE_DIR) + "/tests/local-attest/testdata/occlum_dcap_quote.bin")
          .value();
  return {bytes.begin(), bytes.end()};
}

// The last certificate of the sample's own chain: Intel's SGX Root CA.
std::string LastCertificate(const std::string& chain) {
  std::size_t at = chain.rfind("-----BEGIN CERTIFICATE-----");
  return chain.substr(at);
}

TEST(QuoteSample, AnOcclumQuoteFromSgxHardwareParsesAndVerifies) {
  std::vector<std::uint8_t> q = OcclumSample();
  ParsedQuote p = ParseQuote(q).value();
  EXPECT_EQ(p.header.version, 3);
  EXPECT_EQ(p.header.qe_vendor_id, kIntelQeVendorId);
  EXPECT_EQ(p.qe_auth_data.size(), 32u);
  EXPECT_NE(p.body.attributes.flags & kFlagDebug, 0u);  // the sample is a DEBUG enclave
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.body.report_data.data()), 4), "test");
  std::string root = LastCertificate(p.cert_data);
  EXPECT_NE(root.find("-----END CERTIFICATE-----"), std::string::npos);
  // Certificates of a recorded quote may have expired: the signatures are what is checked here.
  QuoteVerifyOptions old{.check_time = false};
  ReportBody body = VerifyQuote(q, root, old).value();
  EXPECT_EQ(body.mr_enclave, p.body.mr_enclave);
  // Intel's chain is not the sim root's, and a flipped bit in the quoted body breaks it.
  EXPECT_FALSE(VerifyQuote(q, SimRoot(), old).ok());
  q[48 + 64] ^= 1;
  EXPECT_FALSE(VerifyQuote(q, root, old).ok());
}

TEST(OcclumAbi, DcapQuoteIoctlsMatchOcclum) {
  EXPECT_EQ(abi::kOcclumGetDcapQuoteSize, 0x80047307u);
  EXPECT_EQ(abi::kOcclumGenDcapQuote, 0xC0187308u);
  EXPECT_EQ(_IOC_SIZE(abi::kOcclumGetDcapQuoteSize), sizeof(std::uint32_t));
  EXPECT_EQ(_IOC_SIZE(abi::kOcclumGenDcapQuote), sizeof(abi::OcclumGenDcapQuoteArg));
  EXPECT_EQ(offsetof(abi::OcclumGenDcapQuoteArg, quote_len), 8u);
  EXPECT_EQ(offsetof(abi::OcclumGenDcapQuoteArg, quote_buf), 16u);
}

// Gramine: the backend writes the report data to user_report_data, then reads `quote`.
TEST(GramineAbi, QuoteWritesTheReportDataThenReadsTheQuote) {
  testing::TempDir dir;
  std::vector<std::uint8_t> expected = SimQuote(0x42);
  ASSERT_TRUE(WriteFileAtomic(dir / "my_target_info", std::string(512, '\0')).ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "user_report_data", std::string(64, '\0')).ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "quote", AsChars(expected)).ok());
  auto tee = OpenGramineTee(dir.path()).value();
  ReportData data;
  data.fill(0x42);
  EXPECT_EQ(tee->CreateQuote(data).value(), expected);
  EXPECT_EQ(ReadFile(dir / "user_report_data").value(), std::string(64, '\x42'));
  EXPECT_TRUE(VerifyQuote(expected, SimRoot()).ok());
}

}  // namespace
}  // namespace sealroot::local_attest::sgx
