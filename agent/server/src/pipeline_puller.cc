// The production ImagePuller: image/pull.h's one-pass pipeline (fetch, verify, decrypt,
// decompress, tar walk) into agent/sealing's sealed store.
#include "agent/sealing/sealing.h"
#include "agent/server/puller.h"
#include "agent/server/src/key_broker.h"
#include "base/file.h"
#include "image/pull.h"
#include "image/reference.h"

namespace sealroot::agent {
namespace {

// Forwards to the sealing sink and keeps the manifest digest, to pin the returned reference.
class DigestRecordingSink final : public image::ImageSink {
 public:
  explicit DigestRecordingSink(image::ImageSink& inner) : inner_(inner) {}
  bool HasLayer(const image::Digest& diff_id) const override { return inner_.HasLayer(diff_id); }
  bool parallel_layers() const override { return inner_.parallel_layers(); }
  Result<std::unique_ptr<image::LayerSink>> OpenLayer(const image::LayerInfo& info) override {
    return inner_.OpenLayer(info);
  }
  Status Finish(const image::ImageInfo& image) override {
    manifest_digest_ = image.manifest_digest;
    return inner_.Finish(image);
  }
  void Abort(const Status& reason) override { inner_.Abort(reason); }
  const std::optional<image::Digest>& manifest_digest() const { return manifest_digest_; }

 private:
  image::ImageSink& inner_;
  std::optional<image::Digest> manifest_digest_;
};

class PipelinePuller final : public ImagePuller {
 public:
  explicit PipelinePuller(const AgentConfig& config)
      : trust_(config.trust), registry_(config.registry), spool_dir_(JoinPath(config.store_dir, "spool")) {
    if (!config.key_broker.url.empty()) key_broker_ = std::make_unique<KeyBrokerSession>(config.key_broker);
  }

  Result<PulledImage> Pull(const PullJob& job) override {
    SR_ASSIGN_OR_RETURN(image::Reference ref, image::Reference::Parse(job.image));
    image::TrustOptions trust = trust_;
    SecretBytes creds = job.source_creds.Clone();
    if (key_broker_) SR_RETURN_IF_ERROR(key_broker_->Apply(ref.registry, trust, creds));
    SR_ASSIGN_OR_RETURN(std::unique_ptr<image::SignatureVerifier> verifier, image::MakeSignatureVerifier(trust));
    SR_ASSIGN_OR_RETURN(std::unique_ptr<image::LayerDecryptor> decryptor, image::MakeLayerDecryptor(trust));
    SR_RETURN_IF_ERROR(MakeDirs(spool_dir_, 0700));

    image::PullOptions options;
    options.creds = std::move(creds);
    options.authfile = registry_.authfile;
    options.cert_dir = registry_.cert_dir;
    options.tls_verify = registry_.tls_verify;
    options.registries_conf = registry_.registries_conf;
    options.spool_dir = spool_dir_;
    options.verifier = verifier.get();
    options.decryptor = decryptor.get();

    sealing::SealOptions seal{job.store_dir, job.key->Clone()};
    SR_ASSIGN_OR_RETURN(std::unique_ptr<sealing::SealingSink> sink,
                        sealing::OpenSealingSink(std::move(seal)));
    DigestRecordingSink recording(*sink);
    SR_RETURN_IF_ERROR(image::PullAndUnpack(ref, options, recording));
    if (!recording.manifest_digest()) return Internal("pull finished without a manifest digest");

    image::Reference pinned = ref;
    pinned.tag.clear();
    pinned.digest = *recording.manifest_digest();
    return PulledImage{pinned.ToString(), sink->root_hash_hex()};
  }

 private:
  const image::TrustOptions trust_;
  const RegistryAccess registry_;
  const std::string spool_dir_;
  std::unique_ptr<KeyBrokerSession> key_broker_;  // the owner's key broker, when configured
};

}  // namespace

Result<std::unique_ptr<ImagePuller>> MakePipelinePuller(const AgentConfig& config) {
  return std::unique_ptr<ImagePuller>(std::make_unique<PipelinePuller>(config));
}

}  // namespace sealroot::agent
