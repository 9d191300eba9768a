#include "agent/server/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "base/encoding.h"
#include "base/file.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;

constexpr char kDefaultTtrpcSocket[] = "unix:///run/sealroot/agent.sock";
constexpr char kDefaultGrpcSocket[] = "unix:///run/sealroot/agent-grpc.sock";

// How a document is being parsed: a config file (development) or the enclave's measured
// manifest, whose inlined documents are kept in sealed memfds.
struct ParseContext {
  bool measured = false;
  std::vector<UniqueFd> documents;
};

// A document inlined in the config, as a path the trust code can read: a sealed memfd of this
// process, /proc/self/fd/N.
Result<std::string> InlineDocument(ParseContext& ctx, const char* name, const json& value) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return ErrnoStatus("memfd_create", errno);
  SR_RETURN_IF_ERROR(WriteAll(fd.get(), AsBytes(value.dump())));
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
    return ErrnoStatus("sealing the inlined " + std::string(name), errno);
  std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  ctx.documents.push_back(std::move(fd));
  return path;
}

// A measured trust document must not point back at host files: a key file named by path would
// let the host choose the key.
Status CheckNoFileReferences(const json& value, const std::string& where) {
  if (value.is_array()) {
    for (const json& item : value) SR_RETURN_IF_ERROR(CheckNoFileReferences(item, where));
  } else if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (key.ends_with("Path") || key.ends_with("Paths") || key == "cmd") {
        return InvalidArgument(where + ": \"" + key +
                               "\" names a host file or program; a measured manifest inlines what it trusts");
      }
      SR_RETURN_IF_ERROR(CheckNoFileReferences(item, where));
    }
  }
  return OkStatus();
}

// A trust document: inline (a JSON object) or, outside an enclave only, a path.
Result<std::string> TrustDocument(ParseContext& ctx, const json& object, const char* key) {
  if (!object.contains(key)) return std::string();
  const json& value = object.at(key);
  const std::string where = std::string("trust.") + key;
  if (value.is_object()) {
    if (ctx.measured) SR_RETURN_IF_ERROR(CheckNoFileReferences(value, where));
    return InlineDocument(ctx, key, value);
  }
  if (ctx.measured) {
    return InvalidArgument(where +
                           ": a measured manifest inlines it as a JSON object (a path names a host file)");
  }
  return value.get<std::string>();
}

Status CheckKeys(const json& object, std::string_view where,
                 const std::set<std::string, std::less<>>& allowed) {
  if (!object.is_object()) return InvalidArgument(std::string(where) + ": expected a JSON object");
  for (const auto& [key, value] : object.items()) {
    if (!allowed.contains(key)) return InvalidArgument(std::string(where) + ": unknown key \"" + key + "\"");
  }
  return OkStatus();
}

Result<std::vector<ListenAddress>> ParseAddresses(const json& value, std::string_view key, bool allow_tcp) {
  if (!value.is_array()) return InvalidArgument(std::string(key) + ": expected an array of addresses");
  std::vector<ListenAddress> out;
  for (const json& item : value) {
    if (!item.is_string()) return InvalidArgument(std::string(key) + ": addresses are strings");
    SR_ASSIGN_OR_RETURN(ListenAddress address, ListenAddress::Parse(item.get<std::string>()));
    if (!allow_tcp && address.kind == ListenAddress::Kind::kTcp) {
      return InvalidArgument(std::string(key) +
                             ": gRPC listens on unix sockets only: " + item.get<std::string>());
    }
    out.push_back(std::move(address));
  }
  return out;
}

Result<std::size_t> PositiveSize(const json& value, std::string_view key, std::size_t max) {
  if (!value.is_number_unsigned() || value.get<std::uint64_t>() == 0 || value.get<std::uint64_t>() > max) {
    return InvalidArgument("limits." + std::string(key) + ": expected an integer in 1.." +
                           std::to_string(max));
  }
  return static_cast<std::size_t>(value.get<std::uint64_t>());
}

Status ParseLimits(const json& object, Limits& limits) {
  SR_RETURN_IF_ERROR(CheckKeys(
      object, "limits",
      {"max_concurrent_pulls", "max_message_size", "max_connections", "max_requests_in_flight",
       "max_blocking_calls", "max_blocking_calls_per_connection", "frame_timeout_ms", "max_image_ref_size",
       "max_layer_size", "max_image_size", "max_decompression_ratio", "max_layers", "max_store_size"}));
  struct Field {
    const char* key;
    std::size_t* target;
    std::size_t max;
  };
  std::size_t frame_timeout_ms = static_cast<std::size_t>(limits.frame_timeout.count());
  const Field fields[] = {
      {"max_concurrent_pulls", &limits.max_concurrent_pulls, 64},
      {"max_message_size", &limits.max_message_size, 64u << 20},
      {"max_connections", &limits.max_connections, 4096},
      {"max_requests_in_flight", &limits.max_requests_in_flight, 4096},
      {"max_blocking_calls", &limits.max_blocking_calls, 4096},
      {"max_blocking_calls_per_connection", &limits.max_blocking_calls_per_connection, 4096},
      {"frame_timeout_ms", &frame_timeout_ms, 3'600'000},
      {"max_image_ref_size", &limits.max_image_ref_size, 65536},
      {"max_layer_size", &limits.max_layer_size, 1ull << 50},
      {"max_image_size", &limits.max_image_size, 1ull << 50},
      {"max_decompression_ratio", &limits.max_decompression_ratio, 1u << 20},
      {"max_layers", &limits.max_layers, 4096},
      {"max_store_size", &limits.max_store_size, 1ull << 50},
  };
  for (const Field& field : fields) {
    if (!object.contains(field.key)) continue;
    SR_ASSIGN_OR_RETURN(*field.target, PositiveSize(object.at(field.key), field.key, field.max));
  }
  limits.frame_timeout = std::chrono::milliseconds(frame_timeout_ms);
  if (limits.max_blocking_calls >= limits.max_requests_in_flight) {
    return InvalidArgument(
        "limits.max_blocking_calls must be below limits.max_requests_in_flight (the other "
        "calls need threads too)");
  }
  return OkStatus();
}

Result<EnclaveIdentity> ParseIdentity(const json& object) {
  SR_RETURN_IF_ERROR(
      CheckKeys(object, "app_enclaves[]", {"mrenclave", "mrsigner", "isv_prod_id", "min_isv_svn"}));
  EnclaveIdentity id;
  for (auto [name, field] : {std::pair{"mrenclave", &id.mrenclave}, std::pair{"mrsigner", &id.mrsigner}}) {
    const std::string hex = object.value(name, "");
    if (hex.empty()) continue;
    if (!IsLowerHex(hex, 64)) {
      return InvalidArgument("app_enclaves[]: measurements are 64 lowercase hex characters, got \"" + hex +
                             "\"");
    }
    local_attest::sgx::Measurement m{};
    const std::vector<std::uint8_t> bytes = HexDecode(hex).value();
    std::copy(bytes.begin(), bytes.end(), m.begin());
    *field = m;
  }
  if (!id.mrenclave && !id.mrsigner) {
    return InvalidArgument("app_enclaves[]: an identity needs mrenclave or mrsigner");
  }
  id.isv_prod_id = object.value<std::uint16_t>("isv_prod_id", 0);
  id.min_isv_svn = object.value<std::uint16_t>("min_isv_svn", 0);
  return id;
}

Status ParseTrust(ParseContext& ctx, const json& object, image::TrustOptions& trust) {
  SR_RETURN_IF_ERROR(
      CheckKeys(object, "trust",
                {"policy", "registries_d", "decryption_keys", "passphrase_file", "keyprovider_config"}));
  if (ctx.measured) {
    if (object.contains("decryption_keys") || object.contains("passphrase_file")) {
      return InvalidArgument(
          "trust: no private keys in a measured manifest (the host can read it): layer keys come "
          "from a key provider");
    }
    // registries_d stays a host path: it says where signatures are stored, not which keys
    // verify them (those are inline in the policy), so the host can only withhold signatures.
  }
  SR_ASSIGN_OR_RETURN(trust.policy_path, TrustDocument(ctx, object, "policy"));
  SR_ASSIGN_OR_RETURN(trust.keyprovider_config, TrustDocument(ctx, object, "keyprovider_config"));
  trust.registries_d = object.value("registries_d", "");
  trust.passphrase_file = object.value("passphrase_file", "");
  if (object.contains("decryption_keys")) {
    trust.decryption_keys = object.at("decryption_keys").get<std::vector<std::string>>();
  }
  return OkStatus();
}

Status ParseKeyBroker(const ParseContext& ctx, const json& object, KeyBrokerConfig& broker) {
  SR_RETURN_IF_ERROR(CheckKeys(
      object, "key_broker", {"url", "ca_file", "ca", "credentials", "signature_policy", "workload_policy"}));
  if (ctx.measured && object.contains("ca_file")) {
    // A CA file the host can swap would let it stand in for the broker.
    return InvalidArgument("key_broker.ca_file names a host file; not in a measured manifest");
  }
  broker.url = object.value("url", "");
  broker.ca_file = object.value("ca_file", "");
  broker.ca_pem = object.value("ca", "");
  broker.credentials = object.value("credentials", "");
  broker.signature_policy = object.value("signature_policy", "");
  broker.workload_policy = object.value("workload_policy", "");
  if (!broker.ca_file.empty() && !broker.ca_pem.empty()) {
    return InvalidArgument("key_broker: \"ca\" and \"ca_file\" exclude each other");
  }
  if (!broker.ca_pem.empty() && !broker.ca_pem.starts_with("-----BEGIN CERTIFICATE-----")) {
    return InvalidArgument("key_broker.ca: expected a PEM certificate");
  }
  if (!broker.url.starts_with("http://") && !broker.url.starts_with("https://")) {
    return InvalidArgument("key_broker.url: expected http(s)://host:port");
  }
  for (const std::string* uri : {&broker.credentials, &broker.signature_policy, &broker.workload_policy}) {
    if (!uri->empty() && !uri->starts_with("kbs://"))
      return InvalidArgument("key_broker: \"" + *uri + "\" is not kbs://");
  }
  return OkStatus();
}

Status ParseRegistry(const ParseContext& ctx, const json& object, RegistryAccess& registry) {
  SR_RETURN_IF_ERROR(
      CheckKeys(object, "registry", {"tls_verify", "cert_dir", "registries_conf", "authfile"}));
  if (ctx.measured && (object.contains("cert_dir") || object.contains("registries_conf"))) {
    return InvalidArgument(
        "registry: cert_dir and registries_conf name host files; not in a measured manifest");
  }
  registry.tls_verify = object.value("tls_verify", true);
  registry.cert_dir = object.value("cert_dir", "");
  registry.registries_conf = object.value("registries_conf", "");
  registry.authfile = object.value("authfile", "");
  return OkStatus();
}

Status ParseBoot(const json& object, BootConfig& boot) {
  SR_RETURN_IF_ERROR(
      CheckKeys(object, "boot", {"executable", "sigstruct", "manifest", "heap_size", "threads"}));
  boot.executable = object.value("executable", "");
  boot.sigstruct = object.value("sigstruct", "");
  boot.manifest = object.value("manifest", "");
  if (!boot.manifest.empty() && (boot.executable.empty() || !boot.manifest.starts_with('/'))) {
    return InvalidArgument("boot.manifest: an absolute path, with the executable it belongs to");
  }
  if (boot.executable.empty() != boot.sigstruct.empty()) {
    return InvalidArgument("boot: \"executable\" and \"sigstruct\" go together");
  }
  for (const std::string* path : {&boot.executable, &boot.sigstruct}) {
    if (!path->empty() && !path->starts_with('/')) {
      return InvalidArgument("boot: paths must be absolute, got \"" + *path + "\"");
    }
  }
  auto bounded = [&](const char* key, std::uint64_t max) -> Result<std::uint64_t> {
    const json& value = object.at(key);
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() == 0 || value.get<std::uint64_t>() > max) {
      return InvalidArgument(std::string("boot.") + key + ": expected an integer in 1.." +
                             std::to_string(max));
    }
    return value.get<std::uint64_t>();
  };
  if (object.contains("heap_size")) {
    SR_ASSIGN_OR_RETURN(boot.heap_size, bounded("heap_size", 64ull << 30));
  }
  if (object.contains("threads")) {
    SR_ASSIGN_OR_RETURN(std::uint64_t threads, bounded("threads", 1024));
    boot.threads = static_cast<std::uint32_t>(threads);
  }
  return OkStatus();
}

void ApplyDefaults(AgentConfig& config);

Status ParseDocument(ParseContext& ctx, const json& doc, AgentConfig& config) {
  SR_RETURN_IF_ERROR(
      CheckKeys(doc, "agent config",
                {"ttrpc", "grpc", "state_dir", "store_dir", "trust", "key_broker", "registry", "app_enclaves",
                 "allow_exec", "workload", "state_sealing", "boot", "limits"}));
  if (doc.contains("ttrpc")) {
    SR_ASSIGN_OR_RETURN(config.ttrpc, ParseAddresses(doc.at("ttrpc"), "ttrpc", /*allow_tcp=*/true));
  }
  if (doc.contains("grpc")) {
    SR_ASSIGN_OR_RETURN(config.grpc, ParseAddresses(doc.at("grpc"), "grpc", /*allow_tcp=*/false));
  }
  config.state_dir = doc.value("state_dir", config.state_dir);
  config.store_dir = doc.value("store_dir", config.store_dir);
  if (doc.contains("allow_exec")) {
    return InvalidArgument("allow_exec: replaced by workload.exec, the list of commands ExecProcess may run");
  }
  if (doc.contains("workload")) {
    SR_ASSIGN_OR_RETURN(config.workload, ParseWorkloadPolicy(doc.at("workload").dump()));
  }
  if (doc.contains("trust")) SR_RETURN_IF_ERROR(ParseTrust(ctx, doc.at("trust"), config.trust));
  if (doc.contains("registry")) SR_RETURN_IF_ERROR(ParseRegistry(ctx, doc.at("registry"), config.registry));
  if (doc.contains("key_broker")) {
    SR_RETURN_IF_ERROR(ParseKeyBroker(ctx, doc.at("key_broker"), config.key_broker));
  }
  if (!config.key_broker.signature_policy.empty() && !config.trust.policy_path.empty()) {
    return InvalidArgument("key_broker.signature_policy and trust.policy exclude each other");
  }
  if (!config.key_broker.workload_policy.empty() && doc.contains("workload")) {
    return InvalidArgument("key_broker.workload_policy and workload exclude each other");
  }
  if (doc.contains("app_enclaves")) {
    for (const json& item : doc.at("app_enclaves")) {
      SR_ASSIGN_OR_RETURN(EnclaveIdentity id, ParseIdentity(item));
      config.app_enclaves.push_back(std::move(id));
    }
  }
  if (doc.contains("state_sealing")) {
    const json& sealing = doc.at("state_sealing");
    SR_RETURN_IF_ERROR(CheckKeys(sealing, "state_sealing", {"source", "key_file"}));
    config.sealing.source = sealing.value("source", config.sealing.source);
    config.sealing.key_file = sealing.value("key_file", "");
  }
  if (config.sealing.source != "tee" && config.sealing.source != "file") {
    return InvalidArgument("state_sealing.source: expected \"tee\" or \"file\", got \"" +
                           config.sealing.source + "\"");
  }
  if (doc.contains("boot")) SR_RETURN_IF_ERROR(ParseBoot(doc.at("boot"), config.boot));
  if (doc.contains("limits")) SR_RETURN_IF_ERROR(ParseLimits(doc.at("limits"), config.limits));
  if (ctx.measured) {
    if (config.sealing.source == "file")
      return InvalidArgument(
          "state_sealing.source \"file\": a key the host can read has no place in an enclave");
    if (!config.boot.executable.empty() && config.app_enclaves.empty()) {
      return InvalidArgument(
          "app_enclaves: a measured manifest names the app enclaves that get keys (the boot's SIGSTRUCT is a "
          "host file)");
    }
  }
  return OkStatus();
}

Result<AgentConfig> Parse(std::string_view json_text, bool measured) {
  AgentConfig config;
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("agent config is not valid JSON");
  ParseContext ctx{.measured = measured};
  try {
    SR_RETURN_IF_ERROR(ParseDocument(ctx, doc, config));
  } catch (const json::exception& e) {
    // A value of the wrong JSON type (e.g. "tls_verify": "yes").
    return InvalidArgument(std::string("agent config: ") + e.what());
  }
  ApplyDefaults(config);
  if (!ctx.documents.empty())
    config.inline_documents = std::make_shared<const std::vector<UniqueFd>>(std::move(ctx.documents));
  return config;
}

void ApplyDefaults(AgentConfig& config) {
  if (config.ttrpc.empty() && config.grpc.empty()) {
    config.ttrpc.push_back(*ListenAddress::Parse(kDefaultTtrpcSocket));
    config.grpc.push_back(*ListenAddress::Parse(kDefaultGrpcSocket));
  }
  if (config.sealing.source == "file" && config.sealing.key_file.empty()) {
    config.sealing.key_file = JoinPath(config.state_dir, "seal.key");
  }
}

}  // namespace

Result<AgentConfig> ParseAgentConfig(std::string_view json_text) {
  return Parse(json_text, /*measured=*/false);
}

Result<AgentConfig> ParseAgentManifest(std::string_view manifest) {
  Result<AgentConfig> config = Parse(manifest, /*measured=*/true);
  if (!config.ok()) return std::move(config).status().WithContext("the agent's measured manifest");
  config->manifest_digest = Sha256Of(manifest);
  return config;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path, bool path_is_default) {
  Result<std::string> text = ReadFile(path, 1u << 20);
  if (!text.ok()) {
    if (path_is_default && text.status().code() == Code::kNotFound) return ParseAgentConfig("{}");
    return std::move(text).status().WithContext("reading agent config " + path);
  }
  Result<AgentConfig> config = ParseAgentConfig(*text);
  if (!config.ok()) return std::move(config).status().WithContext(path);
  return config;
}

}  // namespace sealroot::agent
