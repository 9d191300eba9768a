#include "agent/server/src/records.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;

constexpr int kStateVersion = 1;

// Wipes a std::string that held key material before it is freed.
void WipeString(std::string& s) {
  SecureWipe(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(s.data()), s.size()));
}

json RunToJson(const ImageRunConfig& run) {
  return {{"entrypoint", run.entrypoint},
          {"cmd", run.cmd},
          {"env", run.env},
          {"working_dir", run.working_dir},
          {"user", run.user}};
}

ImageRunConfig RunFromJson(const json& j) {
  return {j.at("entrypoint").get<std::vector<std::string>>(), j.at("cmd").get<std::vector<std::string>>(),
          j.at("env").get<std::vector<std::string>>(), j.at("working_dir").get<std::string>(),
          j.at("user").get<std::string>()};
}

json ImageToJson(const ImageRecord& image) {
  return {{"image", image.image},
          {"image_ref", image.image_ref},
          {"root_hash", fusefs::HashHex(image.root_hash)},
          {"store", image.store_name},
          {"key", HexEncode(image.key.span())},
          {"users", image.users},
          {"run", RunToJson(image.run)}};
}

Result<ImageRecord> ImageFromJson(const json& j) {
  ImageRecord image;
  image.image = j.at("image").get<std::string>();
  image.image_ref = j.at("image_ref").get<std::string>();
  Result<fusefs::RootHash> root = fusefs::ParseHash(j.at("root_hash").get<std::string>());
  if (!root.ok()) return DataLoss("state: image " + image.image + ": bad root hash");
  image.root_hash = *root;
  image.store_name = j.at("store").get<std::string>();
  std::string key_hex = j.at("key").get<std::string>();
  Result<std::vector<std::uint8_t>> key = HexDecode(key_hex);
  WipeString(key_hex);
  if (!key.ok() || key->size() != 32) return DataLoss("state: image " + image.image + ": bad key");
  image.key = SecretBytes(*key);
  SecureWipe(*key);
  image.users = j.at("users").get<std::set<std::string>>();
  image.run = RunFromJson(j.at("run"));
  if (!IsLowerHex(image.store_name, 32)) {
    return DataLoss("state: image " + image.image + ": bad store name");
  }
  return image;
}

Result<ContainerState> StateFromName(std::string_view name) {
  for (ContainerState s : {ContainerState::kPulled, ContainerState::kCreated, ContainerState::kRunning,
                           ContainerState::kStopped}) {
    if (ContainerStateName(s) == name) return s;
  }
  return DataLoss("state: unknown container state " + std::string(name));
}

Status ParseDocument(const json& doc, AgentState& state) {
  if (doc.at("version").get<int>() != kStateVersion) return DataLoss("state: unsupported version");
  for (const json& j : doc.at("images")) {
    SR_ASSIGN_OR_RETURN(ImageRecord image, ImageFromJson(j));
    std::string name = image.image;
    state.images.emplace(std::move(name), std::move(image));
  }
  for (const json& j : doc.at("containers")) {
    ContainerRecord c;
    c.id = j.at("id").get<std::string>();
    c.image = j.at("image").get<std::string>();
    SR_ASSIGN_OR_RETURN(c.state, StateFromName(j.at("state").get<std::string>()));
    // A container that was running when the agent died has no process any more.
    if (c.state == ContainerState::kRunning) c.state = ContainerState::kStopped;
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> spec, Base64Decode(j.at("spec").get<std::string>()));
    c.spec.assign(spec.begin(), spec.end());
    if (!state.images.contains(c.image))
      return DataLoss("state: container " + c.id + " uses an unknown image");
    std::string id = c.id;
    state.containers.emplace(std::move(id), std::move(c));
  }
  return OkStatus();
}

}  // namespace

std::string_view ContainerStateName(ContainerState state) {
  switch (state) {
    case ContainerState::kPulled:
      return "pulled";
    case ContainerState::kCreated:
      return "created";
    case ContainerState::kRunning:
      return "running";
    case ContainerState::kStopped:
      return "stopped";
  }
  return "unknown";
}

Status SaveState(const AgentState& state, const StateSealer& sealer, const std::string& state_dir, Env& env) {
  json doc = {{"version", kStateVersion}, {"images", json::array()}, {"containers", json::array()}};
  for (const auto& [name, image] : state.images) doc["images"].push_back(ImageToJson(image));
  for (const auto& [id, c] : state.containers) {
    doc["containers"].push_back({{"id", c.id},
                                 {"image", c.image},
                                 {"state", ContainerStateName(c.state)},
                                 {"spec", Base64Encode(AsBytes(c.spec))}});
  }
  std::string text = doc.dump();
  Result<std::vector<std::uint8_t>> sealed = sealer.Seal(AsBytes(text));
  WipeString(text);
  for (json& image : doc["images"]) WipeString(image["key"].get_ref<std::string&>());
  if (!sealed.ok()) return std::move(sealed).status().WithContext("sealing agent state");
  return WriteFileAtomic(env, JoinPath(state_dir, kStateFileName), *sealed, 0600);
}

Result<AgentState> LoadState(const StateSealer& sealer, const std::string& state_dir) {
  const std::string path = JoinPath(state_dir, kStateFileName);
  Result<std::string> sealed = ReadFile(path);
  if (!sealed.ok()) {
    if (sealed.status().code() == Code::kNotFound) return AgentState{};
    return std::move(sealed).status().WithContext("reading agent state");
  }
  Result<SecretBytes> plain = sealer.Unseal(AsBytes(*sealed));
  if (!plain.ok()) return std::move(plain).status().WithContext("unsealing agent state " + path);
  json doc = json::parse(AsChars(plain->span()), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return DataLoss("agent state " + path + " is not valid JSON");
  AgentState state;
  try {
    SR_RETURN_IF_ERROR_CTX(ParseDocument(doc, state), path);
  } catch (const json::exception& e) {
    return DataLoss("agent state " + path + ": " + e.what());
  }
  for (json& image : doc["images"]) WipeString(image["key"].get_ref<std::string&>());
  return state;
}

}  // namespace sealroot::agent
