// The image -> sealed store adapter (sealing/): key files and the ImageSink contract.
#include "sealing/sealing.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"
#include "fusefs/sealed_tree.h"
#include "image/pull.h"
#include "tests/fusefs/sealfs_fixture.h"
#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/string_reader.h"

namespace sealroot::sealing {
namespace {

using sealroot::testing::TempDir;

using sealroot::testing::StringReader;

image::Digest DigestOf(const std::string& s) {
  return image::Digest::FromSha256(Sha256Of(s));
}

image::Entry MakeEntry(image::EntryType type, std::string path, std::uint64_t size = 0) {
  image::Entry e;
  e.type = type;
  e.path = std::move(path);
  e.mode = 0644;
  e.size = size;
  return e;
}

TEST(SealingKeyTest, MissingKeyFileIsCreatedWithMode0600AndReloaded) {
  TempDir tmp;
  auto key = LoadOrCreateKey(tmp / "key", std::nullopt);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->size(), 32u);
  struct stat st {};
  ASSERT_EQ(stat((tmp / "key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto again = LoadOrCreateKey(tmp / "key", std::nullopt);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*key == *again);
}

TEST(SealingKeyTest, KeyFromFdAcceptsHex) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string hex(64, 'a');
  ASSERT_EQ(write(fds[1], (hex + "\n").data(), 65), 65);
  close(fds[1]);
  auto key = LoadOrCreateKey(std::nullopt, fds[0]);
  close(fds[0]);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->data()[0], 0xaa);
}

TEST(SealingKeyTest, MalformedKeyFileIsRefused) {
  TempDir tmp;
  std::ofstream(tmp / "short") << "0123456789";
  ASSERT_EQ(chmod((tmp / "short").c_str(), 0600), 0);
  EXPECT_EQ(LoadOrCreateKey(tmp / "short", std::nullopt).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(LoadOrCreateKey(std::nullopt, std::nullopt).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(LoadOrCreateKey(tmp / "short", 0).status().code(), Code::kInvalidArgument);
}

TEST(SealingKeyTest, KeyFileOthersCanReadIsRefused) {
  TempDir tmp;
  std::ofstream(tmp / "key") << std::string(64, 'a');
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ASSERT_EQ(chmod((tmp / "key").c_str(), mode), 0);
    Result<SecretBytes> key = LoadOrCreateKey(tmp / "key", std::nullopt);
    EXPECT_EQ(key.status().code(), Code::kPermissionDenied) << std::oct << mode;
    EXPECT_NE(key.status().message().find("chmod 600"), std::string::npos) << key.status().message();
  }
  ASSERT_EQ(chmod((tmp / "key").c_str(), 0600), 0);
  EXPECT_TRUE(LoadOrCreateKey(tmp / "key", std::nullopt).ok());
}

TEST(SealingKeyTest, MissingKeyFileIsCreatedOnlyForANewStore) {
  TempDir tmp;
  // A new store: the key is created.
  ASSERT_TRUE(LoadOrCreateStoreKey(tmp / "store", tmp / "key", std::nullopt).ok());
  // A store bound to a key: a key file that does not exist is a mistake.
  auto sink = OpenSealingSink({tmp / "store", *LoadOrCreateKey(tmp / "key", std::nullopt)});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  auto typo = LoadOrCreateStoreKey(tmp / "store", tmp / "kye", std::nullopt);
  EXPECT_EQ(typo.status().code(), Code::kNotFound);
  EXPECT_NE(typo.status().message().find("already has a key"), std::string::npos) << typo.status().message();
  EXPECT_FALSE(std::filesystem::exists(tmp / "kye"));
}

TEST(SealingSinkTest, SealsLayersAndAppliesWhiteoutsAtFinish) {
  TempDir tmp;
  SecretBytes key = SecretBytes::Random(32);
  auto sink = OpenSealingSink({tmp / "store", key.Clone()});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  image::Digest d1 = DigestOf("layer1"), d2 = DigestOf("layer2");
  auto add_layer = [&](const image::Digest& diff, std::size_t index,
                       const std::vector<std::pair<image::Entry, std::string>>& entries) {
    image::LayerInfo info{.index = index,
                          .count = 2,
                          .descriptor = {.media_type = "application/vnd.oci.image.layer.v1.tar",
                                         .digest = diff,
                                         .size = 0,
                                         .annotations = {}},
                          .diff_id = diff};
    auto layer = (*sink)->OpenLayer(info);
    ASSERT_TRUE(layer.ok()) << layer.status().ToString();
    for (const auto& [entry, content] : entries) {
      StringReader reader(content);
      Status s = (*layer)->AddEntry(entry, entry.type == image::EntryType::kRegular ? &reader : nullptr);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    ASSERT_TRUE((*layer)->Commit().ok());
  };
  image::Entry file = MakeEntry(image::EntryType::kRegular, "etc/os-release", 5);
  image::Entry gone = MakeEntry(image::EntryType::kRegular, "etc/gone", 3);
  image::Entry wh = MakeEntry(image::EntryType::kWhiteout, "etc/gone");
  add_layer(d1, 0, {{file, "hello"}, {gone, "bye"}});
  add_layer(d2, 1, {{wh, ""}});
  EXPECT_TRUE((*sink)->HasLayer(d1));
  EXPECT_FALSE((*sink)->HasLayer(DigestOf("unknown")));
  image::ImageInfo info{.reference = "test",
                        .manifest_digest = DigestOf("manifest"),
                        .manifest_json = "{}",
                        .config_digest = DigestOf("config"),
                        .config_json = "{\"config\":{}}",
                        .diff_ids = {d1, d2}};
  ASSERT_TRUE((*sink)->Finish(info).ok());
  std::string root_hex = fusefs::HashHex((*sink)->root_hash());
  ASSERT_TRUE(IsLowerHex(root_hex, 64));
  EXPECT_TRUE(std::filesystem::exists(tmp / ("store/roots/" + root_hex)));
  // The sealed root reads back through the verifying reader, with the whiteout applied.
  auto store = fusefs::Store::Open(tmp / "store", false, fusefs::StoreLock::kNone);
  auto store_key = fusefs::StoreKey::Create(std::move(key));
  ASSERT_TRUE(store.ok() && store_key.ok());
  auto tree = fusefs::SealedTree::OpenRoot(std::move(store).value(),
                                           std::make_shared<fusefs::StoreKey>(std::move(store_key).value()),
                                           *fusefs::ParseHash(root_hex));
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(*fusefs::testing::ReadAll(**tree, "etc/os-release"), "hello");
  EXPECT_EQ(fusefs::testing::Walk(**tree, "etc/gone").status().code(), Code::kNotFound);
  EXPECT_EQ((*tree)->config_json(), "{\"config\":{}}");
}

// The store's layout names nothing public about the image: no DiffID, layer digest, config or
// manifest digest (hex) appears in any file name or file of the store after sealing it.
TEST(SealingSinkTest, StoreLayoutRevealsNoImageDigest) {
  TempDir tmp;
  std::string ref = sealroot::testing::BuildBusyboxImage(tmp / "layout");
  sealroot::testing::WriteTar(tmp / "extra.tar", {{.name = "extra", .data = "x\n"}});
  sealroot::testing::AddLayer(ref, tmp / "extra.tar");
  auto sink = OpenSealingSink({tmp / "store", SecretBytes::Random(32)});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  Status pulled = image::PullAndUnpack(*image::Reference::Parse(ref), {}, **sink).status();
  ASSERT_TRUE(pulled.ok()) << pulled.ToString();

  // Every digest the layout knows: index entries, manifest, config, layers, DiffIDs.
  auto json_at = [&](const std::string& digest) {
    std::ifstream in(tmp / ("layout/blobs/sha256/" + digest.substr(7)));
    return nlohmann::json::parse(in);
  };
  std::vector<std::string> secrets;
  nlohmann::json index = nlohmann::json::parse(std::ifstream(tmp / "layout/index.json"));
  for (const auto& m : index["manifests"]) {
    std::string manifest_digest = m["digest"];
    nlohmann::json manifest = json_at(manifest_digest);
    secrets.push_back(manifest_digest);
    secrets.push_back(manifest["config"]["digest"]);
    for (const auto& l : manifest["layers"]) secrets.push_back(l["digest"]);
    nlohmann::json config = json_at(manifest["config"]["digest"]);
    for (const auto& d : config["rootfs"]["diff_ids"]) secrets.push_back(d);
  }
  ASSERT_GE(secrets.size(), 6u);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp / "store")) {
    const std::string path = e.path().string();
    std::string bytes;
    if (e.is_regular_file()) {
      std::ifstream in(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
      ++files;
    }
    for (const std::string& digest : secrets) {
      const std::string hex = digest.substr(7);
      EXPECT_EQ(path.find(hex), std::string::npos) << path << " names " << digest;
      EXPECT_EQ(bytes.find(hex), std::string::npos) << path << " holds " << digest;
    }
  }
  EXPECT_GT(files, 10u);
}

TEST(SealingSinkTest, StoreSealedUnderAnotherKeyIsRefused) {
  TempDir tmp;
  ASSERT_TRUE(OpenSealingSink({tmp / "store", SecretBytes::Random(32)}).ok());
  auto other = OpenSealingSink({tmp / "store", SecretBytes::Random(32)});
  EXPECT_EQ(other.status().code(), Code::kUnauthenticated);
}

// Pulls into a sealing sink seal two layers at a time (image/src/pull.cc): the tests below are
// the cases that concurrency could break. (Tree equality with umoci for a layered image:
// sealfs_mount_test's MountedTreeEqualsUmociUnpack.)
class SealingPullTest : public ::testing::Test {
 protected:
  Status Pull(const std::string& ref, image::PullOptions options = {}) {
    auto sink = OpenSealingSink({tmp_ / "store", key_.Clone()});
    if (!sink.ok()) return sink.status();
    options.progress = [this](const image::ProgressEvent& e) {
      if (e.phase == image::ProgressEvent::Phase::kLayerStarted) ++started_;
      if (e.phase == image::ProgressEvent::Phase::kLayerSkipped) ++skipped_;
      if (e.phase == image::ProgressEvent::Phase::kLayerDone) ++done_;
    };
    return image::PullAndUnpack(*image::Reference::Parse(ref), options, **sink).status();
  }
  std::size_t Count(const std::string& sub) {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(tmp_ / ("store/" + sub)))
      n += e.exists() ? 1 : 0;
    return n;
  }
  // The blob files of the image's layers, bottom first ("oci:DIR:TAG").
  static std::vector<std::string> LayerBlobs(const std::string& dir, const std::string& tag) {
    auto blob = [&](const std::string& digest) {
      std::ifstream in(dir + "/blobs/sha256/" + digest.substr(7));
      return nlohmann::json::parse(in);
    };
    std::vector<std::string> files;
    std::ifstream index_file(dir + "/index.json");
    const nlohmann::json index = nlohmann::json::parse(index_file);
    for (const auto& m : index["manifests"]) {
      if (m["annotations"].value("org.opencontainers.image.ref.name", "") != tag) continue;
      const nlohmann::json manifest = blob(m["digest"]);
      for (const auto& layer : manifest["layers"])
        files.push_back(dir + "/blobs/sha256/" + layer["digest"].get<std::string>().substr(7));
    }
    return files;
  }

  TempDir tmp_;
  SecretBytes key_ = SecretBytes::Random(32);
  // Flips the byte in the middle of a blob file (again to undo it).
  static void FlipMiddleByte(const std::string& file) {
    const auto at = static_cast<std::streamoff>(std::filesystem::file_size(file) / 2);
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    const char c = static_cast<char>(f.get());
    f.seekp(at);
    f.put(static_cast<char>(~c));
  }

  std::atomic<int> started_{0}, skipped_{0}, done_{0};
};

TEST_F(SealingPullTest, ALayerRepeatedInTheImageIsSealedOnce) {
  std::string busybox = sealroot::testing::BuildBusyboxImage(tmp_ / "layout");
  Status s = Pull(sealroot::testing::RepeatLastLayer(busybox, "thrice", 3));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(started_, 1);  // not once per worker
  EXPECT_EQ(skipped_, 2);
  EXPECT_EQ(Count("layers"), 1u);
  EXPECT_EQ(Count("roots"), 1u);
}

// A bad layer among layers sealed at once: the pull fails naming it, the store gets no root,
// and once the blob is whole again the same pull succeeds.
TEST_F(SealingPullTest, ACorruptLayerAmongOthersFailsThePullNamingItAndLeavesNoRoot) {
  std::string rich = sealroot::testing::BuildFeatureRichImage(tmp_ / "layout");
  std::vector<std::string> blobs = LayerBlobs(tmp_ / "layout", "rich");
  ASSERT_EQ(blobs.size(), 3u);
  FlipMiddleByte(blobs[1]);
  Status s = Pull(rich);
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("layer 2/3"), std::string::npos) << s.ToString();
  EXPECT_EQ(Count("roots"), 0u);
  FlipMiddleByte(blobs[1]);
  s = Pull(rich);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Count("roots"), 1u);
}

// A layer that fails stops the one being sealed beside it, which would otherwise be written
// whole only to be thrown away; the error reported is the failure, not the stop.
TEST_F(SealingPullTest, AFailingLayerStopsTheLayerSealedBesideIt) {
  const std::string ref = sealroot::testing::NewLayoutImage(tmp_ / "layout", "stops");
  sealroot::testing::AddZerosLayer(ref, tmp_.path(), std::uint64_t{256} << 20);
  sealroot::testing::WriteTar(tmp_ / "small.tar", {{.name = "small", .data = "a few bytes"}});
  sealroot::testing::AddLayer(ref, tmp_ / "small.tar");
  std::vector<std::string> blobs = LayerBlobs(tmp_ / "layout", "stops");
  ASSERT_EQ(blobs.size(), 2u);
  FlipMiddleByte(blobs[1]);
  image::PullOptions options;
  options.max_decompression_ratio = 10000;  // the zeros are a layer to seal, not a bomb, here
  Status s = Pull(ref, std::move(options));
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("layer 2/2"), std::string::npos) << s.ToString();
  EXPECT_EQ(started_, 2);
  EXPECT_EQ(done_, 0);  // the layer of zeros did not run to its end
  EXPECT_EQ(Count("layers"), 0u);
  EXPECT_EQ(Count("roots"), 0u);
}

}  // namespace
}  // namespace sealroot::sealing
