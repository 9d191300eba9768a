// State sealing: the TEE sealer (EGETKEY SEAL key via local-attest's sim CPU) binds the state to
// the agent's MRENCLAVE; the file sealer round-trips; neither accepts another's blobs.
#include "agent/server/state_sealer.h"

#include <gtest/gtest.h>

#include "base/crypto.h"
#include "local-attest/sim.h"

namespace sealroot::agent {
namespace {

std::unique_ptr<sgx::Tee> SimTee(std::uint8_t mr_enclave_byte) {
  sgx::EnclaveIdentity id;
  id.mr_enclave.fill(mr_enclave_byte);
  id.mr_signer.fill(0x55);
  id.attributes = {sgx::kFlagMode64Bit, sgx::kXfrmLegacy};
  return sgx::NewInProcessSimTee(sgx::SimCpu::Create(id).value());
}

TEST(StateSealerTest, TeeSealedStateUnsealsInTheSameEnclaveOnly) {
  auto agent = SimTee(0x11);
  auto sealer = MakeTeeSealer(*agent);
  ASSERT_TRUE(sealer.ok()) << sealer.status().ToString();
  auto sealed = (*sealer)->Seal(AsBytes("layer keys"));
  ASSERT_TRUE(sealed.ok());

  auto same = MakeTeeSealer(*SimTee(0x11));  // the same agent build, restarted
  auto opened = (*same)->Unseal(*sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(AsChars(opened->span()), "layer keys");

  auto impostor = MakeTeeSealer(*SimTee(0x12));  // a different agent binary
  EXPECT_EQ((*impostor)->Unseal(*sealed).status().code(), Code::kDataLoss);
}

TEST(StateSealerTest, TeeSourceOutsideAnEnclaveIsAClearError) {
  unsetenv(sgx::kSimTeeFdEnv);
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

}  // namespace
}  // namespace sealroot::agent
