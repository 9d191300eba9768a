// The production ImagePuller: image/pull.h's one-pass pipeline (fetch, verify, decrypt,
// decompress, tar walk) into sealing/'s sealed store.
#include "agent/server/puller.h"
#include "agent/server/src/key_broker.h"
#include "base/file.h"
#include "image/pull.h"
#include "image/reference.h"
#include "sealing/sealing.h"

namespace sealroot::agent {
namespace {

// `ref` pinned to `digest`, for every transport: registry references print it
// ("docker://host/repo@sha256:..."), layout references get it appended ("oci:DIR@sha256:...").
std::string PinnedReference(image::Reference ref, const image::Digest& digest) {
  ref.tag.clear();
  ref.digest = digest;
  std::string pinned = ref.ToString();
  if (ref.transport != image::Transport::kDocker) pinned += "@" + digest.str();
  return pinned;
}

class PipelinePuller final : public ImagePuller {
 public:
  PipelinePuller(const AgentConfig& config, std::shared_ptr<KeyBrokerSession> key_broker)
      : trust_(config.trust),
        registry_(config.registry),
        limits_(config.limits),
        spool_dir_(JoinPath(config.store_dir, "spool")),
        key_broker_(std::move(key_broker)) {}

  Result<ResolvedRef> Resolve(const PullJob& job) override {
    SR_ASSIGN_OR_RETURN(image::Reference ref, image::Reference::Parse(job.image));
    SR_ASSIGN_OR_RETURN(Access access, AccessFor(ref, job));
    SR_ASSIGN_OR_RETURN(std::unique_ptr<image::SignatureVerifier> verifier,
                        image::MakeSignatureVerifier(access.trust));
    image::PullOptions options = Options(std::move(access.creds), verifier.get(), nullptr);
    auto source = image::OpenImageSource(ref, options);
    if (!source.ok()) return std::move(source).status().WithContext("resolving " + job.image);
    auto resolved = image::ResolveImage(**source, options);
    if (!resolved.ok()) return std::move(resolved).status().WithContext("resolving " + job.image);
    const image::Digest& top = resolved->index ? resolved->index->digest : resolved->manifest.digest;
    return ResolvedRef{PinnedReference(ref, top), top.str()};
  }

  Result<PulledImage> Pull(const PullJob& job) override {
    SR_ASSIGN_OR_RETURN(image::Reference ref, image::Reference::Parse(job.image));
    SR_ASSIGN_OR_RETURN(Access access, AccessFor(ref, job));
    std::unique_ptr<image::SignatureVerifier> verifier;
    if (job.manifest_digest.empty()) {
      SR_ASSIGN_OR_RETURN(verifier, image::MakeSignatureVerifier(access.trust));
    } else {
      // Resolve checked the policy on this manifest: fetch exactly it (the digest wins over a tag).
      SR_ASSIGN_OR_RETURN(ref.digest, image::Digest::Parse(job.manifest_digest));
    }
    SR_ASSIGN_OR_RETURN(std::unique_ptr<image::LayerDecryptor> decryptor,
                        image::MakeLayerDecryptor(access.trust));
    SR_RETURN_IF_ERROR(MakeDirs(spool_dir_, 0700));
    image::PullOptions options = Options(std::move(access.creds), verifier.get(), decryptor.get());

    sealing::SealOptions seal{job.store_dir, job.key->Clone()};
    SR_ASSIGN_OR_RETURN(std::unique_ptr<sealing::SealingSink> sink,
                        sealing::OpenSealingSink(std::move(seal)));
    SR_ASSIGN_OR_RETURN(image::ImageInfo pulled, image::PullAndUnpack(ref, options, *sink));
    return PulledImage{PinnedReference(ref, pulled.manifest_digest), sink->root_hash(),
                       std::move(pulled.config_json)};
  }

 private:
  // What one pull trusts and authenticates with: the configuration's, completed by the owner's
  // key broker (policy, layer keys, registry credentials) when one is configured.
  struct Access {
    image::TrustOptions trust;
    SecretBytes creds;
  };
  Result<Access> AccessFor(const image::Reference& ref, const PullJob& job) {
    Access access{trust_, job.source_creds.Clone()};
    if (key_broker_)
      SR_RETURN_IF_ERROR(key_broker_->Apply(ref.registry, ref.repository, access.trust, access.creds));
    return access;
  }

  image::PullOptions Options(SecretBytes creds, image::SignatureVerifier* verifier,
                             image::LayerDecryptor* decryptor) const {
    image::PullOptions options;
    options.creds = std::move(creds);
    options.authfile = registry_.authfile;
    options.cert_dir = registry_.cert_dir;
    options.tls_verify = registry_.tls_verify;
    options.registries_conf = registry_.registries_conf;
    options.spool_dir = spool_dir_;
    options.verifier = verifier;
    options.decryptor = decryptor;
    options.max_layer_size = limits_.max_layer_size;
    options.max_image_size = limits_.max_image_size;
    options.max_decompression_ratio = limits_.max_decompression_ratio;
    options.max_layers = limits_.max_layers;
    return options;
  }

  const image::TrustOptions trust_;
  const RegistryAccess registry_;
  const Limits limits_;
  const std::string spool_dir_;
  const std::shared_ptr<KeyBrokerSession> key_broker_;  // the owner's key broker, when configured
};

}  // namespace

Result<std::unique_ptr<ImagePuller>> MakePipelinePuller(const AgentConfig& config,
                                                        std::shared_ptr<KeyBrokerSession> key_broker) {
  return std::unique_ptr<ImagePuller>(std::make_unique<PipelinePuller>(config, std::move(key_broker)));
}

}  // namespace sealroot::agent
