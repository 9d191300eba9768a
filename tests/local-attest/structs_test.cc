// Byte-exact structures (sizes/offsets at run time too, so a report shows them), the SDK's KDF
// vectors, and the sim CPU's EREPORT/EGETKEY semantics.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstddef>
#include <thread>

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

bool IsZeroCpuSvn(const CpuSvn& svn) {
  return svn == CpuSvn{};
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

// A KSS identity with every field EGETKEY(SEAL) may mix in set to a distinct pattern.
EnclaveIdentity KssIdentity() {
  EnclaveIdentity id = Identity(1);
  id.attributes.flags |= kFlagDebug;
  id.misc_select = 0x0000000f;
  id.config_id.fill(0x44);
  id.config_svn = 9;
  id.isv_family_id.fill(0x66);
  id.isv_ext_prod_id.fill(0x77);
  return id;
}

KeyRequest SealRequest(std::uint16_t policy) {
  KeyRequest r;
  r.key_name = static_cast<std::uint16_t>(KeyName::kSeal);
  r.key_policy = policy;
  r.isv_svn = 2;
  r.config_svn = 8;
  r.attribute_mask = {.flags = 0xff0000000000000bull, .xfrm = 0x1};
  r.misc_mask = 0xf0000005u;
  r.key_id.fill(0x55);
  return r;
}

// The SDK >= 2.19 dd_seal_key_t, written from the layout by offset (not through the sim's struct):
// key_name@0 key_policy@2 attributes@8 attribute_mask@24 misc@40 ~misc_mask@44 owner_epoch@48
// cpu_svn@64 isv_svn@80 isv_prod_id@82 config_svn@84 config_id@86 isv_family_id@150
// isv_ext_prod_id@166 mr_enclave@182 mr_signer@214 key_id@246, 280 bytes, CMAC'ed with the SEAL
// base key 00112233..eeff.
std::string ExpectedSealKey(const EnclaveIdentity& id, const KeyRequest& r) {
  std::vector<std::uint8_t> dd(280, 0);
  auto put16 = [&](std::size_t at, std::uint16_t v) {
    dd[at] = static_cast<std::uint8_t>(v);
    dd[at + 1] = static_cast<std::uint8_t>(v >> 8);
  };
  auto put32 = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) dd[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  auto put64 = [&](std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) dd[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  auto put = [&](std::size_t at, std::span<const std::uint8_t> bytes) {
    std::copy(bytes.begin(), bytes.end(), dd.begin() + static_cast<std::ptrdiff_t>(at));
  };
  const std::uint64_t flags = id.attributes.flags | kFlagInitted;
  put16(0, 4);
  put16(2, r.key_policy);
  put64(8, (r.attribute_mask.flags | kFlagInitted | kFlagDebug) & flags);
  put64(16, r.attribute_mask.xfrm & id.attributes.xfrm);
  put64(24, r.attribute_mask.flags);
  put64(32, r.attribute_mask.xfrm);
  put32(40, r.misc_mask & id.misc_select);
  put32(44, ~r.misc_mask);
  put(48, AsBytes(std::string_view("THISISOWNEREPOCH")));
  put(64, IsZeroCpuSvn(r.cpu_svn) ? kSimDefaultCpuSvn : r.cpu_svn);
  put16(80, r.isv_svn);
  if (!(r.key_policy & kPolicyNoIsvProdId)) put16(82, id.isv_prod_id);
  if (r.key_policy & kPolicyConfigId) {
    put16(84, r.config_svn);
    put(86, id.config_id);
  }
  if (r.key_policy & kPolicyIsvFamilyId) put(150, id.isv_family_id);
  if (r.key_policy & kPolicyIsvExtProdId) put(166, id.isv_ext_prod_id);
  if (r.key_policy & kPolicyMrEnclave) put(182, id.mr_enclave);
  if (r.key_policy & kPolicyMrSigner) put(214, id.mr_signer);
  put(246, r.key_id);
  const std::uint8_t base[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  return Hex(AesCmac128(base, dd));
}

TEST(SimCpu, SealKeyFollowsTheKssAwareSdkDerivationLayout) {
  const EnclaveIdentity id = KssIdentity();
  SimCpu cpu = Cpu(id);
  for (std::uint16_t policy :
       {kPolicyMrEnclave, kPolicyMrSigner, static_cast<std::uint16_t>(kPolicyMrSigner | kPolicyNoIsvProdId),
        static_cast<std::uint16_t>(kPolicyMrEnclave | kPolicyConfigId),
        static_cast<std::uint16_t>(kPolicyMrSigner | kPolicyConfigId | kPolicyIsvFamilyId |
                                   kPolicyIsvExtProdId),
        static_cast<std::uint16_t>(0x3f)}) {
    KeyRequest r = SealRequest(policy);
    Result<SecretBytes> key = cpu.GetKey(r);
    ASSERT_TRUE(key.ok()) << "policy " << policy << ": " << key.status().ToString();
    EXPECT_EQ(Hex(key->span()), ExpectedSealKey(id, r)) << "policy " << policy;
  }
  // The same with zero CPUSVN (meaning the current one) and the SDK's "downgraded" CPUSVN.
  KeyRequest r = SealRequest(kPolicyMrSigner);
  r.cpu_svn = kSimDowngradedCpuSvn;
  EXPECT_EQ(Hex(cpu.GetKey(r).value().span()), ExpectedSealKey(id, r));
  r.cpu_svn = CpuSvn{};
  EXPECT_EQ(Hex(cpu.GetKey(r).value().span()), ExpectedSealKey(id, r));
}

TEST(SimCpu, SealKeyAppliesTheMiscMask) {
  SimCpu cpu = Cpu(KssIdentity());  // MISCSELECT 0xf
  KeyRequest r = SealRequest(kPolicyMrSigner);
  r.misc_mask = 0xf0000000u;
  const SecretBytes without_misc = cpu.GetKey(r).value();
  r.misc_mask = 0xf0000001u;  // selects MISCSELECT bit 0 into the key
  const SecretBytes with_bit0 = cpu.GetKey(r).value();
  EXPECT_FALSE(with_bit0 == without_misc);
  // Another enclave with bit 0 clear gets another key under that mask, the same without it.
  EnclaveIdentity other = KssIdentity();
  other.misc_select = 0xe;
  SimCpu other_cpu = Cpu(other);
  EXPECT_FALSE(other_cpu.GetKey(r).value() == with_bit0);
  r.misc_mask = 0xf0000000u;
  EXPECT_TRUE(other_cpu.GetKey(r).value() == without_misc);
}

TEST(SimCpu, ReportCarriesIsvFamilyIdAndExtProdId) {
  SimCpu cpu = Cpu(KssIdentity());
  Report report = cpu.CreateReport(TargetInfo{}, ReportData{});
  EXPECT_EQ(Hex(report.body.isv_family_id), std::string(32, '6'));
  EXPECT_EQ(Hex(report.body.isv_ext_prod_id), std::string(32, '7'));
  EXPECT_EQ(report.body.config_svn, 9);
  EXPECT_EQ(report.body.misc_select, 0xfu);
  // Both are under the MAC: flipping one fails verification at the target.
  auto a = NewInProcessSimTee(Cpu(KssIdentity()));
  auto b = NewInProcessSimTee(Cpu(Identity(2)));
  Report good = a->CreateReport(b->SelfTargetInfo().value(), ReportData{}).value();
  for (std::size_t offset : {32u /* isv_ext_prod_id */, 304u /* isv_family_id */}) {
    Report bad = good;
    MutableBytesOf(bad)[offset] ^= 0x01;
    EXPECT_EQ(b->VerifyReport(bad).code(), Code::kDataLoss) << "flipped byte " << offset;
  }
}

TEST(SimCpu, EgetkeyRefusesWhatTheSdkRefuses) {
  SimCpu cpu = Cpu(KssIdentity());  // ISVSVN 3, CONFIGSVN 9
  KeyRequest r = SealRequest(kPolicyMrEnclave);
  r.isv_svn = 4;  // above the enclave's 3
  Status isv = cpu.GetKey(r).status();
  EXPECT_EQ(isv.code(), Code::kPermissionDenied);
  EXPECT_NE(isv.message().find("SGX_ERROR_INVALID_ISVSVN"), std::string::npos) << isv.message();
  r.isv_svn = 3;
  EXPECT_TRUE(cpu.GetKey(r).ok());
  r.config_svn = 10;  // above the enclave's 9: the SDK answers with the ISVSVN error
  Status config = cpu.GetKey(r).status();
  EXPECT_EQ(config.code(), Code::kPermissionDenied);
  EXPECT_NE(config.message().find("CONFIGSVN"), std::string::npos) << config.message();
  EXPECT_NE(config.message().find("SGX_ERROR_INVALID_ISVSVN"), std::string::npos) << config.message();
  r.config_svn = 9;
  EXPECT_TRUE(cpu.GetKey(r).ok());
  r.cpu_svn = kSimUpgradedCpuSvn;
  Status cpusvn = cpu.GetKey(r).status();
  EXPECT_EQ(cpusvn.code(), Code::kPermissionDenied);
  EXPECT_NE(cpusvn.message().find("SGX_ERROR_INVALID_CPUSVN"), std::string::npos) << cpusvn.message();
  r.cpu_svn = CpuSvn{};
  r.reserved2[10] = 1;
  EXPECT_EQ(cpu.GetKey(r).status().code(), Code::kInvalidArgument);
  r.reserved2[10] = 0;
  r.key_policy = 0x40;  // reserved policy bit
  EXPECT_EQ(cpu.GetKey(r).status().code(), Code::kInvalidArgument);
  r.key_policy = kPolicyMrEnclave;
  r.key_name = static_cast<std::uint16_t>(KeyName::kProvision);  // no PROVISION_KEY attribute
  Status provision = cpu.GetKey(r).status();
  EXPECT_EQ(provision.code(), Code::kPermissionDenied);
  EXPECT_NE(provision.message().find("SGX_ERROR_INVALID_ATTRIBUTE"), std::string::npos)
      << provision.message();
  r.key_name = 9;
  EXPECT_EQ(cpu.GetKey(r).status().code(), Code::kInvalidArgument);

  // Without KSS: KSS policies, NOISVPRODID and any CONFIGSVN are invalid parameters.
  EnclaveIdentity plain = Identity(1);
  plain.attributes.flags &= ~kFlagKss;
  SimCpu plain_cpu = Cpu(plain);
  KeyRequest p = SealRequest(kPolicyMrSigner);
  p.config_svn = 0;
  EXPECT_TRUE(plain_cpu.GetKey(p).ok());
  p.config_svn = 1;
  EXPECT_EQ(plain_cpu.GetKey(p).status().code(), Code::kInvalidArgument);
  p.config_svn = 0;
  for (std::uint16_t kss : {kPolicyConfigId, kPolicyIsvFamilyId, kPolicyIsvExtProdId, kPolicyNoIsvProdId}) {
    p.key_policy = static_cast<std::uint16_t>(kPolicyMrSigner | kss);
    EXPECT_EQ(plain_cpu.GetKey(p).status().code(), Code::kInvalidArgument) << "policy " << kss;
  }
}

TEST(SimCpu, RemoteEgetkeyKeepsTheRefusalsCodeAndReason) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
  SimCpuServer server(Cpu(KssIdentity()), UniqueFd(fds[0]));
  std::thread serving([&] { (void)server.Serve(); });
  {
    std::unique_ptr<Tee> tee = NewRemoteSimTee(UniqueFd(fds[1]));
    KeyRequest r = SealRequest(kPolicyMrEnclave);
    EXPECT_EQ(Hex(tee->GetKey(r).value().span()), ExpectedSealKey(KssIdentity(), r));
    r.config_svn = 10;
    Status config = tee->GetKey(r).status();
    EXPECT_EQ(config.code(), Code::kPermissionDenied);
    EXPECT_NE(config.message().find("SGX_ERROR_INVALID_ISVSVN"), std::string::npos) << config.message();
    r.config_svn = 0;
    r.key_policy = 0x40;
    EXPECT_EQ(tee->GetKey(r).status().code(), Code::kInvalidArgument);
  }  // closing the enclave's end ends Serve()
  serving.join();
}

TEST(SimCpu, RefusesIdentitiesSgxCouldNotInitialise) {
  EnclaveIdentity id = Identity(1);
  id.attributes.flags &= ~kFlagKss;
  id.config_id[0] = 1;
  EXPECT_FALSE(SimCpu::Create(id).ok());
  id = Identity(1);
  id.attributes.flags &= ~kFlagMode64Bit;
  EXPECT_FALSE(SimCpu::Create(id).ok());
  for (bool family : {true, false}) {  // ISVFAMILYID / ISVEXTPRODID need KSS, as EINIT checks
    id = Identity(1);
    id.attributes.flags &= ~kFlagKss;
    (family ? id.isv_family_id : id.isv_ext_prod_id)[3] = 1;
    EXPECT_EQ(SimCpu::Create(id).status().code(), Code::kInvalidArgument);
  }
}

}  // namespace
}  // namespace sealroot::local_attest::sgx
