// sgx_dh LAv1 between two in-process sim enclaves, and every tampering the protocol must catch.
#include <gtest/gtest.h>

#include "local-attest/channel.h"
#include "local-attest/dh.h"
#include "local-attest/sim.h"
#include "local-attest/src/ecdh.h"

namespace sealroot::local_attest {
namespace {

local_attest::sgx::EnclaveIdentity Identity(std::uint8_t tag) {
  local_attest::sgx::EnclaveIdentity id;
  id.mr_enclave.fill(tag);
  id.mr_signer.fill(0x5a);
  id.attributes = {.flags = local_attest::sgx::kFlagMode64Bit | local_attest::sgx::kFlagKss,
                   .xfrm = local_attest::sgx::kXfrmLegacy};
  return id;
}

class DhTest : public ::testing::Test {
 protected:
  std::unique_ptr<local_attest::sgx::Tee> stub_ =
      local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(Identity(1)).value());
  std::unique_ptr<local_attest::sgx::Tee> app_ =
      local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(Identity(2)).value());
};

TEST_F(DhTest, MutualHandshakeAgreesOnAekAndIdentities) {
  DhResponder r = DhResponder::Create(*stub_).value();
  DhInitiator i = DhInitiator::Create(*app_).value();
  ASSERT_EQ(r.msg1().size(), kMsg1Size);
  auto msg2 = i.ProcessMsg1(r.msg1()).value();
  ASSERT_EQ(msg2.size(), kMsg2Size);
  local_attest::sgx::ReportBody app = r.ProcessMsg2(msg2).value();
  EXPECT_EQ(app.mr_enclave, Identity(2).mr_enclave);
  EXPECT_EQ(app.report_data[32], 0x01);  // LAv1 KDF id
  auto msg3 = r.MakeMsg3().value();
  ASSERT_EQ(msg3.size(), kMsg3MinSize);
  local_attest::sgx::ReportBody stub = i.ProcessMsg3(msg3).value();
  EXPECT_EQ(stub.mr_enclave, Identity(1).mr_enclave);
  SecretBytes a = r.TakeAek(), b = i.TakeAek();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_TRUE(a == b);
}

TEST_F(DhTest, SessionsUseFreshEphemeralKeys) {
  DhResponder r1 = DhResponder::Create(*stub_).value();
  DhResponder r2 = DhResponder::Create(*stub_).value();
  EXPECT_NE(std::vector(r1.msg1().begin(), r1.msg1().begin() + 64),
            std::vector(r2.msg1().begin(), r2.msg1().begin() + 64));
}

// Public keys that are not points of the group: the point (0, 0) (where an SDK that encodes the
// point at infinity would put it), a coordinate equal to the field prime (out of range), all ones,
// and a valid key with its y moved off the curve. Each is refused before any ECDH.
TEST_F(DhTest, PeerKeysThatAreNotPointsOfTheGroupAreRefused) {
  auto key = EphemeralKey::Generate().value();
  auto other = EphemeralKey::Generate().value();
  // P-256's field prime, little-endian as the wire holds it.
  constexpr std::array<std::uint8_t, 32> kPrimeLe = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff};
  PublicKeyLe zero{}, x_is_prime = other->public_key(), ones, y_flipped = other->public_key();
  std::copy(kPrimeLe.begin(), kPrimeLe.end(), x_is_prime.begin());
  ones.fill(0xff);
  y_flipped[40] ^= 0x01;
  for (const PublicKeyLe& bad : {zero, x_is_prime, ones, y_flipped}) {
    auto shared = key->SharedSecret(bad);
    ASSERT_FALSE(shared.ok());
    EXPECT_EQ(shared.status().code(), Code::kInvalidArgument) << shared.status().ToString();
    EXPECT_NE(shared.status().message().find("not a valid P-256 point"), std::string::npos);
  }
  // And a valid one agrees both ways.
  EXPECT_TRUE(key->SharedSecret(other->public_key()).value() ==
              other->SharedSecret(key->public_key()).value());
}

// Flips one bit of msg2 at `offset` and returns the responder's verdict.
Status Msg2WithFlip(local_attest::sgx::Tee& stub, local_attest::sgx::Tee& app, std::size_t offset) {
  DhResponder r = DhResponder::Create(stub).value();
  DhInitiator i = DhInitiator::Create(app).value();
  auto msg2 = i.ProcessMsg1(r.msg1()).value();
  msg2[offset] ^= 0x04;
  return r.ProcessMsg2(msg2).status();
}

TEST_F(DhTest, FlippedBitInGbIsRefused) {
  Status s = Msg2WithFlip(*stub_, *app_, 5);  // x coordinate
  EXPECT_FALSE(s.ok());
  s = Msg2WithFlip(*stub_, *app_, 40);  // y coordinate: off the curve
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("not a valid P-256 point"), std::string::npos);
}

TEST_F(DhTest, FlippedBitInGaIsRefused) {
  for (std::size_t offset : {2u /* x */, 33u, 63u /* y */}) {
    DhResponder r = DhResponder::Create(*stub_).value();
    DhInitiator i = DhInitiator::Create(*app_).value();
    auto msg1 = r.msg1();
    msg1[offset] ^= 0x10;
    // Off the curve: the initiator refuses msg1. Still on it: the initiator agrees on a key the
    // responder does not have, and the responder refuses msg2's CMAC.
    auto msg2 = i.ProcessMsg1(msg1);
    if (!msg2.ok()) {
      EXPECT_NE(msg2.status().message().find("not a valid P-256 point"), std::string::npos);
      continue;
    }
    EXPECT_EQ(r.ProcessMsg2(*msg2).status().code(), Code::kDataLoss) << offset;
  }
}

TEST_F(DhTest, FlippedBitInMsg2ReportIsRefusedByCmac) {
  for (std::size_t offset : {64u + 64u /* mr_enclave */, 64u + 320u /* report_data */,
                             64u + 384u /* key_id */, 64u + 416u /* report mac */}) {
    Status s = Msg2WithFlip(*stub_, *app_, offset);
    EXPECT_EQ(s.code(), Code::kDataLoss) << offset;
    EXPECT_NE(s.message().find("CMAC"), std::string::npos) << s.message();
  }
}

TEST_F(DhTest, FlippedBitInMsg2CmacIsRefused) {
  Status s = Msg2WithFlip(*stub_, *app_, 500);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("msg2: CMAC"), std::string::npos) << s.message();
}

TEST_F(DhTest, ReportForAnotherTargetIsRefusedEvenWithAValidCmac) {
  // An initiator that targets its report at someone else but MACs it correctly: only the
  // report's own MAC (EGETKEY) can tell.
  DhResponder r = DhResponder::Create(*stub_).value();
  auto msg1 = r.msg1();
  auto other = local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(Identity(9)).value());
  const local_attest::sgx::TargetInfo other_target = other->SelfTargetInfo().value();
  auto target = local_attest::sgx::BytesOf(other_target);
  std::copy(target.begin(), target.end(), msg1.begin() + 64);
  DhInitiator i = DhInitiator::Create(*app_).value();
  auto msg2 = i.ProcessMsg1(msg1).value();
  Status s = r.ProcessMsg2(msg2).status();
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("report MAC does not verify"), std::string::npos) << s.message();
}

TEST_F(DhTest, ReplayedMsg2FromAnEarlierSessionIsRefused) {
  DhResponder r1 = DhResponder::Create(*stub_).value();
  DhInitiator i1 = DhInitiator::Create(*app_).value();
  auto msg2 = i1.ProcessMsg1(r1.msg1()).value();
  ASSERT_TRUE(r1.ProcessMsg2(msg2).ok());
  DhResponder r2 = DhResponder::Create(*stub_).value();
  Status s = r2.ProcessMsg2(msg2).status();
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_TRUE(r2.TakeAek().empty());
  EXPECT_FALSE(r2.MakeMsg3().ok());
}

// An initiator written out by hand, so a test can put anything in a correctly MAC'ed msg2.
std::vector<std::uint8_t> HandMadeMsg2(local_attest::sgx::Tee& app, std::span<const std::uint8_t> msg1,
                                       const local_attest::sgx::ReportData& data) {
  auto key = EphemeralKey::Generate().value();
  PublicKeyLe g_a;
  std::copy(msg1.begin(), msg1.begin() + 64, g_a.begin());
  SecretBytes smk = DeriveLaKey(key->SharedSecret(g_a).value().span(), "SMK");
  auto target =
      local_attest::sgx::StructFromBytes<local_attest::sgx::TargetInfo>(msg1.subspan(64), "ti").value();
  local_attest::sgx::Report report = app.CreateReport(target, data).value();
  std::vector<std::uint8_t> msg2(key->public_key().begin(), key->public_key().end());
  auto bytes = local_attest::sgx::BytesOf(report);
  msg2.insert(msg2.end(), bytes.begin(), bytes.end());
  Block16 cmac = AesCmac128(smk.span(), bytes);
  msg2.insert(msg2.end(), cmac.begin(), cmac.end());
  return msg2;
}

TEST_F(DhTest, Lav2IsRefusedExplicitly) {
  DhResponder r = DhResponder::Create(*stub_).value();
  local_attest::sgx::ReportData lav2{};
  std::memcpy(lav2.data() + 32, "SGX LA", 6);  // an LAv2 proto_spec where LAv1 has its KDF id
  Status s = r.ProcessMsg2(HandMadeMsg2(*app_, r.msg1(), lav2)).status();
  EXPECT_EQ(s.code(), Code::kUnimplemented) << s.ToString();
  EXPECT_NE(s.message().find("LAv2"), std::string::npos);
}

TEST_F(DhTest, ReportNotBoundToTheSessionKeysIsRefused) {
  DhResponder r = DhResponder::Create(*stub_).value();
  local_attest::sgx::ReportData lav1_unbound{};
  lav1_unbound[32] = 0x01;  // right KDF id, but no SHA256(g_a||g_b)
  Status s = r.ProcessMsg2(HandMadeMsg2(*app_, r.msg1(), lav1_unbound)).status();
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("SHA256(g_a||g_b)"), std::string::npos);
}

TEST_F(DhTest, WrongSizesAreRefused) {
  DhResponder r = DhResponder::Create(*stub_).value();
  DhInitiator i = DhInitiator::Create(*app_).value();
  std::vector<std::uint8_t> short_msg1(r.msg1().begin(), r.msg1().end() - 1);
  EXPECT_EQ(i.ProcessMsg1(short_msg1).status().code(), Code::kInvalidArgument);
  std::vector<std::uint8_t> long_msg2(kMsg2Size + 1);
  EXPECT_EQ(r.ProcessMsg2(long_msg2).status().code(), Code::kInvalidArgument);
}

TEST_F(DhTest, TamperedMsg3IsRefusedByTheInitiator) {
  for (std::size_t offset : {3u /* cmac */, 16u + 64u /* stub mr_enclave */, 16u + 384u /* key_id */,
                             16u + 416u /* report mac */, 449u /* prop length */}) {
    DhResponder r = DhResponder::Create(*stub_).value();
    DhInitiator i = DhInitiator::Create(*app_).value();
    auto msg2 = i.ProcessMsg1(r.msg1()).value();
    ASSERT_TRUE(r.ProcessMsg2(msg2).ok());
    auto msg3 = r.MakeMsg3().value();
    msg3[offset] ^= 0x01;
    Status s = i.ProcessMsg3(msg3).status();
    EXPECT_FALSE(s.ok()) << offset;
    EXPECT_TRUE(i.TakeAek().empty() || offset == 449u) << offset;
  }
}

TEST(SecureChannel, DirectionsCountersAndTampering) {
  SecretBytes key = SecretBytes::Random(16);
  auto responder = SecureChannel::Create(key.Clone(), ChannelRole::kResponder).value();
  auto initiator = SecureChannel::Create(key.Clone(), ChannelRole::kInitiator).value();
  const std::string m1 = "first", m2 = "second";
  auto c1 = responder.Seal(AsBytes(m1)).value();
  auto c2 = responder.Seal(AsBytes(m2)).value();
  // Out of order (replay of a later message first) fails; in order succeeds.
  EXPECT_EQ(initiator.Open(c2).status().code(), Code::kDataLoss);
  EXPECT_EQ(AsChars(initiator.Open(c1).value().span()), m1);
  EXPECT_EQ(AsChars(initiator.Open(c2).value().span()), m2);
  EXPECT_FALSE(initiator.Open(c2).ok());  // replayed
  // A message reflected back to its sender does not open (distinct direction nonces).
  auto back = initiator.Seal(AsBytes(m1)).value();
  auto reflected = responder.Seal(AsBytes(m1)).value();
  EXPECT_FALSE(responder.Open(reflected).ok());
  auto flipped = back;
  flipped[0] ^= 1;
  EXPECT_FALSE(responder.Open(flipped).ok());
  EXPECT_TRUE(responder.Open(back).ok());
  EXPECT_FALSE(SecureChannel::Create(SecretBytes(15), ChannelRole::kResponder).ok());
}

}  // namespace
}  // namespace sealroot::local_attest
