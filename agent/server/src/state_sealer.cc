#include "agent/server/state_sealer.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>

#include "base/crypto.h"
#include "base/file.h"
#include "local-attest/tee.h"

namespace sealroot::agent {
namespace {

// Sealed blob: magic "SRS1" | 12-byte nonce | AES-256-GCM(ciphertext | 16-byte tag).
constexpr std::array<std::uint8_t, 4> kMagic = {'S', 'R', 'S', '1'};
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kKeySize = 32;
constexpr std::string_view kAad = "sealroot enclave-agent state v1";

class KeySealer final : public StateSealer {
 public:
  explicit KeySealer(SecretBytes key) : key_(std::move(key)) {}

  Result<std::vector<std::uint8_t>> Seal(std::span<const std::uint8_t> plaintext) const override {
    std::array<std::uint8_t, kNonceSize> nonce{};
    RandomBytes(nonce);
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> ct,
                        AesGcmSeal(key_.span(), nonce, AsBytes(kAad), plaintext));
    std::vector<std::uint8_t> out(kMagic.begin(), kMagic.end());
    out.insert(out.end(), nonce.begin(), nonce.end());
    out.insert(out.end(), ct.begin(), ct.end());
    return out;
  }

  Result<SecretBytes> Unseal(std::span<const std::uint8_t> sealed) const override {
    if (sealed.size() < kMagic.size() + kNonceSize ||
        !std::equal(kMagic.begin(), kMagic.end(), sealed.begin())) {
      return DataLoss("not a sealed agent state (bad header)");
    }
    return AesGcmOpen(key_.span(), sealed.subspan(kMagic.size(), kNonceSize), AsBytes(kAad),
                      sealed.subspan(kMagic.size() + kNonceSize));
  }

 private:
  SecretBytes key_;
};

// The development key file: created with a random key (0600) when absent.
Result<SecretBytes> LoadOrCreateKeyFile(const std::string& path) {
  Result<std::string> existing = ReadFile(path, 1024);
  if (existing.ok()) {
    SecretBytes key(AsBytes(*existing));
    SecureWipe(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(existing->data()), existing->size()));
    if (key.size() != kKeySize)
      return InvalidArgument("state seal key file " + path + " must hold exactly 32 bytes");
    return key;
  }
  if (existing.status().code() != Code::kNotFound)
    return std::move(existing).status().WithContext("reading " + path);
  SR_RETURN_IF_ERROR(MakeDirs(Dirname(path), 0700));
  SecretBytes key = SecretBytes::Random(kKeySize);
  SR_RETURN_IF_ERROR_CTX(WriteFileAtomic(path, key.span(), 0600), "creating state seal key " + path);
  return key;
}

// EGETKEY(SEAL_KEY, MRENCLAVE policy): only this agent build, on this CPU, gets this key. The
// 128-bit SEAL key is widened to AES-256 with HMAC-SHA256 under a fixed label; the key id names
// what the key is for, so no other sealed data of the enclave shares it.
Result<SecretBytes> TeeSealingKey(sgx::Tee& tee) {
  const Sha256Digest label = Sha256Of(std::string_view("sealroot enclave-agent state sealing key"));
  sgx::KeyId key_id{};
  std::copy(label.begin(), label.end(), key_id.begin());
  SR_ASSIGN_OR_RETURN(SecretBytes seal_key, sgx::GetSealKey(tee, sgx::kPolicyMrEnclave, key_id));
  HmacSha256 widen(seal_key.span());
  widen.Update(AsBytes(kAad));
  Sha256Digest wide = widen.Finish();
  SecretBytes key(wide);
  SecureWipe(wide);
  return key;
}

}  // namespace

Result<std::unique_ptr<StateSealer>> MakeKeySealer(SecretBytes key) {
  if (key.size() != kKeySize) return InvalidArgument("state sealing key must be 32 bytes");
  return std::unique_ptr<StateSealer>(std::make_unique<KeySealer>(std::move(key)));
}

Result<std::unique_ptr<StateSealer>> MakeTeeSealer(sgx::Tee& tee) {
  Result<SecretBytes> key = TeeSealingKey(tee);
  if (!key.ok()) return std::move(key).status().WithContext("getting the agent's SEAL key");
  return MakeKeySealer(std::move(*key));
}

Result<std::unique_ptr<StateSealer>> MakeStateSealer(const StateSealing& sealing) {
  if (sealing.source == "file") {
    SR_ASSIGN_OR_RETURN(SecretBytes key, LoadOrCreateKeyFile(sealing.key_file));
    return MakeKeySealer(std::move(key));
  }
  Result<std::unique_ptr<sgx::Tee>> tee = sgx::OpenTee();
  if (!tee.ok()) return std::move(tee).status().WithContext("state_sealing.source \"tee\"");
  return MakeTeeSealer(**tee);
}

}  // namespace sealroot::agent
