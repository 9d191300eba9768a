// One contract, every implementation: image::ImageSink / LayerSink (image/sink.h) against the
// directory sink (image/dir_sink.h) and the sealed-store sink (sealing/sealing.h). Each
// implementation gets a small probe that says what a reader of its output sees (the bundle's
// rootfs, or the sealed root through the verifying reader); the tests are the same for both.
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fusefs/sealed_tree.h"
#include "fusefs/store.h"
#include "image/dir_sink.h"
#include "sealing/sealing.h"
#include "tests/fusefs/sealfs_fixture.h"
#include "tests/support/process.h"
#include "tests/support/string_reader.h"

namespace sealroot::image {
namespace {

using sealroot::testing::TempDir;

using sealroot::testing::StringReader;

Digest DigestOf(const std::string& s) {
  return Digest::FromSha256(Sha256Of(s));
}

// What a reader of one implementation's output sees.
class Probe {
 public:
  virtual ~Probe() = default;
  virtual Result<std::unique_ptr<ImageSink>> Open() = 0;
  // True once any image is visible (a finished bundle, a recorded sealed root).
  virtual bool AnyImageVisible() = 0;
  // In the finished image: a regular file's content, a symlink's target, whether a path exists.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  virtual Result<std::string> ReadLink(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  TempDir tmp;
};

class DirSinkProbe final : public Probe {
 public:
  Result<std::unique_ptr<ImageSink>> Open() override {
    return OpenDirSink(dest(), {.rootless = geteuid() != 0, .replace = false, .bundle = true});
  }
  bool AnyImageVisible() override {
    return std::filesystem::exists(dest()) && !std::filesystem::is_empty(dest());
  }
  Result<std::string> ReadFile(const std::string& path) override {
    std::ifstream in(rootfs(path), std::ios::binary);
    if (!in) return NotFound(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  Result<std::string> ReadLink(const std::string& path) override {
    char buffer[PATH_MAX];
    ssize_t n = readlink(rootfs(path).c_str(), buffer, sizeof(buffer));
    if (n < 0) return ErrnoStatus("readlink " + path, errno);
    return std::string(buffer, static_cast<std::size_t>(n));
  }
  bool Exists(const std::string& path) override {
    struct stat st {};
    return lstat(rootfs(path).c_str(), &st) == 0;
  }

 private:
  std::string dest() { return tmp / "bundle"; }
  std::string rootfs(const std::string& path) { return dest() + "/rootfs/" + path; }
};

class SealingSinkProbe final : public Probe {
 public:
  Result<std::unique_ptr<ImageSink>> Open() override {
    SR_ASSIGN_OR_RETURN(auto sink, sealing::OpenSealingSink({store_dir(), key_.Clone()}));
    last_ = sink.get();
    return std::unique_ptr<ImageSink>(std::move(sink));
  }
  bool AnyImageVisible() override {
    auto store = fusefs::Store::Open(store_dir(), false, fusefs::StoreLock::kNone);
    if (!store.ok()) return false;  // not even a store
    auto roots = (*store)->ListRoots();
    return roots.ok() && !roots->empty();
  }
  Result<std::string> ReadFile(const std::string& path) override {
    SR_ASSIGN_OR_RETURN(auto tree, Tree());
    return fusefs::testing::ReadAll(*tree, path);
  }
  Result<std::string> ReadLink(const std::string& path) override {
    SR_ASSIGN_OR_RETURN(auto tree, Tree());
    SR_ASSIGN_OR_RETURN(fusefs::Attr attr, fusefs::testing::Walk(*tree, path));
    return tree->ReadLink(attr.ino);
  }
  bool Exists(const std::string& path) override {
    auto tree = Tree();
    return tree.ok() && fusefs::testing::Walk(**tree, path).ok();
  }

 private:
  std::string store_dir() { return tmp / "store"; }
  Result<std::unique_ptr<fusefs::SealedTree>> Tree() {
    if (last_ == nullptr) return FailedPrecondition("no sink");
    fusefs::Hash32 root = last_->root_hash();
    SR_ASSIGN_OR_RETURN(auto store, fusefs::Store::Open(store_dir(), false, fusefs::StoreLock::kNone));
    SR_ASSIGN_OR_RETURN(fusefs::StoreKey key, fusefs::StoreKey::Create(key_.Clone()));
    return fusefs::SealedTree::OpenRoot(std::move(store), std::make_shared<fusefs::StoreKey>(std::move(key)),
                                        root);
  }
  SecretBytes key_ = SecretBytes::Random(32);
  sealing::SealingSink* last_ = nullptr;  // the sink last opened (owned by the test)
};

enum class Impl { kDirectory, kSealing };

Entry MakeEntry(EntryType type, std::string path, std::string link_target = "") {
  Entry e;
  e.type = type;
  e.path = std::move(path);
  e.mode = type == EntryType::kDirectory ? 0755 : 0644;
  e.link_target = std::move(link_target);
  return e;
}

struct Item {
  Entry entry;
  std::string content;
};

Item Dir(std::string path) {
  return {MakeEntry(EntryType::kDirectory, std::move(path)), ""};
}
Item File(std::string path, std::string content) {
  Item i{MakeEntry(EntryType::kRegular, std::move(path)), std::move(content)};
  i.entry.size = i.content.size();
  return i;
}

class ImageSinkConformanceTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    if (GetParam() == Impl::kDirectory) {
      probe_ = std::make_unique<DirSinkProbe>();
    } else {
      probe_ = std::make_unique<SealingSinkProbe>();
    }
    auto sink = probe_->Open();
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = std::move(*sink);
  }

  // Layer 0 and layer 1 of the test image: files, a symlink, a hard link, then an overwrite, a
  // whiteout and an opaque directory on top.
  std::vector<Item> Layer0() {
    return {Dir("etc"),
            File("etc/a", "one"),
            File("etc/b", "bee"),
            File("etc/gone", "bye"),
            {MakeEntry(EntryType::kSymlink, "etc/l", "a"), ""},
            {MakeEntry(EntryType::kHardLink, "etc/h", "etc/b"), ""},
            Dir("opt"),
            File("opt/x", "x")};
  }
  std::vector<Item> Layer1() {
    return {File("etc/a", "two"),
            {MakeEntry(EntryType::kWhiteout, "etc/gone"), ""},
            {MakeEntry(EntryType::kOpaque, "opt"), ""},
            File("opt/y", "y")};
  }
  const Digest d0_ = DigestOf("conformance layer 0");
  const Digest d1_ = DigestOf("conformance layer 1");

  LayerInfo Info(std::size_t index) {
    const Digest& d = index == 0 ? d0_ : d1_;
    return LayerInfo{.index = index,
                     .count = 2,
                     .descriptor = {.media_type = "application/vnd.oci.image.layer.v1.tar",
                                    .digest = d,
                                    .size = 0,
                                    .annotations = {}},
                     .diff_id = d};
  }

  // Opens layer `index`, adds `items` (checking each regular file's content was consumed).
  Result<std::unique_ptr<LayerSink>> Fill(std::size_t index, const std::vector<Item>& items) {
    SR_ASSIGN_OR_RETURN(auto layer, sink_->OpenLayer(Info(index)));
    for (const Item& item : items) {
      StringReader reader(item.content);
      const bool regular = item.entry.type == EntryType::kRegular;
      SR_RETURN_IF_ERROR(layer->AddEntry(item.entry, regular ? &reader : nullptr));
      EXPECT_TRUE(!regular || reader.at_end()) << item.entry.path << ": content not consumed";
    }
    return layer;
  }

  Status CommitBoth() {
    SR_ASSIGN_OR_RETURN(auto l0, Fill(0, Layer0()));
    SR_RETURN_IF_ERROR(l0->Commit());
    SR_ASSIGN_OR_RETURN(auto l1, Fill(1, Layer1()));
    return l1->Commit();
  }

  ImageInfo Image() {
    const std::string config = R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},)"
                               R"("rootfs":{"type":"layers","diff_ids":[")" +
                               d0_.str() + R"(",")" + d1_.str() + R"("]}})";
    return ImageInfo{.reference = "conformance",
                     .manifest_digest = DigestOf("manifest"),
                     .manifest_json = "{}",
                     .config_digest = DigestOf(config),
                     .config_json = config,
                     .diff_ids = {d0_, d1_}};
  }

  std::unique_ptr<Probe> probe_;
  std::unique_ptr<ImageSink> sink_;
};

TEST_P(ImageSinkConformanceTest, FinishedImageHasTheLayersAppliedInOrder) {
  ASSERT_TRUE(CommitBoth().ok());
  Status finished = sink_->Finish(Image());
  ASSERT_TRUE(finished.ok()) << finished.ToString();
  EXPECT_TRUE(probe_->AnyImageVisible());
  EXPECT_EQ(*probe_->ReadFile("etc/a"), "two");  // the upper layer's file replaces the lower's
  EXPECT_EQ(*probe_->ReadFile("etc/b"), "bee");
  EXPECT_EQ(*probe_->ReadFile("etc/h"), "bee");  // the hard link reads as its target
  EXPECT_EQ(*probe_->ReadLink("etc/l"), "a");    // never resolved
  EXPECT_FALSE(probe_->Exists("etc/gone"));      // whiteout
  EXPECT_FALSE(probe_->Exists("opt/x"));         // hidden by the opaque directory
  EXPECT_EQ(*probe_->ReadFile("opt/y"), "y");
  EXPECT_TRUE(probe_->Exists("opt"));
}

TEST_P(ImageSinkConformanceTest, NothingIsVisibleBeforeFinish) {
  ASSERT_TRUE(CommitBoth().ok());
  EXPECT_FALSE(probe_->AnyImageVisible());
  ASSERT_TRUE(sink_->Finish(Image()).ok());
  EXPECT_TRUE(probe_->AnyImageVisible());
}

TEST_P(ImageSinkConformanceTest, AbortAfterCommittedLayersLeavesNoImageAndARetrySucceeds) {
  auto l0 = Fill(0, Layer0());
  ASSERT_TRUE(l0.ok()) << l0.status().ToString();
  ASSERT_TRUE((*l0)->Commit().ok());
  sink_->Abort(DataLoss("layer 1: digest mismatch"));
  sink_.reset();
  EXPECT_FALSE(probe_->AnyImageVisible());

  auto retry = probe_->Open();
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  sink_ = std::move(*retry);
  ASSERT_TRUE(CommitBoth().ok());
  ASSERT_TRUE(sink_->Finish(Image()).ok());
  EXPECT_EQ(*probe_->ReadFile("etc/a"), "two");
}

TEST_P(ImageSinkConformanceTest, AbortedLayerThenAbortedImageLeavesNothingVisible) {
  auto l0 = Fill(0, Layer0());
  ASSERT_TRUE(l0.ok()) << l0.status().ToString();
  (*l0)->Abort(DataLoss("DiffID mismatch"));
  l0->reset();
  sink_->Abort(DataLoss("DiffID mismatch"));
  sink_.reset();
  EXPECT_FALSE(probe_->AnyImageVisible());
}

TEST_P(ImageSinkConformanceTest, HasLayerIsFalseForALayerItNeverSaw) {
  EXPECT_FALSE(sink_->HasLayer(DigestOf("never seen")));
}

// A sink that keeps its layers apart (LayersIndependent) takes them in any order and at the
// same time (the pull seals two at once); the image is the same. The directory sink applies
// each layer onto the ones below, so it must not claim to.
TEST_P(ImageSinkConformanceTest, IndependentLayersMayBeWrittenAtOnceInAnyOrder) {
  if (!sink_->LayersIndependent()) {
    EXPECT_EQ(GetParam(), Impl::kDirectory);
    return;
  }
  Status upper, lower;
  {
    std::jthread top([&] {
      auto l1 = Fill(1, Layer1());
      upper = l1.ok() ? (*l1)->Commit() : l1.status();
    });
    auto l0 = Fill(0, Layer0());
    lower = l0.ok() ? (*l0)->Commit() : l0.status();
  }
  ASSERT_TRUE(upper.ok()) << upper.ToString();
  ASSERT_TRUE(lower.ok()) << lower.ToString();
  ASSERT_TRUE(sink_->Finish(Image()).ok());
  EXPECT_EQ(*probe_->ReadFile("etc/a"), "two");
  EXPECT_FALSE(probe_->Exists("etc/gone"));
  EXPECT_FALSE(probe_->Exists("opt/x"));
  EXPECT_EQ(*probe_->ReadFile("opt/y"), "y");
}

INSTANTIATE_TEST_SUITE_P(Implementations, ImageSinkConformanceTest,
                         ::testing::Values(Impl::kDirectory, Impl::kSealing),
                         [](const ::testing::TestParamInfo<Impl>& param_info) {
                           return param_info.param == Impl::kDirectory ? std::string("DirSink")
                                                                       : std::string("SealingSink");
                         });

}  // namespace
}  // namespace sealroot::image
