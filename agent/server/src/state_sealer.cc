#include "agent/server/state_sealer.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/log.h"
#include "local-attest/tee.h"

namespace sealroot::agent {
namespace {

// Sealed blob: magic "SRS3" | ISVSVN u16 BE | manifest digest (32) | 12-byte nonce |
// AES-256-GCM(ciphertext | 16-byte tag), the AAD being the label followed by everything before
// the nonce. ISVSVN is the agent version whose SEAL key sealed it (0 for a key file); the
// manifest digest is the measured configuration it was sealed under (zeros: none).
//
// Format 3 differs from format 2 ("SRS2", label "... v2") only in magic and label: it marks state
// sealed since the sim backend's SEAL key follows the SDK >= 2.19 derivation (KSS-aware layout,
// MISCMASK applied). A format-2 blob is still read (a key file or a hardware SEAL key did not
// change, so it opens, and the next save rewrites it as format 3); one that does not open says
// why instead of a bare "authentication failed".
constexpr std::size_t kMagicSize = 4;
constexpr std::size_t kHeaderSize = kMagicSize + 2 + 32;
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kKeySize = 32;

struct Format {
  std::string_view magic;
  std::string_view label;  // AAD prefix and the SEAL key's widening label
};
constexpr Format kCurrent = {"SRS3", "sealroot enclave-agent state v3"};
constexpr Format kFormat2 = {"SRS2", "sealroot enclave-agent state v2"};

class Sealer : public StateSealer {
 public:
  Sealer(std::uint16_t svn, const Sha256Digest& manifest) : svn_(svn), manifest_(manifest) {}

  Result<std::vector<std::uint8_t>> Seal(std::span<const std::uint8_t> plaintext) const override {
    SR_ASSIGN_OR_RETURN(SecretBytes key, KeyFor(svn_, kCurrent.label));
    std::vector<std::uint8_t> out = Header(kCurrent, svn_, manifest_);
    std::array<std::uint8_t, kNonceSize> nonce{};
    RandomBytes(nonce);
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> ct,
                        AesGcmSeal(key.span(), nonce, Aad(kCurrent, out), plaintext));
    out.insert(out.end(), nonce.begin(), nonce.end());
    out.insert(out.end(), ct.begin(), ct.end());
    return out;
  }

  Result<SecretBytes> Unseal(std::span<const std::uint8_t> sealed) const override {
    const Format* format = nullptr;
    if (sealed.size() >= kHeaderSize + kNonceSize) {
      const std::string_view magic(reinterpret_cast<const char*>(sealed.data()), kMagicSize);
      if (magic == kCurrent.magic) format = &kCurrent;
      if (magic == kFormat2.magic) format = &kFormat2;
    }
    if (format == nullptr) return DataLoss("not a sealed agent state (bad header)");
    const auto svn = static_cast<std::uint16_t>(sealed[4] << 8 | sealed[5]);
    const auto digest = sealed.subspan(6, 32);
    if (!std::equal(digest.begin(), digest.end(), manifest_.begin())) {
      return FailedPrecondition(
          "the agent state was sealed under another measured configuration (manifest sha256 " +
          HexEncode(digest) + ", this agent's is " + HexEncode(manifest_) +
          "): refusing to open it; a changed manifest starts from an empty state directory");
    }
    if (svn > svn_) {
      return FailedPrecondition("the agent state was sealed by a newer agent (ISVSVN " + std::to_string(svn) +
                                " > " + std::to_string(svn_) + ")");
    }
    SR_ASSIGN_OR_RETURN(SecretBytes key, KeyFor(svn, format->label));
    const std::span<const std::uint8_t> header = sealed.first(kHeaderSize);
    Result<SecretBytes> opened = AesGcmOpen(key.span(), sealed.subspan(kHeaderSize, kNonceSize),
                                            Aad(*format, header), sealed.subspan(kHeaderSize + kNonceSize));
    if (!opened.ok() && format == &kFormat2 && opened.status().code() == Code::kDataLoss) {
      return DataLoss(
          "the agent state is in sealed-state format 2 (\"SRS2\") and does not open with this agent's "
          "SEAL key: state sealed by a simulated enclave before its SEAL keys followed the SGX SDK >= 2.19 "
          "derivation cannot be opened (nor can a tampered one); move the state directory away to start "
          "empty");
    }
    return opened;
  }

 protected:
  // The 256-bit key for state sealed at `svn`, diversified by the format's `label`.
  virtual Result<SecretBytes> KeyFor(std::uint16_t svn, std::string_view label) const = 0;

 private:
  static std::vector<std::uint8_t> Header(const Format& format, std::uint16_t svn,
                                          const Sha256Digest& manifest) {
    std::vector<std::uint8_t> out(format.magic.begin(), format.magic.end());
    out.push_back(static_cast<std::uint8_t>(svn >> 8));
    out.push_back(static_cast<std::uint8_t>(svn));
    out.insert(out.end(), manifest.begin(), manifest.end());
    return out;
  }
  static std::vector<std::uint8_t> Aad(const Format& format, std::span<const std::uint8_t> header) {
    std::vector<std::uint8_t> aad(format.label.begin(), format.label.end());
    aad.insert(aad.end(), header.begin(), header.end());
    return aad;
  }

  const std::uint16_t svn_;
  const Sha256Digest manifest_;
};

class KeySealer final : public Sealer {
 public:
  KeySealer(SecretBytes key, const Sha256Digest& manifest) : Sealer(0, manifest), key_(std::move(key)) {}

 private:
  Result<SecretBytes> KeyFor(std::uint16_t, std::string_view) const override { return key_.Clone(); }
  SecretBytes key_;
};

// EGETKEY(SEAL_KEY, MRSIGNER policy): the agent's signer and product (ISVPRODID is always part of
// a SEAL key) at the ISVSVN the state was sealed with, which a later signed version may still
// ask for; so state survives a signed upgrade while the manifest stays the same. The 128-bit
// key is widened to AES-256 with HMAC-SHA256 over the format's label; the key id names what it
// is for. Attribute and MISCSELECT masks are sgx_seal_data()'s defaults.
class TeeSealer final : public Sealer {
 public:
  TeeSealer(std::unique_ptr<local_attest::sgx::Tee> tee, const local_attest::sgx::Report& self,
            const Sha256Digest& manifest)
      : Sealer(self.body.isv_svn, manifest), tee_(std::move(tee)), cpu_svn_(self.body.cpu_svn) {}

 private:
  Result<SecretBytes> KeyFor(std::uint16_t svn, std::string_view format_label) const override {
    const Sha256Digest label = Sha256Of(std::string_view("sealroot enclave-agent state sealing key"));
    local_attest::sgx::KeyRequest request;
    request.key_name = static_cast<std::uint16_t>(local_attest::sgx::KeyName::kSeal);
    request.key_policy = local_attest::sgx::kPolicyMrSigner;
    request.isv_svn = svn;
    request.cpu_svn = cpu_svn_;
    request.attribute_mask = {.flags = 0xff0000000000000bull, .xfrm = 0};  // the SDK's default
    request.misc_mask = 0xf0000000u;
    std::copy(label.begin(), label.end(), request.key_id.begin());
    Result<SecretBytes> seal_key = tee_->GetKey(request);
    if (!seal_key.ok()) return std::move(seal_key).status().WithContext("getting the agent's SEAL key");
    HmacSha256 widen(seal_key->span());
    widen.Update(AsBytes(format_label));
    Sha256Digest wide = widen.Finish();
    SecretBytes key(wide);
    SecureWipe(wide);
    return key;
  }

  std::unique_ptr<local_attest::sgx::Tee> tee_;  // EGETKEY is serialized by the backend
  const local_attest::sgx::CpuSvn cpu_svn_;
};

// The development key file: created with a random key (0600) when absent.
Result<SecretBytes> LoadOrCreateKeyFile(const std::string& path) {
  Result<SecretBytes> existing = ReadSecretFile(path, 1024);
  if (existing.ok()) {
    SecretBytes key = std::move(*existing);
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

}  // namespace

Result<std::unique_ptr<StateSealer>> MakeKeySealer(SecretBytes key, const Sha256Digest& manifest) {
  if (key.size() != kKeySize) return InvalidArgument("state sealing key must be 32 bytes");
  return std::unique_ptr<StateSealer>(std::make_unique<KeySealer>(std::move(key), manifest));
}

Result<std::unique_ptr<StateSealer>> MakeTeeSealer(std::unique_ptr<local_attest::sgx::Tee> tee,
                                                   const Sha256Digest& manifest) {
  Result<local_attest::sgx::Report> self =
      tee->CreateReport(local_attest::sgx::TargetInfo{}, local_attest::sgx::ReportData{});
  if (!self.ok()) return std::move(self).status().WithContext("the agent's own report");
  auto sealer = std::make_unique<TeeSealer>(std::move(tee), *self, manifest);
  SR_RETURN_IF_ERROR(sealer->Seal({}).status());  // EGETKEY works: fail at start, not at first write
  return std::unique_ptr<StateSealer>(std::move(sealer));
}

Result<std::unique_ptr<StateSealer>> MakeStateSealer(const StateSealing& sealing,
                                                     const Sha256Digest& manifest) {
  if (sealing.source == "file") {
    SR_LOG(kWarning) << "DEVELOPMENT ONLY: the agent state (every image key) is sealed with the key in "
                     << sealing.key_file << ", which the host can read; use \"state_sealing\": "
                     << "{\"source\": \"tee\"} in an enclave";
    SR_ASSIGN_OR_RETURN(SecretBytes key, LoadOrCreateKeyFile(sealing.key_file));
    return MakeKeySealer(std::move(key), manifest);
  }
  Result<std::unique_ptr<local_attest::sgx::Tee>> tee = local_attest::sgx::OpenTee();
  if (!tee.ok()) {
    return std::move(tee).status().WithContext(
        "state_sealing.source \"tee\" (the default; outside an enclave choose \"file\" explicitly)");
  }
  return MakeTeeSealer(std::move(*tee), manifest);
}

}  // namespace sealroot::agent
