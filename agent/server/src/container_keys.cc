#include "agent/server/src/container_keys.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "base/log.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;

constexpr char kFileName[] = "containers.sealed";
constexpr int kVersion = 1;
constexpr std::size_t kSecretSize = 32;

void WipeString(std::string& s) {
  SecureWipe(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(s.data()), s.size()));
}

Result<Sha256Digest> DigestFromHex(const std::string& hex, std::string_view what) {
  if (!IsLowerHex(hex, 64)) return DataLoss("containers.sealed: bad " + std::string(what));
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, HexDecode(hex));
  Sha256Digest out;
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

Result<std::map<std::string, ContainerKeyring::Entry>> ParseContainers(const json& list) {
  std::map<std::string, ContainerKeyring::Entry> out;
  for (const json& j : list) {
    ContainerKeyring::Entry entry;
    SR_ASSIGN_OR_RETURN(entry.incarnation,
                        DigestFromHex(j.at("incarnation").get<std::string>(), "incarnation"));
    if (!j.at("upper_root").is_null()) {
      SR_ASSIGN_OR_RETURN(entry.upper_root,
                          DigestFromHex(j.at("upper_root").get<std::string>(), "upper root"));
    }
    out[j.at("id").get<std::string>()] = entry;
  }
  return out;
}

}  // namespace

SecretBytes DeriveContainerKey(const SecretBytes& secret, std::string_view label,
                               const Sha256Digest& incarnation, std::string_view container_id) {
  HmacSha256 mac(secret.span());
  mac.Update(AsBytes(label));
  const std::uint8_t separator = 0;
  mac.Update({&separator, 1});
  mac.Update(incarnation);
  mac.Update(AsBytes(container_id));
  Sha256Digest key = mac.Finish();
  SecretBytes out(key);
  SecureWipe(key);
  return out;
}

Result<std::unique_ptr<ContainerKeyring>> ContainerKeyring::Load(const StateSealer& sealer,
                                                                 std::string state_dir, Env& env) {
  std::string path = JoinPath(state_dir, kFileName);
  Result<std::string> sealed = ReadFile(path);
  if (!sealed.ok()) {
    if (sealed.status().code() != Code::kNotFound)
      return std::move(sealed).status().WithContext("reading " + path);
    auto keyring = std::unique_ptr<ContainerKeyring>(
        new ContainerKeyring(sealer, env, std::move(path), SecretBytes::Random(kSecretSize), {}));
    MutexLock lock(keyring->mu_);
    SR_RETURN_IF_ERROR(keyring->Save());
    return keyring;
  }
  Result<SecretBytes> plain = sealer.Unseal(AsBytes(*sealed));
  if (!plain.ok()) return std::move(plain).status().WithContext("unsealing " + path);
  json doc = json::parse(AsChars(plain->span()), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return DataLoss(path + " is not valid JSON");
  try {
    if (doc.at("version").get<int>() != kVersion) return DataLoss(path + ": unsupported version");
    std::string secret_hex = doc.at("secret").get<std::string>();
    Result<std::vector<std::uint8_t>> secret = HexDecode(secret_hex);
    WipeString(secret_hex);
    WipeString(doc["secret"].get_ref<std::string&>());
    if (!secret.ok() || secret->size() != kSecretSize) return DataLoss(path + ": bad secret");
    SecretBytes key(*secret);
    SecureWipe(*secret);
    SR_ASSIGN_OR_RETURN(auto containers, ParseContainers(doc.at("containers")));
    return std::unique_ptr<ContainerKeyring>(
        new ContainerKeyring(sealer, env, std::move(path), std::move(key), std::move(containers)));
  } catch (const json::exception& e) {
    return DataLoss(path + ": " + e.what());
  }
}

Status ContainerKeyring::Save() const {
  json doc = {{"version", kVersion}, {"secret", HexEncode(secret_.span())}, {"containers", json::array()}};
  for (const auto& [id, entry] : containers_) {
    doc["containers"].push_back(
        {{"id", id},
         {"incarnation", HexEncode(entry.incarnation)},
         {"upper_root", entry.upper_root ? json(HexEncode(*entry.upper_root)) : json()}});
  }
  std::string text = doc.dump();
  WipeString(doc["secret"].get_ref<std::string&>());
  Result<std::vector<std::uint8_t>> sealed = sealer_.Seal(AsBytes(text));
  WipeString(text);
  if (!sealed.ok()) return std::move(sealed).status().WithContext("sealing " + path_);
  return WriteFileAtomic(env_, path_, *sealed, 0600);
}

Status ContainerKeyring::Register(const std::string& container_id) {
  MutexLock lock(mu_);
  Entry entry;
  RandomBytes(entry.incarnation);
  std::optional<Entry> before;
  if (auto it = containers_.find(container_id); it != containers_.end()) before = it->second;
  containers_[container_id] = entry;
  Status saved = Save();
  if (!saved.ok()) {
    if (before) {
      containers_[container_id] = *before;
    } else {
      containers_.erase(container_id);
    }
  }
  return saved;
}

Result<ContainerSecrets> ContainerKeyring::Secrets(const std::string& container_id) const {
  MutexLock lock(mu_);
  auto it = containers_.find(container_id);
  if (it == containers_.end()) return NotFound("container " + container_id + " has no keys");
  return ContainerSecrets{DeriveContainerKey(secret_, kUpperKeyLabel, it->second.incarnation, container_id),
                          DeriveContainerKey(secret_, kExecKeyLabel, it->second.incarnation, container_id),
                          it->second.upper_root};
}

Status ContainerKeyring::RecordUpperCommit(const std::string& container_id,
                                           const local_attest::UpperCommit& commit) {
  MutexLock lock(mu_);
  auto it = containers_.find(container_id);
  if (it == containers_.end()) return NotFound("container " + container_id + " has no keys");
  const std::optional<Sha256Digest>& known = it->second.upper_root;
  if (known.has_value() != commit.previous.has_value() || (known && *known != *commit.previous)) {
    return FailedPrecondition("container " + container_id + ": the commit does not follow the upper state " +
                              (known ? HexEncode(*known) : std::string("(fresh)")) + " the agent knows");
  }
  const std::optional<Sha256Digest> before = known;
  it->second.upper_root = commit.root;
  Status saved = Save();
  if (!saved.ok()) {
    it->second.upper_root = before;
    return saved;
  }
  SR_LOG(kInfo) << "container " << container_id << ": upper state " << HexEncode(commit.root) << " recorded";
  return OkStatus();
}

Status ContainerKeyring::Forget(const std::string& container_id) {
  MutexLock lock(mu_);
  auto it = containers_.find(container_id);
  if (it == containers_.end()) return OkStatus();
  Entry before = it->second;
  containers_.erase(it);
  Status saved = Save();
  if (!saved.ok()) containers_[container_id] = before;
  return saved;
}

}  // namespace sealroot::agent
