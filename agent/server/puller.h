// ImagePuller: how the agent turns an image reference into a sealed root. The agent decides
// where (one sealed store directory per image) and with which key; the puller pulls, verifies
// per policy, decrypts and seals, and either finishes the store or leaves nothing usable.
//
// Thread-safety: Pull may be called from several threads at once (distinct images).
#pragma once

#include <memory>
#include <string>

#include "agent/server/config.h"
#include "base/secret.h"
#include "base/status.h"
#include "fusefs/types.h"

namespace sealroot::agent {

struct PullJob {
  std::string image;                 // as the client wrote it
  SecretBytes source_creds;          // "USER[:PASS]" or empty; never logged
  std::string store_dir;             // a fresh directory path for this image's sealed store
  const SecretBytes* key = nullptr;  // the store's 256-bit key (owned by the caller)
  // Set from Resolve: the manifest digest the signature policy accepted for `image`. Pull then
  // fetches exactly that manifest and does not check the policy again. Empty: Pull resolves
  // and checks the policy itself.
  std::string manifest_digest;
};

// An image reference resolved to the manifest it names now.
struct ResolvedRef {
  std::string key;              // canonical reference pinned to the manifest digest: one per image
  std::string manifest_digest;  // "sha256:<hex>" (empty when the puller does not resolve)
};

struct PulledImage {
  std::string image_ref;  // canonical, pinned to the manifest digest
  fusefs::RootHash root_hash{};
  std::string config_json;  // the verified image config (exact bytes)
};

class ImagePuller {
 public:
  virtual ~ImagePuller() = default;
  // Fetches the manifest `job.image` names (no layer) and checks the signature policy for the
  // reference as written, so that two spellings of one image (tag or digest, docker.io/library/x
  // or x) get one key. Pullers that cannot resolve key an image by its spelling.
  virtual Result<ResolvedRef> Resolve(const PullJob& job) { return ResolvedRef{job.image, ""}; }
  // Errors: kPermissionDenied (policy refused), kDataLoss (digest/MAC mismatch, wrong key),
  // kNotFound, kUnauthenticated, kUnavailable (registry), each naming the image.
  virtual Result<PulledImage> Pull(const PullJob& job) = 0;
};

// The real pipeline: image/pull.h streaming into sealing/'s sealed store, with trust from
// config.trust (signature policy, decryption keys; both built per pull, so an edited policy
// applies to the next pull) and registry access from config.registry, completed by the owner's
// key broker session when one is configured.
class KeyBrokerSession;
Result<std::unique_ptr<ImagePuller>> MakePipelinePuller(const AgentConfig& config,
                                                        std::shared_ptr<KeyBrokerSession> key_broker);

}  // namespace sealroot::agent
