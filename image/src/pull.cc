#include "image/pull.h"

#include <cerrno>
#include <cstdlib>
#include <optional>

#include "base/interrupt.h"
#include "base/log.h"
#include "image/src/limits.h"
#include "image/src/prefetch.h"
#include "image/src/sources.h"
#include "image/src/tar_walk.h"
#include "image/stream.h"

namespace sealroot::image {
namespace {

constexpr std::size_t kMaxConfigSize = 8u << 20;
constexpr std::uint64_t kProgressStep = 1u << 20;

// Reports compressed bytes as they pass (the progress display's source).
class ProgressReader final : public Reader {
 public:
  ProgressReader(std::unique_ptr<Reader> inner, const ProgressCallback& cb, ProgressEvent event)
      : inner_(std::move(inner)), cb_(cb), event_(event) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    SR_ASSIGN_OR_RETURN(std::size_t n, inner_->Read(out));
    event_.bytes += n;
    if (event_.bytes - reported_ >= kProgressStep || (n == 0 && event_.bytes != reported_)) {
      reported_ = event_.bytes;
      cb_(event_);
    }
    return n;
  }

 private:
  std::unique_ptr<Reader> inner_;
  const ProgressCallback& cb_;
  ProgressEvent event_;
  std::uint64_t reported_ = 0;
};

void Report(const PullOptions& o, ProgressEvent::Phase phase, std::size_t layer = 0, std::size_t count = 0,
            std::uint64_t total = 0) {
  if (o.progress) o.progress(ProgressEvent{phase, layer, count, 0, total});
}

std::string LayerLabel(std::size_t i, std::size_t n, const Descriptor& d) {
  return "layer " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" + d.digest.str() + ")";
}

// The stages between the verified blob and the tar walk: decrypt, decompress, DiffID.
Result<std::unique_ptr<Reader>> LayerStream(std::unique_ptr<Reader> blob, const Descriptor& desc,
                                            const Digest& diff_id, const PullOptions& options,
                                            internal::ImageBudget& budget) {
  auto meter = std::make_shared<internal::LayerMeter>(options, budget);
  blob = meter->Compressed(std::move(blob));
  std::string media_type = desc.media_type;
  if (options.decryptor != nullptr && options.decryptor->IsEncrypted(media_type)) {
    SR_ASSIGN_OR_RETURN(blob, options.decryptor->Decrypt(desc, std::move(blob)));
    media_type = options.decryptor->PlaintextMediaType(media_type);
  } else if (media_type.ends_with("+encrypted")) {
    return FailedPrecondition("the layer is encrypted (" + media_type + ") and no decryption key was given");
  }
  SR_ASSIGN_OR_RETURN(Compression compression, CompressionOfLayer(media_type));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> tar,
                      MakeDecompressor(compression, std::move(blob), UINT64_MAX));
  tar = meter->Decompressed(std::move(tar));  // every limit, for every compression
  // Digests and decompression on one core, the tar walk and file writes on another.
  return MakeReadAhead(MakeVerifyingReader(std::move(tar), diff_id, -1, "DiffID"));
}

Status UnpackLayer(internal::Prefetcher* prefetcher, ImageSource& source, const ResolvedImage& image,
                   std::size_t i, const PullOptions& options, internal::ImageBudget& budget,
                   ImageSink& sink) {
  const Descriptor& desc = image.parsed.layers[i];
  std::size_t n = image.parsed.layers.size();
  const Digest& diff_id = image.config.diff_ids[i];
  if (sink.HasLayer(diff_id)) {
    Report(options, ProgressEvent::Phase::kLayerSkipped, i, n, static_cast<std::uint64_t>(desc.size));
    return OkStatus();
  }
  Report(options, ProgressEvent::Phase::kLayerStarted, i, n, static_cast<std::uint64_t>(desc.size));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, prefetcher ? prefetcher->Open(i) : source.OpenBlob(desc));
  if (options.progress) {
    blob = std::make_unique<ProgressReader>(
        std::move(blob), options.progress,
        ProgressEvent{ProgressEvent::Phase::kLayerBytes, i, n, 0, static_cast<std::uint64_t>(desc.size)});
  }
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> tar,
                      LayerStream(std::move(blob), desc, diff_id, options, budget));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<LayerSink> layer, sink.OpenLayer(LayerInfo{i, n, desc, diff_id}));
  Status s = internal::WalkTar(*tar, *layer);
  if (s.ok()) s = layer->Commit();
  if (!s.ok()) {
    layer->Abort(s);
    return s;
  }
  Report(options, ProgressEvent::Phase::kLayerDone, i, n, static_cast<std::uint64_t>(desc.size));
  return OkStatus();
}

// Fetch-ahead only pays off over a network, with several layers, for a sink that does not
// already hold them.
Result<std::unique_ptr<internal::Prefetcher>> StartPrefetcher(ImageSource& source, const ResolvedImage& image,
                                                              const PullOptions& options,
                                                              const ImageSink& sink) {
  const std::vector<Descriptor>& layers = image.parsed.layers;
  if (!source.IsRemote() || options.parallel_downloads < 2 || layers.size() < 2) {
    return std::unique_ptr<internal::Prefetcher>();
  }
  std::vector<bool> ahead(layers.size());
  for (std::size_t i = 1; i < layers.size(); ++i) ahead[i] = !sink.HasLayer(image.config.diff_ids[i]);
  const char* tmp = std::getenv("TMPDIR");
  std::string base = !options.spool_dir.empty() ? options.spool_dir : (tmp && *tmp ? tmp : "/tmp");
  std::string dir = base + "/sealroot-spool-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return ErrnoStatus("creating a spool directory in " + base, errno);
  return std::make_unique<internal::Prefetcher>(source, layers, std::move(ahead),
                                                options.parallel_downloads - 1, dir, options.spool_cap);
}

Result<ManifestBytes> FetchManifest(ImageSource& source, const std::string& tag_or_digest,
                                    const std::optional<Digest>& expected) {
  SR_ASSIGN_OR_RETURN(ManifestBytes m, source.GetManifest(tag_or_digest));
  if (expected && m.digest != *expected) {
    return DataLoss("manifest digest mismatch: got " + m.digest.str() + ", want " + expected->str());
  }
  return m;
}

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenImageSource(const Reference& ref, const PullOptions& options) {
  switch (ref.transport) {
    case Transport::kOciLayout:
      return internal::OpenOciLayoutSource(ref);
    case Transport::kOciArchive:
      return internal::OpenOciArchiveSource(ref, options);
    case Transport::kDocker:
      break;
  }
  return internal::OpenRegistrySource(ref, options);
}

Result<ResolvedImage> ResolveImage(ImageSource& source, const PullOptions& options) {
  const Reference& ref = source.reference();
  Report(options, ProgressEvent::Phase::kResolving);
  SR_ASSIGN_OR_RETURN(ManifestBytes top, FetchManifest(source, ref.TagOrDigest(), ref.digest));
  if (options.verifier != nullptr)
    SR_RETURN_IF_ERROR_CTX(options.verifier->VerifyImage(source, top), "signature policy");
  std::optional<ManifestBytes> index_bytes;
  if (IsIndexMediaType(top.media_type)) {
    SR_ASSIGN_OR_RETURN(Index index, ParseIndex(top.bytes, top.media_type));
    Platform platform = options.platform ? *options.platform : Platform::Host();
    SR_ASSIGN_OR_RETURN(Descriptor chosen, SelectPlatform(index, platform));
    SR_ASSIGN_OR_RETURN(ManifestBytes manifest, FetchManifest(source, chosen.digest.str(), chosen.digest));
    if (manifest.bytes.size() != static_cast<std::size_t>(chosen.size)) {
      return DataLoss("manifest " + chosen.digest.str() + ": size differs from the index");
    }
    index_bytes = std::move(top);
    top = std::move(manifest);
  }
  SR_ASSIGN_OR_RETURN(Manifest parsed, ParseManifest(top.bytes, top.media_type));
  if (parsed.layers.size() > options.max_layers) {
    return ResourceExhausted("the image has " + std::to_string(parsed.layers.size()) +
                             " layers: exceeds the limit max_layers = " + std::to_string(options.max_layers));
  }
  const Descriptor& config = parsed.config;
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> config_reader, source.OpenBlob(config));
  auto config_json = ReadAll(*config_reader, kMaxConfigSize);
  if (!config_json.ok()) return std::move(config_json).status().WithContext("config " + config.digest.str());
  auto parsed_config = ParseImageConfig(*config_json);
  if (!parsed_config.ok())
    return std::move(parsed_config).status().WithContext("config " + config.digest.str());
  if (parsed_config->diff_ids.size() != parsed.layers.size()) {
    return DataLoss("the manifest has " + std::to_string(parsed.layers.size()) +
                    " layers but the config lists " + std::to_string(parsed_config->diff_ids.size()) +
                    " DiffIDs");
  }
  return ResolvedImage{std::move(index_bytes), std::move(top), std::move(parsed), std::move(*config_json),
                       std::move(*parsed_config)};
}

Result<ImageInfo> PullAndUnpack(ImageSource& source, const PullOptions& options, ImageSink& sink) {
  std::string what = "unpacking " + source.reference().ToString();
  auto resolved = ResolveImage(source, options);
  Status s = resolved.status();
  std::unique_ptr<internal::Prefetcher> prefetcher;
  if (s.ok()) {
    auto started = StartPrefetcher(source, *resolved, options, sink);
    s = started.status();
    if (s.ok()) prefetcher = std::move(*started);
  }
  internal::ImageBudget budget;
  for (std::size_t i = 0; s.ok() && i < resolved->parsed.layers.size(); ++i) {
    s = UnpackLayer(prefetcher.get(), source, *resolved, i, options, budget, sink);
    if (!s.ok())
      s = std::move(s).WithContext(LayerLabel(i, resolved->parsed.layers.size(), resolved->parsed.layers[i]));
  }
  if (s.ok() && Interrupted()) s = Cancelled("interrupted");
  std::optional<ImageInfo> info;
  if (s.ok()) {
    info = ImageInfo{source.reference().ToString(),  resolved->manifest.digest, resolved->manifest.bytes,
                     resolved->parsed.config.digest, resolved->config_json,     resolved->config.diff_ids};
    s = sink.Finish(*info);
  }
  if (!s.ok()) {
    sink.Abort(s);
    return std::move(s).WithContext(what);
  }
  Report(options, ProgressEvent::Phase::kFinished);
  return std::move(*info);
}

Result<ImageInfo> PullAndUnpack(const Reference& ref, const PullOptions& options, ImageSink& sink) {
  auto source = OpenImageSource(ref, options);
  if (!source.ok()) {
    sink.Abort(source.status());
    return std::move(source).status().WithContext("unpacking " + ref.ToString());
  }
  return PullAndUnpack(**source, options, sink);
}

}  // namespace sealroot::image
