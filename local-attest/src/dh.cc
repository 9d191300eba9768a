// sgx_dh LAv1, both roles (see dh.h for the message layouts).
#include "local-attest/dh.h"

#include <cstring>

#include "local-attest/src/ecdh.h"

namespace sealroot::local_attest {
namespace {

constexpr std::uint8_t kKdfIdLav1[2] = {0x01, 0x00};

SecretBytes ToSecret(Block16 block) {
  SecretBytes out(block);
  SecureWipe(block);
  return out;
}

Sha256Digest HashKeys(const PublicKeyLe& first, const PublicKeyLe& second) {
  Sha256 h;
  h.Update(first);
  h.Update(second);
  return h.Finish();
}

// Derives SMK and AEK from an ECDH with `peer`.
Status DeriveSessionKeys(const EphemeralKey& key, const PublicKeyLe& peer, SecretBytes& smk,
                         SecretBytes& aek) {
  SR_ASSIGN_OR_RETURN(SecretBytes shared, key.SharedSecret(peer));
  smk = DeriveLaKey(shared.span(), "SMK");
  aek = DeriveLaKey(shared.span(), "AEK");
  return OkStatus();
}

PublicKeyLe KeyAt(std::span<const std::uint8_t> bytes) {
  PublicKeyLe key;
  std::memcpy(key.data(), bytes.data(), key.size());
  return key;
}

}  // namespace

SecretBytes DeriveLaKey(std::span<const std::uint8_t> shared_secret_le, std::string_view label) {
  const std::array<std::uint8_t, 16> zero{};
  SecretBytes kdk = ToSecret(AesCmac128(zero, shared_secret_le));
  std::vector<std::uint8_t> input;
  input.push_back(0x01);
  input.insert(input.end(), label.begin(), label.end());
  input.insert(input.end(), {0x00, 0x80, 0x00});
  return ToSecret(AesCmac128(kdk.span(), input));
}

// ---- responder ----

DhResponder::DhResponder(local_attest::sgx::Tee& tee, std::unique_ptr<EphemeralKey> key,
                         std::vector<std::uint8_t> msg1)
    : tee_(&tee), key_(std::move(key)), msg1_(std::move(msg1)) {}
DhResponder::DhResponder(DhResponder&&) noexcept = default;
DhResponder& DhResponder::operator=(DhResponder&&) noexcept = default;
DhResponder::~DhResponder() = default;

Result<DhResponder> DhResponder::Create(local_attest::sgx::Tee& tee) {
  SR_ASSIGN_OR_RETURN(auto key, EphemeralKey::Generate());
  SR_ASSIGN_OR_RETURN(local_attest::sgx::TargetInfo self, tee.SelfTargetInfo());
  std::vector<std::uint8_t> msg1(key->public_key().begin(), key->public_key().end());
  auto target = local_attest::sgx::BytesOf(self);
  msg1.insert(msg1.end(), target.begin(), target.end());
  return DhResponder(tee, std::move(key), std::move(msg1));
}

Result<local_attest::sgx::ReportBody> DhResponder::ProcessMsg2(std::span<const std::uint8_t> msg2) {
  if (peer_) return FailedPrecondition("msg2: this session already accepted a msg2");
  if (msg2.size() != kMsg2Size) {
    return InvalidArgument("msg2: expected " + std::to_string(kMsg2Size) + " bytes, got " +
                           std::to_string(msg2.size()));
  }
  PublicKeyLe g_b = KeyAt(msg2.first(64));
  SR_RETURN_IF_ERROR_CTX(DeriveSessionKeys(*key_, g_b, smk_, aek_), "msg2: g_b");
  auto report_bytes = msg2.subspan(64, sizeof(local_attest::sgx::Report));
  Block16 cmac = AesCmac128(smk_.span(), report_bytes);
  if (!ConstantTimeEqual(cmac, msg2.subspan(496, 16))) {
    aek_ = SecretBytes();
    return DataLoss("msg2: CMAC under the session's SMK does not verify (tampered, or from another session)");
  }
  SR_ASSIGN_OR_RETURN(
      local_attest::sgx::Report report,
      local_attest::sgx::StructFromBytes<local_attest::sgx::Report>(report_bytes, "msg2 report"));
  const local_attest::sgx::ReportData& rd = report.body.report_data;
  bool lav1 = std::memcmp(rd.data() + 32, kKdfIdLav1, 2) == 0;
  for (std::size_t i = 34; lav1 && i < rd.size(); ++i) lav1 = rd[i] == 0;
  if (!lav1) {
    aek_ = SecretBytes();
    return Unimplemented("msg2: not LAv1 (KDF id 0x0001); LAv2 and other protocol versions are refused");
  }
  if (Status s = tee_->VerifyReport(report); !s.ok()) {
    aek_ = SecretBytes();
    return std::move(s).WithContext("msg2: initiator's report");
  }
  Sha256Digest binding = HashKeys(KeyAt(msg1_), g_b);
  if (!ConstantTimeEqual(binding, std::span(rd.data(), 32))) {
    aek_ = SecretBytes();
    return DataLoss("msg2: report_data is not SHA256(g_a||g_b) of this session");
  }
  g_b_ = g_b;
  peer_ = report.body;
  return report.body;
}

Result<std::vector<std::uint8_t>> DhResponder::MakeMsg3() {
  if (!peer_) return FailedPrecondition("msg3: no accepted msg2 in this session");
  local_attest::sgx::ReportData data{};
  Sha256Digest binding = HashKeys(g_b_, KeyAt(msg1_));
  std::memcpy(data.data(), binding.data(), binding.size());
  SR_ASSIGN_OR_RETURN(local_attest::sgx::Report report,
                      tee_->CreateReport(local_attest::sgx::TargetInfoFromReport(*peer_), data));
  std::vector<std::uint8_t> msg3(kMsg3MinSize, 0);  // additional_prop_length = 0
  auto bytes = local_attest::sgx::BytesOf(report);
  std::memcpy(msg3.data() + 16, bytes.data(), bytes.size());
  Block16 cmac = AesCmac128(smk_.span(), std::span(msg3).subspan(16));
  std::memcpy(msg3.data(), cmac.data(), cmac.size());
  return msg3;
}

// ---- initiator ----

DhInitiator::DhInitiator(local_attest::sgx::Tee& tee, std::unique_ptr<EphemeralKey> key)
    : tee_(&tee), key_(std::move(key)) {}
DhInitiator::DhInitiator(DhInitiator&&) noexcept = default;
DhInitiator& DhInitiator::operator=(DhInitiator&&) noexcept = default;
DhInitiator::~DhInitiator() = default;

Result<DhInitiator> DhInitiator::Create(local_attest::sgx::Tee& tee) {
  SR_ASSIGN_OR_RETURN(auto key, EphemeralKey::Generate());
  return DhInitiator(tee, std::move(key));
}

Result<std::vector<std::uint8_t>> DhInitiator::ProcessMsg1(std::span<const std::uint8_t> msg1) {
  if (have_msg1_) return FailedPrecondition("msg1: this session already processed a msg1");
  if (msg1.size() != kMsg1Size) {
    return InvalidArgument("msg1: expected " + std::to_string(kMsg1Size) + " bytes, got " +
                           std::to_string(msg1.size()));
  }
  g_a_ = KeyAt(msg1.first(64));
  SR_ASSIGN_OR_RETURN(local_attest::sgx::TargetInfo target,
                      local_attest::sgx::StructFromBytes<local_attest::sgx::TargetInfo>(msg1.subspan(64),
                                                                                        "msg1 target info"));
  SR_RETURN_IF_ERROR_CTX(DeriveSessionKeys(*key_, g_a_, smk_, aek_), "msg1: g_a");
  local_attest::sgx::ReportData data{};
  Sha256Digest binding = HashKeys(g_a_, key_->public_key());
  std::memcpy(data.data(), binding.data(), binding.size());
  std::memcpy(data.data() + 32, kKdfIdLav1, 2);
  SR_ASSIGN_OR_RETURN(local_attest::sgx::Report report, tee_->CreateReport(target, data));
  std::vector<std::uint8_t> msg2(key_->public_key().begin(), key_->public_key().end());
  auto bytes = local_attest::sgx::BytesOf(report);
  msg2.insert(msg2.end(), bytes.begin(), bytes.end());
  Block16 cmac = AesCmac128(smk_.span(), bytes);
  msg2.insert(msg2.end(), cmac.begin(), cmac.end());
  have_msg1_ = true;
  return msg2;
}

Result<local_attest::sgx::ReportBody> DhInitiator::ProcessMsg3(std::span<const std::uint8_t> msg3) {
  if (!have_msg1_) return FailedPrecondition("msg3: no msg1 in this session");
  if (msg3.size() < kMsg3MinSize || msg3.size() > kMsg3MinSize + kMsg3MaxProperties) {
    return InvalidArgument("msg3: size " + std::to_string(msg3.size()) + " outside [" +
                           std::to_string(kMsg3MinSize) + ", " +
                           std::to_string(kMsg3MinSize + kMsg3MaxProperties) + "]");
  }
  std::uint32_t props;
  std::memcpy(&props, msg3.data() + 448, 4);
  if (msg3.size() != kMsg3MinSize + props) {
    return InvalidArgument("msg3: additional_prop_length " + std::to_string(props) +
                           " does not match the message size");
  }
  Block16 cmac = AesCmac128(smk_.span(), msg3.subspan(16));
  if (!ConstantTimeEqual(cmac, msg3.first(16))) {
    aek_ = SecretBytes();
    return DataLoss("msg3: CMAC under the session's SMK does not verify (tampered, or from another session)");
  }
  SR_ASSIGN_OR_RETURN(local_attest::sgx::Report report,
                      local_attest::sgx::StructFromBytes<local_attest::sgx::Report>(
                          msg3.subspan(16, sizeof(local_attest::sgx::Report)), "msg3 report"));
  if (Status s = tee_->VerifyReport(report); !s.ok()) {
    aek_ = SecretBytes();
    return std::move(s).WithContext("msg3: responder's report");
  }
  Sha256Digest binding = HashKeys(key_->public_key(), g_a_);
  if (!ConstantTimeEqual(binding, std::span(report.body.report_data.data(), 32))) {
    aek_ = SecretBytes();
    return DataLoss("msg3: report_data is not SHA256(g_b||g_a) of this session");
  }
  return report.body;
}

}  // namespace sealroot::local_attest
