// How the pipeline schedules a registry image's layers: the layers it starts at once stream from
// the source as they arrive, and only the later ones are fetched ahead into the spool.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <set>

#include "image/manifest.h"
#include "image/pull.h"
#include "tests/support/images.h"
#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

using namespace std::chrono_literals;

// Opens once the sink has seen a given layer's first entry.
class Gate {
 public:
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // True if it opened in time.
  bool Wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool open_ = false;
};

// A blob whose last byte is held back until the gate opens (or a timeout passes, then noted).
class HeldBackReader final : public Reader {
 public:
  HeldBackReader(std::unique_ptr<Reader> inner, std::uint64_t size, Gate& gate, std::atomic<bool>& timed_out)
      : inner_(std::move(inner)), left_(size), gate_(gate), timed_out_(timed_out) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    if (left_ == 1 && !waited_) {
      waited_ = true;
      if (!gate_.Wait(20s)) timed_out_ = true;
    }
    if (left_ > 1) out = out.first(std::min<std::uint64_t>(out.size(), left_ - 1));
    auto n = inner_->Read(out);
    if (n.ok()) left_ -= *n;
    return n;
  }

 private:
  std::unique_ptr<Reader> inner_;
  std::uint64_t left_;
  Gate& gate_;
  std::atomic<bool>& timed_out_;
  bool waited_ = false;
};

// A blob that opens the gate once it was read to its end.
class OpensGateAtEndReader final : public Reader {
 public:
  OpensGateAtEndReader(std::unique_ptr<Reader> inner, Gate& gate) : inner_(std::move(inner)), gate_(gate) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    auto n = inner_->Read(out);
    if (n.ok() && *n == 0) gate_.Open();
    return n;
  }

 private:
  std::unique_ptr<Reader> inner_;
  Gate& gate_;
};

// An OCI layout served as a registry would be (so the pipeline may fetch ahead), holding back
// the last byte of some layers' blobs until the gate opens; a blob read to its end may open it.
class RemoteSource final : public image::ImageSource {
 public:
  RemoteSource(std::unique_ptr<image::ImageSource> layout, std::set<image::Digest> held_back, Gate& gate,
               std::optional<image::Digest> opens_gate_at_end = std::nullopt)
      : layout_(std::move(layout)),
        held_back_(std::move(held_back)),
        gate_(gate),
        opens_gate_at_end_(std::move(opens_gate_at_end)) {}
  const image::Reference& reference() const override { return layout_->reference(); }
  bool IsRemote() const override { return true; }
  Result<image::ManifestBytes> GetManifest(std::string_view tag_or_digest) override {
    return layout_->GetManifest(tag_or_digest);
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const image::Descriptor& descriptor) override {
    auto blob = layout_->OpenBlob(descriptor);
    if (!blob.ok()) return blob;
    if (held_back_.contains(descriptor.digest)) {
      return std::unique_ptr<Reader>(
          std::make_unique<HeldBackReader>(std::move(*blob), descriptor.size, gate_, held_back_timed_out));
    }
    if (descriptor.digest == opens_gate_at_end_)
      return std::unique_ptr<Reader>(std::make_unique<OpensGateAtEndReader>(std::move(*blob), gate_));
    return blob;
  }

  std::atomic<bool> held_back_timed_out = false;

 private:
  std::unique_ptr<image::ImageSource> layout_;
  const std::set<image::Digest> held_back_;
  Gate& gate_;
  const std::optional<image::Digest> opens_gate_at_end_;
};

// Keeps each layer's entry paths; opens the gate on the first entry of layer `watched`.
class RecordingSink final : public image::ImageSink {
 public:
  RecordingSink(std::size_t watched, Gate& gate) : watched_(watched), gate_(gate) {}
  bool LayersIndependent() const override { return true; }
  Result<std::unique_ptr<image::LayerSink>> OpenLayer(const image::LayerInfo& info) override {
    return std::unique_ptr<image::LayerSink>(std::make_unique<Layer>(*this, info.index));
  }
  Status Finish(const image::ImageInfo&) override { return OkStatus(); }
  void Abort(const Status&) override {}

  std::set<std::string> PathsOf(std::size_t layer) {
    std::lock_guard lock(mu_);
    return paths_[layer];
  }

 private:
  class Layer final : public image::LayerSink {
   public:
    Layer(RecordingSink& sink, std::size_t index) : sink_(sink), index_(index) {}
    Status AddEntry(const image::Entry& entry, Reader* content) override {
      if (content != nullptr) {
        std::vector<std::uint8_t> buffer(64 << 10);
        while (true) {
          SR_ASSIGN_OR_RETURN(std::size_t n, content->Read(buffer));
          if (n == 0) break;
        }
      }
      {
        std::lock_guard lock(sink_.mu_);
        sink_.paths_[index_].insert(entry.path);
      }
      if (index_ == sink_.watched_) sink_.gate_.Open();
      return OkStatus();
    }
    Status Commit() override { return OkStatus(); }
    void Abort(const Status&) override {}

   private:
    RecordingSink& sink_;
    std::size_t index_;
  };

  const std::size_t watched_;
  Gate& gate_;
  std::mutex mu_;
  std::map<std::size_t, std::set<std::string>> paths_;
};

std::string RandomBytes(std::size_t n) {
  std::mt19937_64 random(42);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

// An OCI layout image of these layers (umoci gzips each tar), opened as a source. Throws if a
// step fails (a fixture bug, not a test result).
struct LayoutImage {
  std::unique_ptr<image::ImageSource> source;
  std::vector<image::Descriptor> layers;
};

LayoutImage MakeImage(const TempDir& work, const std::vector<std::vector<TarEntry>>& layers) {
  std::string ref = NewLayoutImage(work / "layout", "img");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    std::string tar = work / ("layer" + std::to_string(i) + ".tar");
    WriteTar(tar, layers[i]);
    AddLayer(ref, tar);
  }
  auto parsed = image::Reference::Parse(ref);
  if (!parsed.ok()) throw std::runtime_error(parsed.status().ToString());
  auto source = image::OpenImageSource(*parsed, {});
  if (!source.ok()) throw std::runtime_error(source.status().ToString());
  auto manifest = (*source)->GetManifest("img");
  if (!manifest.ok()) throw std::runtime_error(manifest.status().ToString());
  auto parsed_manifest = image::ParseManifest(manifest->bytes, manifest->media_type);
  if (!parsed_manifest.ok()) throw std::runtime_error(parsed_manifest.status().ToString());
  return {std::move(*source), parsed_manifest->layers};
}

// A two-layer image from a registry: both layers start at once, so the second must stream as
// it arrives. Fetching it ahead would make its walk wait for the whole download: its first file
// would reach the sink only once the blob's last byte had.
TEST(PipelineTest, ALayerStartedAtOnceStreamsInsteadOfWaitingForAFetchAhead) {
  TempDir work;
  // Incompressible, so the blob is larger than every buffer between the source and the walk.
  LayoutImage image = MakeImage(
      work, {{{.name = "bottom", .data = "below"}},
             {{.name = "first", .data = "on top"}, {.name = "large", .data = RandomBytes(4 << 20)}}});
  Gate top_started;
  RemoteSource source(std::move(image.source), {image.layers[1].digest}, top_started);
  RecordingSink sink(/*watched=*/1, top_started);
  image::PullOptions options;
  options.spool_dir = work.path();
  auto unpacked = image::PullAndUnpack(source, options, sink);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status().ToString();
  EXPECT_FALSE(source.held_back_timed_out)
      << "the top layer's first file reached the sink only after its whole blob was downloaded";
  EXPECT_EQ(sink.PathsOf(0), (std::set<std::string>{"bottom"}));
  EXPECT_EQ(sink.PathsOf(1), (std::set<std::string>{"first", "large"}));
}

// Three layers: the pipeline starts the first two, and the third is fetched ahead meanwhile —
// here while both of the first two wait for their last byte.
TEST(PipelineTest, ALayerThePipelineDoesNotStartAtOnceIsFetchedAhead) {
  TempDir work;
  LayoutImage image = MakeImage(work, {{{.name = "zero", .data = RandomBytes(1 << 20)}},
                                       {{.name = "one", .data = RandomBytes(1 << 20)}},
                                       {{.name = "two", .data = "fetched ahead"}}});
  Gate third_fetched;
  RemoteSource source(std::move(image.source), {image.layers[0].digest, image.layers[1].digest},
                      third_fetched, image.layers[2].digest);
  RecordingSink sink(/*watched=*/SIZE_MAX, third_fetched);
  image::PullOptions options;
  options.spool_dir = work.path();
  auto unpacked = image::PullAndUnpack(source, options, sink);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status().ToString();
  EXPECT_FALSE(source.held_back_timed_out) << "the third layer was not fetched while the first two streamed";
  EXPECT_EQ(sink.PathsOf(2), (std::set<std::string>{"two"}));
}

}  // namespace
}  // namespace sealroot::testing
