// One contract, every implementation reachable here: local_attest::sgx::Tee (local-attest/tee.h)
// for the sim backend in both forms an enclave meets it — in this process, and over the
// launcher's SOCK_SEQPACKET protocol (SimCpuServer) as a real sim enclave does. The occlum and
// gramine backends need an enclave (their EGETKEY/VERIFY run in one); their ABI is tested in
// tests/local-attest/libos_abi_test.cc. What is asserted is the interface's promise, not a
// particular SDK's derivation bytes: reports verify only on their target, tampering is kDataLoss,
// seal keys are stable and bound to the policy's identity, and calls may come from any thread.
#include "local-attest/tee.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "local-attest/sim.h"

namespace sealroot::local_attest::sgx {
namespace {

enum class Impl { kSimInProcess, kSimOverSocket };

EnclaveIdentity Identity(std::uint8_t enclave, std::uint8_t signer) {
  EnclaveIdentity id;
  id.mr_enclave.fill(enclave);
  id.mr_signer.fill(signer);
  id.attributes = {.flags = kFlagMode64Bit, .xfrm = kXfrmLegacy};
  id.isv_prod_id = 7;
  id.isv_svn = 2;
  return id;
}

// A Tee for one enclave identity, and whatever serves it.
struct Enclave {
  std::unique_ptr<Tee> tee;
  std::unique_ptr<SimCpuServer> server;
  std::thread serving;
  ~Enclave() {
    tee.reset();  // closes the enclave's end: Serve() returns
    if (serving.joinable()) serving.join();
  }
};

std::unique_ptr<Enclave> Launch(Impl impl, const EnclaveIdentity& identity) {
  auto cpu = SimCpu::Create(identity);
  EXPECT_TRUE(cpu.ok()) << cpu.status().ToString();
  auto enclave = std::make_unique<Enclave>();
  if (impl == Impl::kSimInProcess) {
    enclave->tee = NewInProcessSimTee(std::move(*cpu));
    return enclave;
  }
  int pair[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  enclave->server = std::make_unique<SimCpuServer>(std::move(*cpu), UniqueFd(pair[0]));
  enclave->serving = std::thread([server = enclave->server.get()] { (void)server->Serve(); });
  enclave->tee = NewRemoteSimTee(UniqueFd(pair[1]));
  return enclave;
}

class TeeConformanceTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    me_ = Launch(GetParam(), Identity(0x11, 0xaa));
    sibling_ = Launch(GetParam(), Identity(0x22, 0xaa));  // another enclave, same signer
    stranger_ = Launch(GetParam(), Identity(0x33, 0xbb));
  }
  Tee& tee() { return *me_->tee; }
  std::unique_ptr<Enclave> me_, sibling_, stranger_;
};

TEST_P(TeeConformanceTest, NamesItsBackendAndKnowsItsOwnIdentity) {
  EXPECT_EQ(tee().backend(), "sim");
  auto self = tee().SelfTargetInfo();
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  Measurement expected;
  expected.fill(0x11);
  EXPECT_EQ(self->mr_enclave, expected);
}

TEST_P(TeeConformanceTest, AReportForMyselfCarriesTheDataAndVerifies) {
  TargetInfo self = tee().SelfTargetInfo().value();
  ReportData data{};
  data[0] = 0x42;
  data[63] = 0x24;
  auto report = tee().CreateReport(self, data);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->body.report_data, data);
  EXPECT_EQ(report->body.mr_enclave, self.mr_enclave);
  Status verified = tee().VerifyReport(*report);
  EXPECT_TRUE(verified.ok()) << verified.ToString();
}

TEST_P(TeeConformanceTest, AReportFromAnotherEnclaveForMeVerifiesAndSaysWhoMadeIt) {
  TargetInfo me = tee().SelfTargetInfo().value();
  auto report = stranger_->tee->CreateReport(me, ReportData{});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(tee().VerifyReport(*report).ok());
  Measurement stranger;
  stranger.fill(0x33);
  EXPECT_EQ(report->body.mr_enclave, stranger);
}

TEST_P(TeeConformanceTest, AReportForAnotherTargetDoesNotVerifyHere) {
  TargetInfo sibling = sibling_->tee->SelfTargetInfo().value();
  auto report = stranger_->tee->CreateReport(sibling, ReportData{});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(sibling_->tee->VerifyReport(*report).ok());
  Status here = tee().VerifyReport(*report);
  ASSERT_FALSE(here.ok());
  EXPECT_EQ(here.code(), Code::kDataLoss) << here.ToString();
}

TEST_P(TeeConformanceTest, EveryTamperedByteOfAReportIsDataLoss) {
  TargetInfo self = tee().SelfTargetInfo().value();
  Report report = tee().CreateReport(self, ReportData{}).value();
  auto bytes = MutableBytesOf(report);
  // Every byte the MAC covers (the body) and the MAC itself; key_id is an input to the key.
  for (std::size_t i = 0; i < bytes.size(); i += 7) {
    Report tampered = report;
    MutableBytesOf(tampered)[i] ^= 0x01;
    Status s = tee().VerifyReport(tampered);
    ASSERT_FALSE(s.ok()) << "byte " << i;
    EXPECT_EQ(s.code(), Code::kDataLoss) << "byte " << i << ": " << s.ToString();
  }
}

TEST_P(TeeConformanceTest, SealKeysAreStableAndBoundToThePolicysIdentity) {
  KeyId id_a{}, id_b{};
  id_b[0] = 1;
  auto a1 = GetSealKey(tee(), kPolicyMrEnclave, id_a);
  auto a2 = GetSealKey(tee(), kPolicyMrEnclave, id_a);
  auto b = GetSealKey(tee(), kPolicyMrEnclave, id_b);
  ASSERT_TRUE(a1.ok() && a2.ok() && b.ok()) << a1.status().ToString();
  EXPECT_EQ(a1->size(), 16u);
  EXPECT_TRUE(*a1 == *a2);  // the same request, the same key
  EXPECT_FALSE(*a1 == *b);  // key_id diversifies

  // MRENCLAVE: another enclave of the same signer gets another key. MRSIGNER: it gets the same
  // one, and an enclave of another signer does not.
  auto sibling_enclave = GetSealKey(*sibling_->tee, kPolicyMrEnclave, id_a);
  ASSERT_TRUE(sibling_enclave.ok());
  EXPECT_FALSE(*a1 == *sibling_enclave);
  auto mine_signer = GetSealKey(tee(), kPolicyMrSigner, id_a);
  auto sibling_signer = GetSealKey(*sibling_->tee, kPolicyMrSigner, id_a);
  auto stranger_signer = GetSealKey(*stranger_->tee, kPolicyMrSigner, id_a);
  ASSERT_TRUE(mine_signer.ok() && sibling_signer.ok() && stranger_signer.ok());
  EXPECT_TRUE(*mine_signer == *sibling_signer);
  EXPECT_FALSE(*mine_signer == *stranger_signer);
  EXPECT_FALSE(*mine_signer == *a1);
}

TEST_P(TeeConformanceTest, AKeyRequestAboveTheEnclavesSvnIsRefused) {
  KeyRequest request;
  request.key_name = static_cast<std::uint16_t>(KeyName::kSeal);
  request.key_policy = kPolicyMrEnclave;
  request.isv_svn = 3;  // the enclave's ISVSVN is 2
  request.cpu_svn = kSimDefaultCpuSvn;
  request.attribute_mask = {.flags = ~std::uint64_t{0}, .xfrm = 0};
  EXPECT_FALSE(tee().GetKey(request).ok());
  request.isv_svn = 2;
  EXPECT_TRUE(tee().GetKey(request).ok());
}

TEST_P(TeeConformanceTest, CallsFromSeveralThreadsAtOnceAllSucceed) {
  TargetInfo self = tee().SelfTargetInfo().value();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        ReportData data{};
        data[0] = static_cast<std::uint8_t>(t);
        data[1] = static_cast<std::uint8_t>(i);
        auto report = tee().CreateReport(self, data);
        if (report.ok() && report->body.report_data == data && tee().VerifyReport(*report).ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
}

TEST_P(TeeConformanceTest, QuotesAreProducedForTheEnclavesData) {
  ReportData data{};
  data[9] = 9;
  auto quote = tee().CreateQuote(data);
  ASSERT_TRUE(quote.ok()) << quote.status().ToString();
  EXPECT_FALSE(quote->empty());
  auto other = tee().CreateQuote(ReportData{});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*quote, *other);
}

INSTANTIATE_TEST_SUITE_P(Backends, TeeConformanceTest,
                         ::testing::Values(Impl::kSimInProcess, Impl::kSimOverSocket),
                         [](const ::testing::TestParamInfo<Impl>& param_info) {
                           return param_info.param == Impl::kSimInProcess ? std::string("SimInProcess")
                                                                          : std::string("SimOverSocket");
                         });

}  // namespace
}  // namespace sealroot::local_attest::sgx
