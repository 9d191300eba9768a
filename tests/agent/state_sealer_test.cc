// State sealing: the TEE sealer (EGETKEY SEAL key via local-attest's sim CPU) binds the state to
// the agent's signer and product (a signed upgrade keeps it) and to the measured manifest; the
// file sealer round-trips; neither accepts another's blobs.
#include "agent/server/state_sealer.h"

#include <gtest/gtest.h>

#include "base/crypto.h"
#include "local-attest/sim.h"

namespace sealroot::agent {
namespace {

std::unique_ptr<local_attest::sgx::Tee> SimTee(std::uint8_t mr_enclave_byte, std::uint8_t signer_byte = 0x55,
                                               std::uint16_t svn = 1, std::uint16_t prod_id = 1) {
  local_attest::sgx::EnclaveIdentity id;
  id.mr_enclave.fill(mr_enclave_byte);
  id.mr_signer.fill(signer_byte);
  id.isv_svn = svn;
  id.isv_prod_id = prod_id;
  id.attributes = {local_attest::sgx::kFlagMode64Bit, local_attest::sgx::kXfrmLegacy};
  return local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(id).value());
}

const Sha256Digest kManifest = Sha256Of(std::string_view(R"({"workload": {}})"));

Result<std::vector<std::uint8_t>> SealWith(std::unique_ptr<local_attest::sgx::Tee> tee,
                                           const Sha256Digest& manifest) {
  SR_ASSIGN_OR_RETURN(auto sealer, MakeTeeSealer(std::move(tee), manifest));
  return sealer->Seal(AsBytes("layer keys"));
}

Result<SecretBytes> OpenWith(std::unique_ptr<local_attest::sgx::Tee> tee, const Sha256Digest& manifest,
                             const std::vector<std::uint8_t>& sealed) {
  SR_ASSIGN_OR_RETURN(auto sealer, MakeTeeSealer(std::move(tee), manifest));
  return sealer->Unseal(sealed);
}

TEST(StateSealerTest, TeeSealedStateOpensForTheSameSignerProductAndManifestOnly) {
  auto sealed = SealWith(SimTee(0x11), kManifest);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();

  auto opened = OpenWith(SimTee(0x11), kManifest, *sealed);  // the same agent, restarted
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(AsChars(opened->span()), "layer keys");
  // A signed upgrade (another build, higher SVN, same signer and product) keeps the state.
  EXPECT_TRUE(OpenWith(SimTee(0x12, 0x55, 2), kManifest, *sealed).ok());

  EXPECT_EQ(OpenWith(SimTee(0x11, 0x66), kManifest, *sealed).status().code(), Code::kDataLoss);  // signer
  EXPECT_EQ(OpenWith(SimTee(0x11, 0x55, 1, 2), kManifest, *sealed).status().code(),
            Code::kDataLoss);  // product
}

TEST(StateSealerTest, StateSealedUnderAnotherManifestIsRefusedClearly) {
  auto sealed = SealWith(SimTee(0x11), kManifest);
  ASSERT_TRUE(sealed.ok());
  auto edited =
      OpenWith(SimTee(0x13), Sha256Of(std::string_view(R"({"workload": {"exec": [["sh"]]}})")), *sealed);
  EXPECT_EQ(edited.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(edited.status().message().find("another measured configuration"), std::string::npos)
      << edited.status().ToString();
  // The digest in the header cannot be swapped: it is authenticated.
  std::vector<std::uint8_t> swapped = *sealed;
  swapped[6] ^= 1;
  Sha256Digest other = kManifest;
  other[0] ^= 1;
  EXPECT_EQ(OpenWith(SimTee(0x11), other, swapped).status().code(), Code::kDataLoss);
}

TEST(StateSealerTest, AnOlderAgentCannotOpenANewerOnesState) {
  auto sealed = SealWith(SimTee(0x12, 0x55, 2), kManifest);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(OpenWith(SimTee(0x11, 0x55, 1), kManifest, *sealed).status().code(), Code::kFailedPrecondition);
}

TEST(StateSealerTest, TeeSourceOutsideAnEnclaveIsAClearError) {
  unsetenv(local_attest::sgx::kSimTeeFdEnv);
  auto sealer = MakeStateSealer({"tee", ""});
  ASSERT_FALSE(sealer.ok());
  EXPECT_NE(sealer.status().message().find("tee"), std::string::npos) << sealer.status().message();
}

TEST(StateSealerTest, TamperedOrForeignBlobIsRefused) {
  auto sealer = MakeKeySealer(SecretBytes::Random(32));
  auto sealed = (*sealer)->Seal(AsBytes("state"));
  ASSERT_TRUE(sealed.ok());
  std::vector<std::uint8_t> flipped = *sealed;
  flipped.back() ^= 1;
  EXPECT_EQ((*sealer)->Unseal(flipped).status().code(), Code::kDataLoss);
  EXPECT_EQ((*sealer)->Unseal(std::vector<std::uint8_t>(10, 0)).status().code(), Code::kDataLoss);
  auto other = MakeKeySealer(SecretBytes::Random(32));
  EXPECT_EQ((*other)->Unseal(*sealed).status().code(), Code::kDataLoss);
  EXPECT_FALSE(MakeKeySealer(SecretBytes::Random(16)).ok());
}

// A blob in the previous format ("SRS2", AAD label "... v2"), sealed with `key` the way format-2
// agents sealed it (the key-file sealer uses its key as is).
std::vector<std::uint8_t> Format2Blob(std::span<const std::uint8_t> key, std::string_view plaintext) {
  std::vector<std::uint8_t> header = {'S', 'R', 'S', '2', 0, 0};
  header.resize(6 + 32, 0);  // ISVSVN 0, no manifest
  std::string aad = "sealroot enclave-agent state v2";
  aad.append(header.begin(), header.end());
  std::array<std::uint8_t, 12> nonce{};
  nonce[0] = 7;
  std::vector<std::uint8_t> ct = AesGcmSeal(key, nonce, AsBytes(aad), AsBytes(plaintext)).value();
  std::vector<std::uint8_t> out = header;
  out.insert(out.end(), nonce.begin(), nonce.end());
  out.insert(out.end(), ct.begin(), ct.end());
  return out;
}

TEST(StateSealerTest, NewStateIsFormat3AndFormat2StateStillOpensWhereItsKeyIsUnchanged) {
  SecretBytes key = SecretBytes::Random(32);
  auto sealer = MakeKeySealer(key.Clone()).value();
  std::vector<std::uint8_t> sealed = sealer->Seal(AsBytes("state")).value();
  EXPECT_EQ(std::string(sealed.begin(), sealed.begin() + 4), "SRS3");
  // A key file's key did not change with the format: its format-2 state opens (and is rewritten
  // as format 3 by the next save).
  auto opened = sealer->Unseal(Format2Blob(key.span(), "old state"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(AsChars(opened->span()), "old state");
  // The label is authenticated: a format-3 header on a format-2 body does not open.
  std::vector<std::uint8_t> relabelled = Format2Blob(key.span(), "old state");
  relabelled[3] = '3';
  EXPECT_EQ(sealer->Unseal(relabelled).status().code(), Code::kDataLoss);
}

TEST(StateSealerTest, Format2StateThatTheSealKeyNoLongerOpensIsAClearError) {
  // State sealed by a sim agent before its SEAL key followed the SDK >= 2.19 derivation: the key
  // that sealed it is not this agent's key any more.
  auto sealer = MakeTeeSealer(SimTee(0x11)).value();
  Result<SecretBytes> opened = sealer->Unseal(Format2Blob(SecretBytes::Random(32).span(), "old state"));
  EXPECT_EQ(opened.status().code(), Code::kDataLoss);
  EXPECT_NE(opened.status().message().find("format 2"), std::string::npos) << opened.status().message();
  EXPECT_NE(opened.status().message().find("2.19"), std::string::npos) << opened.status().message();
  EXPECT_NE(opened.status().message().find("state directory"), std::string::npos)
      << opened.status().message();
}

}  // namespace
}  // namespace sealroot::agent
