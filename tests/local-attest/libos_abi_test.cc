// The occlum and gramine backends at the byte/ABI level (no SGX here): ioctl numbers and
// argument sizes, the gramine file protocol against stand-in files, and backend selection.
#include "local-attest/libos_abi.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "base/crypto.h"
#include "base/file.h"
#include "local-attest/sim.h"
#include "tests/support/process.h"

namespace sealroot::local_attest::sgx {
namespace {

TEST(OcclumAbi, IoctlNumbersMatchOcclum) {
  EXPECT_EQ(abi::kOcclumSelfTarget, 0x82007303u);
  EXPECT_EQ(abi::kOcclumCreateReport, 0xC0187304u);
  EXPECT_EQ(abi::kOcclumVerifyReport, 0x41B07305u);
  EXPECT_EQ(abi::kOcclumGetKey, 0xC010730Bu);
  EXPECT_EQ(abi::kOcclumIsEdmmSupported, 0x80047300u);
  EXPECT_EQ(_IOC_SIZE(abi::kOcclumCreateReport), sizeof(abi::OcclumCreateReportArg));
  EXPECT_EQ(_IOC_SIZE(abi::kOcclumGetKey), sizeof(abi::OcclumGetKeyArg));
  EXPECT_EQ(_IOC_SIZE(abi::kOcclumVerifyReport), sizeof(Report));
  EXPECT_EQ(_IOC_SIZE(abi::kOcclumSelfTarget), sizeof(TargetInfo));
}

TEST(OcclumAbi, OpeningWithoutTheDeviceSaysSo) {
  auto tee = OpenOcclumTee("/nonexistent/sgx");
  EXPECT_EQ(tee.status().code(), Code::kNotFound);
  EXPECT_NE(tee.status().message().find("/nonexistent/sgx"), std::string::npos);
}

// A directory of regular files stands in for /dev/attestation; what a real Gramine would
// compute (the report) is pre-filled from a sim CPU.
TEST(GramineAbi, FileProtocolWritesTargetAndDataThenReadsTheReport) {
  testing::TempDir dir;
  EnclaveIdentity id;
  id.mr_enclave.fill(3);
  id.attributes = {.flags = kFlagMode64Bit, .xfrm = kXfrmLegacy};
  SimCpu cpu = SimCpu::Create(id).value();
  TargetInfo me = TargetInfoFromReport(cpu.CreateReport(TargetInfo{}, ReportData{}).body);
  ASSERT_TRUE(WriteFileAtomic(dir / "my_target_info", BytesOf(me)).ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "target_info", std::string(512, '\0')).ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "user_report_data", std::string(64, '\0')).ok());
  TargetInfo target;
  target.mr_enclave.fill(8);
  ReportData data{};
  data[5] = 0x5;
  Report expected = cpu.CreateReport(target, data);
  ASSERT_TRUE(WriteFileAtomic(dir / "report", BytesOf(expected)).ok());

  auto tee = OpenGramineTee(dir.path()).value();
  EXPECT_EQ(tee->backend(), "gramine");
  EXPECT_EQ(tee->SelfTargetInfo().value().mr_enclave, me.mr_enclave);
  Report report = tee->CreateReport(target, data).value();
  EXPECT_EQ(report.mac, expected.mac);
  // The backend wrote exactly the target and the data, at their exact sizes.
  EXPECT_EQ(ReadFile(dir / "target_info").value(), std::string(AsChars(BytesOf(target))));
  std::string written = ReadFile(dir / "user_report_data").value();
  ASSERT_EQ(written.size(), abi::kGramineUserReportDataSize);
  EXPECT_EQ(written[5], 0x5);
}

TEST(GramineAbi, WrongFileSizesAreRefused) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "my_target_info", std::string(511, '\0')).ok());
  auto tee = OpenGramineTee(dir.path()).value();
  EXPECT_FALSE(tee->SelfTargetInfo().ok());
}

TEST(OpenTee, PicksSimFromTheInheritedFdAndRefusesGarbage) {
  ::setenv(kSimTeeFdEnv, "not-a-number", 1);
  EXPECT_EQ(OpenTee().status().code(), Code::kInvalidArgument);
  ::unsetenv(kSimTeeFdEnv);
  auto none = OpenTee();
  EXPECT_EQ(none.status().code(), Code::kFailedPrecondition) << none.status().ToString();
}

}  // namespace
}  // namespace sealroot::local_attest::sgx
