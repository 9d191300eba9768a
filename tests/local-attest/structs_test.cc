// Byte-exact structures (sizes/offsets at run time too, so a report shows them), the SDK's KDF
// vectors, and the sim CPU's EREPORT/EGETKEY semantics.
#include <gtest/gtest.h>

#include <cstddef>

#include "base/encoding.h"
#include "local-attest/dh.h"
#include "local-attest/sim.h"

namespace sealroot::local_attest::sgx {
namespace {

std::string Hex(std::span<const std::uint8_t> b) {
  return HexEncode(b);
}

TEST(SgxStructs, SizesAndOffsetsMatchTheArchitecture) {
  EXPECT_EQ(sizeof(Attributes), 16u);
  EXPECT_EQ(sizeof(TargetInfo), 512u);
  EXPECT_EQ(offsetof(TargetInfo, attributes), 32u);
  EXPECT_EQ(offsetof(TargetInfo, config_svn), 50u);
  EXPECT_EQ(offsetof(TargetInfo, misc_select), 52u);
  EXPECT_EQ(offsetof(TargetInfo, config_id), 64u);
  EXPECT_EQ(sizeof(ReportBody), 384u);
  EXPECT_EQ(offsetof(ReportBody, misc_select), 16u);
  EXPECT_EQ(offsetof(ReportBody, isv_ext_prod_id), 32u);
  EXPECT_EQ(offsetof(ReportBody, attributes), 48u);
  EXPECT_EQ(offsetof(ReportBody, mr_enclave), 64u);
  EXPECT_EQ(offsetof(ReportBody, mr_signer), 128u);
  EXPECT_EQ(offsetof(ReportBody, config_id), 192u);
  EXPECT_EQ(offsetof(ReportBody, isv_prod_id), 256u);
  EXPECT_EQ(offsetof(ReportBody, isv_svn), 258u);
  EXPECT_EQ(offsetof(ReportBody, config_svn), 260u);
  EXPECT_EQ(offsetof(ReportBody, isv_family_id), 304u);
  EXPECT_EQ(offsetof(ReportBody, report_data), 320u);
  EXPECT_EQ(sizeof(Report), 432u);
  EXPECT_EQ(offsetof(Report, key_id), 384u);
  EXPECT_EQ(offsetof(Report, mac), 416u);
  EXPECT_EQ(sizeof(KeyRequest), 512u);
  EXPECT_EQ(offsetof(KeyRequest, key_policy), 2u);
  EXPECT_EQ(offsetof(KeyRequest, isv_svn), 4u);
  EXPECT_EQ(offsetof(KeyRequest, cpu_svn), 8u);
  EXPECT_EQ(offsetof(KeyRequest, attribute_mask), 24u);
  EXPECT_EQ(offsetof(KeyRequest, key_id), 40u);
  EXPECT_EQ(offsetof(KeyRequest, misc_mask), 72u);
  EXPECT_EQ(offsetof(KeyRequest, config_svn), 76u);
  EXPECT_EQ(sizeof(Sigstruct), 1808u);
  EXPECT_EQ(offsetof(Sigstruct, modulus), 128u);
  EXPECT_EQ(offsetof(Sigstruct, exponent), 512u);
  EXPECT_EQ(offsetof(Sigstruct, signature), 516u);
  EXPECT_EQ(offsetof(Sigstruct, misc_select), 900u);
  EXPECT_EQ(offsetof(Sigstruct, isv_family_id), 912u);
  EXPECT_EQ(offsetof(Sigstruct, attributes), 928u);
  EXPECT_EQ(offsetof(Sigstruct, attribute_mask), 944u);
  EXPECT_EQ(offsetof(Sigstruct, enclave_hash), 960u);
  EXPECT_EQ(offsetof(Sigstruct, isv_ext_prod_id), 1008u);
  EXPECT_EQ(offsetof(Sigstruct, isv_prod_id), 1024u);
  EXPECT_EQ(offsetof(Sigstruct, isv_svn), 1026u);
  EXPECT_EQ(offsetof(Sigstruct, q1), 1040u);
  EXPECT_EQ(offsetof(Sigstruct, q2), 1424u);
}

TEST(SgxStructs, WireBytesAreLittleEndianFields) {
  ReportBody body;
  body.isv_prod_id = 0x1234;
  body.misc_select = 0xa1b2c3d4;
  auto bytes = BytesOf(body);
  EXPECT_EQ(bytes[256], 0x34);
  EXPECT_EQ(bytes[257], 0x12);
  EXPECT_EQ(bytes[16], 0xd4);
  EXPECT_EQ(bytes[19], 0xa1);
}

TEST(SgxStructs, ParsingRefusesWrongSizes) {
  std::vector<std::uint8_t> short_report(431);
  EXPECT_EQ(StructFromBytes<Report>(short_report, "report").status().code(), Code::kInvalidArgument);
  std::vector<std::uint8_t> long_report(433);
  EXPECT_FALSE(StructFromBytes<Report>(long_report, "report").ok());
}

TEST(LaKdf, MatchesTheSdkVectors) {
  std::vector<std::uint8_t> shared(32);
  for (int i = 0; i < 32; ++i) shared[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(Hex(local_attest::DeriveLaKey(shared, "SMK").span()), "3999a176f61679104b0b226187125f95");
  EXPECT_EQ(Hex(local_attest::DeriveLaKey(shared, "AEK").span()), "bf3a4644a124d6435d317393e0dc0411");
}

EnclaveIdentity Identity(std::uint8_t tag) {
  EnclaveIdentity id;
  id.mr_enclave.fill(tag);
  id.mr_signer.fill(static_cast<std::uint8_t>(tag + 1));
  id.attributes = {.flags = kFlagMode64Bit | kFlagKss, .xfrm = kXfrmLegacy};
  id.isv_prod_id = 7;
  id.isv_svn = 3;
  return id;
}

SimCpu Cpu(EnclaveIdentity id) {
  return SimCpu::Create(id).value();
}

TEST(SimCpu, ReportKeyFollowsTheSdkDerivationLayout) {
  // dd_report_key (192 bytes): key_name@0 attributes@8 misc_select@24 owner_epoch@28
  // mr_enclave@44 cpu_svn@76 config_svn@92 config_id@94 key_id@158, CMAC'ed with ff00 x8.
  TargetInfo target;
  target.mr_enclave.fill(0xaa);
  target.attributes = {.flags = 0x5, .xfrm = 0x3};
  target.misc_select = 0x11;
  target.config_svn = 0x2233;
  target.config_id.fill(0x44);
  KeyId key_id;
  key_id.fill(0x55);
  std::vector<std::uint8_t> dd(192, 0);
  dd[0] = 3;
  dd[8] = 0x5;
  dd[16] = 0x3;
  dd[24] = 0x11;
  std::memcpy(dd.data() + 28, "THISISOWNEREPOCH", 16);
  std::fill(dd.begin() + 44, dd.begin() + 76, 0xaa);
  std::copy(kSimDefaultCpuSvn.begin(), kSimDefaultCpuSvn.end(), dd.begin() + 76);
  dd[92] = 0x33;
  dd[93] = 0x22;
  std::fill(dd.begin() + 94, dd.begin() + 158, 0x44);
  std::fill(dd.begin() + 158, dd.begin() + 190, 0x55);
  const std::uint8_t base[16] = {0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0};
  EXPECT_EQ(Hex(DeriveSimReportKey(target, key_id)), Hex(AesCmac128(base, dd)));
}

TEST(SimCpu, ReportMacVerifiesOnlyForItsTarget) {
  auto a = NewInProcessSimTee(Cpu(Identity(1)));
  auto b = NewInProcessSimTee(Cpu(Identity(2)));
  auto c = NewInProcessSimTee(Cpu(Identity(3)));
  ReportData data{};
  data[0] = 9;
  Report report = a->CreateReport(b->SelfTargetInfo().value(), data).value();
  EXPECT_EQ(report.body.mr_enclave, Identity(1).mr_enclave);
  EXPECT_EQ(report.body.isv_svn, 3);
  EXPECT_TRUE(report.body.attributes.flags & kFlagInitted);
  EXPECT_TRUE(b->VerifyReport(report).ok());
  Status other = c->VerifyReport(report);
  EXPECT_EQ(other.code(), Code::kDataLoss) << other.ToString();
  EXPECT_FALSE(a->VerifyReport(report).ok());  // not targeted at its maker either
  // The MAC key is the *target's* report key, derived as the SDK simulator does.
  Key128 key = DeriveSimReportKey(b->SelfTargetInfo().value(), report.key_id);
  EXPECT_EQ(Hex(AesCmac128(key, BytesOf(report.body))), Hex(report.mac));
}

TEST(SimCpu, TamperedReportFieldsFailVerification) {
  auto a = NewInProcessSimTee(Cpu(Identity(1)));
  auto b = NewInProcessSimTee(Cpu(Identity(2)));
  Report good = a->CreateReport(b->SelfTargetInfo().value(), ReportData{}).value();
  for (std::size_t offset : {0u, 64u, 128u, 256u, 320u, 384u /* key_id */, 416u /* mac */}) {
    Report bad = good;
    MutableBytesOf(bad)[offset] ^= 0x01;
    EXPECT_FALSE(b->VerifyReport(bad).ok()) << "flipped byte " << offset;
  }
}

TEST(SimCpu, SealKeysFollowPolicy) {
  auto same_code = NewInProcessSimTee(Cpu(Identity(1)));
  EnclaveIdentity other_code_same_signer = Identity(1);
  other_code_same_signer.mr_enclave.fill(0x77);
  auto sibling = NewInProcessSimTee(Cpu(other_code_same_signer));
  KeyId id{};
  auto mre = GetSealKey(*same_code, kPolicyMrEnclave, id).value();
  auto mrs = GetSealKey(*same_code, kPolicyMrSigner, id).value();
  EXPECT_EQ(mre.size(), 16u);
  EXPECT_FALSE(mre == mrs);
  EXPECT_TRUE(GetSealKey(*same_code, kPolicyMrEnclave, id).value() == mre);  // deterministic
  EXPECT_FALSE(GetSealKey(*sibling, kPolicyMrEnclave, id).value() == mre);
  EXPECT_TRUE(GetSealKey(*sibling, kPolicyMrSigner, id).value() == mrs);
  KeyId other_id{};
  other_id[0] = 1;
  EXPECT_FALSE(GetSealKey(*same_code, kPolicyMrEnclave, other_id).value() == mre);
}

TEST(SimCpu, EgetkeyRefusesWhatHardwareRefuses) {
  SimCpu cpu = Cpu(Identity(1));
  KeyRequest r;
  r.key_name = static_cast<std::uint16_t>(KeyName::kSeal);
  r.key_policy = kPolicyMrEnclave;
  r.isv_svn = 4;  // above the enclave's 3
  EXPECT_EQ(cpu.GetKey(r).status().code(), Code::kPermissionDenied);
  r.isv_svn = 3;
  EXPECT_TRUE(cpu.GetKey(r).ok());
  r.reserved2[10] = 1;
  EXPECT_FALSE(cpu.GetKey(r).ok());
  r.reserved2[10] = 0;
  r.key_name = static_cast<std::uint16_t>(KeyName::kProvision);
  EXPECT_FALSE(cpu.GetKey(r).ok());
  r.key_name = static_cast<std::uint16_t>(KeyName::kSeal);
  r.key_policy = kPolicyConfigId;
  EXPECT_EQ(cpu.GetKey(r).status().code(), Code::kUnimplemented);
}

TEST(SimCpu, RefusesIdentitiesSgxCouldNotInitialise) {
  EnclaveIdentity id = Identity(1);
  id.attributes.flags &= ~kFlagKss;
  id.config_id[0] = 1;
  EXPECT_FALSE(SimCpu::Create(id).ok());
  id = Identity(1);
  id.attributes.flags &= ~kFlagMode64Bit;
  EXPECT_FALSE(SimCpu::Create(id).ok());
}

}  // namespace
}  // namespace sealroot::local_attest::sgx
