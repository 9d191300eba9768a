// The enclave-agent's configuration: a JSON file (format in design/api.md, default
// /etc/sealroot/agent.json), overridable from the command line. A loaded AgentConfig is valid:
// LoadAgentConfig checks addresses, limits and identities before anything listens.
//
// Thread-safety: a value type.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/server/workload_policy.h"
#include "base/crypto.h"
#include "base/fd.h"
#include "base/status.h"
#include "image/trust.h"
#include "local-attest/sgx_types.h"
#include "rpc/address.h"
#include "rpc/limits.h"

namespace sealroot::agent {

inline constexpr char kDefaultConfigPath[] = "/etc/sealroot/agent.json";
inline constexpr char kDefaultStateDir[] = "/var/lib/sealroot/agent";
inline constexpr char kDefaultStoreDir[] = "/var/lib/sealroot/store";

// Where a server listens: "unix:///abs/path" or (ttrpc only) "tcp://127.0.0.1:PORT".
using ListenAddress = rpc::ListenAddress;

// An app enclave the agent may release a container's root key to (checked by the boot's local
// attestation, handed to the ContainerRuntime). The configuration spells the measurements as 64
// lowercase hex characters; they are decoded once, when it is loaded.
struct EnclaveIdentity {
  std::optional<local_attest::sgx::Measurement> mrenclave;  // none: any
  std::optional<local_attest::sgx::Measurement> mrsigner;   // none: any
  std::uint16_t isv_prod_id = 0;
  std::uint16_t min_isv_svn = 0;
};

// Registry access for pulls (skopeo's flags, image/pull.h PullOptions).
struct RegistryAccess {
  bool tls_verify = true;       // false: plain HTTP allowed, certificates not checked
  std::string cert_dir;         // *.crt CAs, *.cert/*.key client certificate
  std::string registries_conf;  // [[registry]] insecure=true entries
  std::string authfile;         // credentials when PullImage carries none
};

// The agent's limits: its transports' (rpc::Limits: messages, connections, requests, blocking
// calls, frame timeout) and its pulls'.
struct Limits : rpc::Limits {
  std::size_t max_concurrent_pulls = 4;
  // Pulls (design/image.md "Limits"): exceeding one fails that pull with RESOURCE_EXHAUSTED
  // naming the key, and nothing of it is kept.
  std::size_t max_layer_size = 16ull << 30;   // decompressed bytes of one layer
  std::size_t max_image_size = 16ull << 30;   // decompressed bytes of one image's layers
  std::size_t max_decompression_ratio = 100;  // a layer's decompressed / compressed bytes
  std::size_t max_layers = 128;               // layers of one image
  std::size_t max_store_size = 64ull << 30;   // bytes of every sealed image store together
  std::size_t max_image_ref_size = 4096;
};

// How the persisted agent state is sealed: "tee" (the default: EGETKEY SEAL key with MRSIGNER
// policy — same signer, product and at least this SVN — through local-attest's TEE backend,
// bound to the measured manifest's digest) or "file" (development outside an enclave only: a
// 256-bit key in a 0600 file the host can read; the agent says so loudly).
struct StateSealing {
  std::string source = "tee";
  std::string key_file;  // "file": default <state_dir>/seal.key
};

// The app enclave StartContainer launches through the sim launcher (design/api.md "boot"):
// sealroot-boot, the SIGSTRUCT it was signed with, and the enclave layout that SIGSTRUCT covers
// (the layout is part of MRENCLAVE). No executable: StartContainer answers "boot not available".
struct BootConfig {
  std::string executable;
  std::string sigstruct;  // path of the 1808-byte SIGSTRUCT (sealroot enclave sign --out)
  // The boot's own manifest (its expected stub identity), measured into the boot's MRENCLAVE,
  // so the SIGSTRUCT covers it. Empty: the development form, the stub identity on the boot's argv.
  std::string manifest;
  std::uint64_t heap_size = 64ull << 20;
  std::uint32_t threads = 4;
};

// The owner's key broker (design/attestation.md "Remote attestation to the key broker"): the
// agent attests to it with an SGX quote (KBS protocol) and fetches layer keys (kbs:// URIs in
// the layers' attestation-agent provider annotation), and optionally the registry credentials
// (an auth.json) and the signature policy, which then never come from the host.
struct KeyBrokerConfig {
  std::string url;               // http(s)://host:port; empty: no key broker
  std::string ca_file;           // https: the broker's CA as a host file (not in a measured manifest)
  std::string ca_pem;            // https: the broker's CA, inline PEM (measured with the manifest)
  std::string credentials;       // kbs:// URI of an auth.json ({"auths":{"host":{"auth":"b64"}}})
  std::string signature_policy;  // kbs:// URI of a containers-policy.json
  std::string workload_policy;   // kbs:// URI of the workload policy (the "workload" section's JSON)
};

struct AgentConfig {
  std::vector<ListenAddress> ttrpc;
  std::vector<ListenAddress> grpc;
  std::string state_dir = kDefaultStateDir;
  std::string store_dir = kDefaultStoreDir;
  image::TrustOptions trust;
  KeyBrokerConfig key_broker;
  RegistryAccess registry;
  std::vector<EnclaveIdentity> app_enclaves;
  WorkloadPolicy workload;  // what containers may run beyond their image; exec only as listed
  StateSealing sealing;
  BootConfig boot;
  Limits limits;
  // Set when the config came from the enclave's measured manifest: its SHA-256 (part of the
  // sealed state), and the sealed memfds holding the documents it inlines (trust policy,
  // key-provider config), which the trust code reads as /proc/self/fd/N paths.
  std::optional<Sha256Digest> manifest_digest;
  std::shared_ptr<const std::vector<UniqueFd>> inline_documents;
};

// Parses a config document. Unknown keys are errors (a typo must not silently drop a policy).
Result<AgentConfig> ParseAgentConfig(std::string_view json_text);
// Reads and parses `path`; a missing file at the default path yields the defaults.
Result<AgentConfig> LoadAgentConfig(const std::string& path, bool path_is_default);
// The configuration of an agent in an enclave: its measured manifest, self-contained. Besides
// ParseAgentConfig's checks, nothing may name a host file that decides what the agent trusts:
// "trust.policy" and "trust.keyprovider_config" are inline JSON objects (signature keys as
// keyData, key providers over gRPC only), there are no private keys (the host can read the
// manifest), and a configured boot needs "app_enclaves". Listen addresses and the state and
// store directories may still come from the command line.
Result<AgentConfig> ParseAgentManifest(std::string_view manifest);

}  // namespace sealroot::agent
