#include "image/pull.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "base/interrupt.h"
#include "base/log.h"
#include "image/src/blob_cache.h"
#include "image/src/limits.h"
#include "image/src/prefetch.h"
#include "image/src/progress.h"
#include "image/src/sources.h"
#include "image/src/tar_walk.h"
#include "image/stream.h"

namespace sealroot::image {
namespace {

constexpr std::size_t kMaxConfigSize = 8u << 20;
constexpr std::size_t kParallelLayers = 2;
using internal::ReportProgress;

std::string LayerLabel(std::size_t i, std::size_t n, const Descriptor& d) {
  return "layer " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" + d.digest.str() + ")";
}

// Shares a stage between the chain and UnpackLayer, which may finish reading it after a later
// stage failed (the chain is gone by then).
class SharedReader final : public Reader {
 public:
  explicit SharedReader(std::shared_ptr<Reader> inner) : inner_(std::move(inner)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override { return inner_->Read(out); }

 private:
  std::shared_ptr<Reader> inner_;
};

// Says which stage an error came from.
class LabelledReader final : public Reader {
 public:
  LabelledReader(std::unique_ptr<Reader> inner, std::string label)
      : inner_(std::move(inner)), label_(std::move(label)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    auto n = inner_->Read(out);
    if (!n.ok() && n.status().code() != Code::kCancelled && n.status().code() != Code::kResourceExhausted)
      return std::move(n).status().WithContext(label_);
    return n;
  }

 private:
  std::unique_ptr<Reader> inner_;
  std::string label_;
};

// Ends a layer's walk once a layer unpacking beside it has failed: the pull fails anyway, and
// the rest of this layer would be written only to be thrown away.
class StoppableReader final : public Reader {
 public:
  StoppableReader(std::unique_ptr<Reader> inner, const std::atomic<bool>& stop)
      : inner_(std::move(inner)), stop_(stop) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    if (stop_) return Cancelled("stopped: another layer failed");
    return inner_->Read(out);
  }

 private:
  std::unique_ptr<Reader> inner_;
  const std::atomic<bool>& stop_;
};

// A layer's stream: `tar` for the walk; `checked`, the stages whose checks come first (the blob
// digest and size, then the decryption's HMAC and plaintext digest), ending where decompression
// begins.
struct LayerChain {
  std::unique_ptr<Reader> tar;
  std::shared_ptr<Reader> checked;
};

// The stages between the verified blob and the tar walk: decrypt, decompress, DiffID.
Result<LayerChain> LayerStream(std::unique_ptr<Reader> blob, const Descriptor& desc, const Digest& diff_id,
                               const PullOptions& options, internal::ImageBudget& budget) {
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
  // Three threads a layer, each stage weighing about as much as the others: reading, the blob
  // digest and decryption (HMAC and AES); decompression; the DiffID's SHA-256 over the whole
  // tar, the walk and the file writes. The first read-ahead is part of `checked`: it keeps the
  // checks' verdict when it read the blob to its end before the walk failed.
  if (compression != Compression::kNone) blob = MakeReadAhead(std::move(blob), 256 << 10);
  LayerChain chain;
  chain.checked = std::shared_ptr<Reader>(std::move(blob));
  SR_ASSIGN_OR_RETURN(
      std::unique_ptr<Reader> tar,
      MakeDecompressor(compression, std::make_unique<SharedReader>(chain.checked), UINT64_MAX));
  if (compression != Compression::kNone)
    tar = std::make_unique<LabelledReader>(std::move(tar), "decompressing");
  tar = meter->Decompressed(std::move(tar));  // every limit, for every compression
  chain.tar = MakeVerifyingReader(MakeReadAhead(std::move(tar), 512 << 10), diff_id, -1, "DiffID");
  return chain;
}

// After the walk: the blob's own checks run to its end (bytes after the end of the compressed
// stream count too), and when a later stage failed they are reported first if they fail, since
// a wrong blob or ciphertext explains whatever decompression or the DiffID said.
Status FinishChecks(LayerChain& chain, Status walked) {
  chain.tar.reset();  // stops the walk's read-ahead thread: `checked` is ours alone now
  Code code = walked.code();
  if (code == Code::kCancelled || code == Code::kResourceExhausted) return walked;
  Status checked = Drain(*chain.checked);
  if (!checked.ok() && (walked.ok() || checked.code() == Code::kDataLoss)) return checked;
  return walked;
}

Status UnpackLayer(internal::Prefetcher* prefetcher, ImageSource& source, const ResolvedImage& image,
                   std::size_t i, const PullOptions& options, internal::ImageBudget& budget, ImageSink& sink,
                   const std::atomic<bool>& stop) {
  const Descriptor& desc = image.parsed.layers[i];
  std::size_t n = image.parsed.layers.size();
  const Digest& diff_id = image.config.diff_ids[i];
  if (sink.HasLayer(diff_id)) {
    ReportProgress(options, ProgressEvent::Phase::kLayerSkipped, i, n, static_cast<std::uint64_t>(desc.size));
    return OkStatus();
  }
  ReportProgress(options, ProgressEvent::Phase::kLayerStarted, i, n, static_cast<std::uint64_t>(desc.size));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, prefetcher ? prefetcher->Open(i) : source.OpenBlob(desc));
  SR_ASSIGN_OR_RETURN(LayerChain chain, LayerStream(std::move(blob), desc, diff_id, options, budget));
  chain.tar = std::make_unique<StoppableReader>(std::move(chain.tar), stop);
  SR_ASSIGN_OR_RETURN(std::unique_ptr<LayerSink> layer, sink.OpenLayer(LayerInfo{i, n, desc, diff_id}));
  Status s = FinishChecks(chain, internal::WalkTar(*chain.tar, *layer));
  if (s.ok()) s = layer->Commit();
  if (!s.ok()) {
    layer->Abort(s);
    return s;
  }
  ReportProgress(options, ProgressEvent::Phase::kLayerDone, i, n, static_cast<std::uint64_t>(desc.size));
  return OkStatus();
}

// The order the pipeline takes the layers in: the first layer of each DiffID, on up to
// kParallelLayers threads (the first `workers` of them start at once), then the repeats, which
// the sink holds by then.
struct LayerPlan {
  std::vector<std::size_t> first_of_each;
  std::vector<std::size_t> repeats;
  std::size_t workers = 1;
};

LayerPlan PlanLayers(const ResolvedImage& image, const ImageSink& sink) {
  LayerPlan plan;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < image.parsed.layers.size(); ++i)
    (seen.insert(image.config.diff_ids[i].str()).second ? plan.first_of_each : plan.repeats).push_back(i);
  if (sink.LayersIndependent()) plan.workers = std::min(plan.first_of_each.size(), kParallelLayers);
  return plan;
}

// Unpacks every layer as `plan` says (each layer runs three threads: reading and decryption,
// decompression, the walk), so that one layer's file writes overlap another's decompression; a
// repeated DiffID is skipped as a layer the sink holds. A failure stops the layers beside it;
// the error reported is the lowest failed layer's, not counting those it stopped.
Status UnpackLayers(internal::Prefetcher* prefetcher, ImageSource& source, const ResolvedImage& image,
                    const LayerPlan& plan, const PullOptions& options, internal::ImageBudget& budget,
                    ImageSink& sink) {
  const std::vector<Descriptor>& layers = image.parsed.layers;
  std::atomic<bool> failed{false};
  auto unpack = [&](std::size_t i) {
    Status s = UnpackLayer(prefetcher, source, image, i, options, budget, sink, failed);
    return s.ok() ? s : std::move(s).WithContext(LayerLabel(i, layers.size(), layers[i]));
  };
  if (plan.workers <= 1) {
    for (std::size_t i = 0; i < layers.size(); ++i) SR_RETURN_IF_ERROR(unpack(i));
    return OkStatus();
  }
  std::vector<Status> results(plan.first_of_each.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t k; !failed && (k = next++) < plan.first_of_each.size();) {
      results[k] = unpack(plan.first_of_each[k]);
      if (!results[k].ok()) failed = true;
    }
  };
  {
    std::vector<std::jthread> helpers;
    for (std::size_t w = 1; w < plan.workers; ++w) helpers.emplace_back(work);
    work();
  }
  // A stopped layer says kCancelled, as every layer does on Ctrl-C.
  auto failure =
      std::ranges::find_if(results, [](const Status& r) { return !r.ok() && r.code() != Code::kCancelled; });
  if (failure == results.end())
    failure = std::ranges::find_if(results, [](const Status& r) { return !r.ok(); });
  if (failure != results.end()) return std::move(*failure);
  for (std::size_t i : plan.repeats) SR_RETURN_IF_ERROR(unpack(i));
  return OkStatus();
}

// Fetch-ahead only pays off over a network, for layers the pipeline does not start at once
// (one it started would wait for the whole download before its first byte) and that the sink
// does not already hold.
Result<std::unique_ptr<internal::Prefetcher>> StartPrefetcher(ImageSource& source, const ResolvedImage& image,
                                                              const LayerPlan& plan,
                                                              const PullOptions& options,
                                                              const ImageSink& sink) {
  if (!source.IsRemote() || options.parallel_downloads < 2) return std::unique_ptr<internal::Prefetcher>();
  const std::vector<Descriptor>& layers = image.parsed.layers;
  std::vector<bool> ahead(layers.size());
  std::size_t started_at_once = 0;
  for (std::size_t i : plan.first_of_each) {
    if (sink.HasLayer(image.config.diff_ids[i])) continue;
    ahead[i] = started_at_once++ >= plan.workers;
  }
  if (std::ranges::find(ahead, true) == ahead.end()) return std::unique_ptr<internal::Prefetcher>();
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
  SR_ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> source, internal::OpenRegistrySource(ref, options));
  if (options.blob_cache_dir.empty()) return source;
  return internal::WrapWithBlobCache(std::move(source), options.blob_cache_dir);
}

Result<ResolvedImage> ResolveImage(ImageSource& source, const PullOptions& options) {
  const Reference& ref = source.reference();
  ReportProgress(options, ProgressEvent::Phase::kResolving);
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

Result<ImageInfo> PullAndUnpack(ImageSource& original, const PullOptions& options, ImageSink& sink) {
  std::string what = "unpacking " + original.reference().ToString();
  auto resolved = ResolveImage(original, options);
  Status s = resolved.status();
  // Declared before the prefetcher, whose workers use it until they stop.
  std::optional<internal::ProgressSource> counted;
  if (s.ok()) counted.emplace(original, resolved->parsed.layers, options.progress);
  ImageSource& source = counted ? static_cast<ImageSource&>(*counted) : original;
  LayerPlan plan;
  std::unique_ptr<internal::Prefetcher> prefetcher;
  if (s.ok()) {
    plan = PlanLayers(*resolved, sink);
    auto started = StartPrefetcher(source, *resolved, plan, options, sink);
    s = started.status();
    if (s.ok()) prefetcher = std::move(*started);
  }
  internal::ImageBudget budget;
  if (s.ok()) s = UnpackLayers(prefetcher.get(), source, *resolved, plan, options, budget, sink);
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
  ReportProgress(options, ProgressEvent::Phase::kFinished);
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
