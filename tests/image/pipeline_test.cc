// How the pipeline schedules a registry image's layers: the layers it starts at once stream from
// the source as they arrive, and only the later ones are fetched ahead into the spool.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
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
  HeldBackReader(std::unique_ptr<Reader> inner, std::uint64_t size, Gate& gate, bool& timed_out)
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
  bool& timed_out_;
  bool waited_ = false;
};

// An OCI layout served as a registry would be (so the pipeline may fetch ahead), holding back
// the last byte of one layer's blob.
class RemoteSource final : public image::ImageSource {
 public:
  RemoteSource(std::unique_ptr<image::ImageSource> layout, image::Digest held_back, Gate& gate)
      : layout_(std::move(layout)), held_back_(std::move(held_back)), gate_(gate) {}
  const image::Reference& reference() const override { return layout_->reference(); }
  bool IsRemote() const override { return true; }
  Result<image::ManifestBytes> GetManifest(std::string_view tag_or_digest) override {
    return layout_->GetManifest(tag_or_digest);
  }
  Result<std::unique_ptr<Reader>> OpenBlob(const image::Descriptor& descriptor) override {
    auto blob = layout_->OpenBlob(descriptor);
    if (!blob.ok() || descriptor.digest != held_back_) return blob;
    return std::unique_ptr<Reader>(
        std::make_unique<HeldBackReader>(std::move(*blob), descriptor.size, gate_, held_back_timed_out));
  }

  bool held_back_timed_out = false;

 private:
  std::unique_ptr<image::ImageSource> layout_;
  const image::Digest held_back_;
  Gate& gate_;
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

// A two-layer image from a registry: both layers start at once, so the second must stream as
// it arrives. Fetching it ahead would make its walk wait for the whole download: its first file
// would reach the sink only once the blob's last byte had.
TEST(PipelineTest, ALayerStartedAtOnceStreamsInsteadOfWaitingForAFetchAhead) {
  TempDir work;
  std::string ref = NewLayoutImage(work / "layout", "two");
  WriteTar(work / "bottom.tar", {{.name = "bottom", .data = "below"}});
  // Incompressible, so the blob is larger than every buffer between the source and the walk.
  WriteTar(work / "top.tar",
           {{.name = "first", .data = "on top"}, {.name = "large", .data = RandomBytes(4 << 20)}});
  AddLayer(ref, work / "bottom.tar");
  AddLayer(ref, work / "top.tar");

  auto parsed = image::Reference::Parse(ref);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  image::PullOptions options;
  auto layout = image::OpenImageSource(*parsed, options);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  auto manifest = (*layout)->GetManifest("two");
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  auto layers = image::ParseManifest(manifest->bytes, manifest->media_type);
  ASSERT_TRUE(layers.ok()) << layers.status().ToString();
  ASSERT_EQ(layers->layers.size(), 2u);

  Gate top_started;
  RemoteSource source(std::move(*layout), layers->layers[1].digest, top_started);
  RecordingSink sink(/*watched=*/1, top_started);
  options.spool_dir = work.path();
  auto unpacked = image::PullAndUnpack(source, options, sink);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status().ToString();
  EXPECT_FALSE(source.held_back_timed_out)
      << "the top layer's first file reached the sink only after its whole blob was downloaded";
  EXPECT_EQ(sink.PathsOf(0), (std::set<std::string>{"bottom"}));
  EXPECT_EQ(sink.PathsOf(1), (std::set<std::string>{"first", "large"}));
}

}  // namespace
}  // namespace sealroot::testing
