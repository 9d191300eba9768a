// The bad-input suite: each hostile or broken image gets a clear error naming the cause, and
// nothing is left at DEST (nor a staging directory next to it). Named after the attack.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "image/dir_sink.h"
#include "image/pull.h"
#include "tests/support/images.h"
#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

namespace fs = std::filesystem;

class BadInputTest : public ::testing::Test {
 protected:
  // A one-layer image whose layer is exactly `entries`.
  std::string ImageWithLayer(const std::vector<TarEntry>& entries) {
    std::string ref = NewLayoutImage(work_ / "layout", "t" + std::to_string(++images_));
    WriteTar(work_ / "layer.tar", entries);
    AddLayer(ref, work_ / "layer.tar");
    return ref;
  }

  Status Unpack(const std::string& ref, const image::PullOptions& options = {}) {
    auto parsed = image::Reference::Parse(ref);
    if (!parsed.ok()) return parsed.status();
    auto sink = image::OpenDirSink(dest_, {});
    if (!sink.ok()) return sink.status();
    return image::PullAndUnpack(*parsed, options, **sink).status();
  }

  // The failure left nothing that looks like a bundle, and no staging.
  void ExpectNothingLeft() {
    EXPECT_FALSE(fs::exists(dest_)) << dest_ << " exists after a failed unpack";
    for (const auto& e : fs::directory_iterator(work_.path())) {
      EXPECT_EQ(e.path().filename().string().find(".bundle.sealroot-"), std::string::npos) << e.path();
    }
  }

  static TarEntry File(std::string name, std::string data = "x\n") {
    TarEntry e;
    e.name = std::move(name);
    e.data = std::move(data);
    return e;
  }
  static TarEntry Link(TarEntry::Type type, std::string name, std::string target) {
    TarEntry e;
    e.type = type;
    e.name = std::move(name);
    e.link = std::move(target);
    return e;
  }

  // The blob file of the image's only layer.
  std::string LayerBlob(const std::string& ref) {
    auto dir = work_ / "layout";
    nlohmann::json index = nlohmann::json::parse(std::ifstream(dir + "/index.json"));
    std::string tag = ref.substr(ref.rfind(':') + 1);
    for (const auto& m : index["manifests"]) {
      if (m["annotations"]["org.opencontainers.image.ref.name"] != tag) continue;
      std::string hex = m["digest"].get<std::string>().substr(7);
      nlohmann::json manifest = nlohmann::json::parse(std::ifstream(dir + "/blobs/sha256/" + hex));
      return dir + "/blobs/sha256/" + manifest["layers"][0]["digest"].get<std::string>().substr(7);
    }
    ADD_FAILURE() << "no tag " << tag;
    return "";
  }

  TempDir work_;
  std::string dest_ = work_ / "bundle";
  int images_ = 0;
};

TEST_F(BadInputTest, TamperedBlobIsDigestMismatch) {
  std::string ref = ImageWithLayer({File("a", std::string(100000, 'a'))});
  std::string blob = LayerBlob(ref);
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(200);
  f.put('\x42');
  f.close();
  Status s = Unpack(ref);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("layer 1/1"), std::string::npos) << s.message();
  ExpectNothingLeft();
}

TEST_F(BadInputTest, TruncatedBlobIsRefused) {
  std::string ref = ImageWithLayer({File("a", std::string(100000, 'a'))});
  std::string blob = LayerBlob(ref);
  fs::resize_file(blob, fs::file_size(blob) / 2);
  Status s = Unpack(ref);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  ExpectNothingLeft();
}

// A layer tar (digest and DiffID intact) that ends inside an entry's data or inside a header:
// umoci refuses it, and so do we. Only a tar ending in the last entry's padding is accepted.
TEST_F(BadInputTest, TarCutInsideDataOrHeaderIsRefused) {
  for (bool in_data : {true, false}) {
    std::string ref = NewLayoutImage(work_ / "layout", in_data ? "in-data" : "in-header");
    WriteTar(work_ / "cut.tar", {File("a", std::string(1000, 'a')), File("b")});
    auto headers = Shell(
        "python3 -c \"import tarfile,sys; t=tarfile.open(sys.argv[1]); "
        "print(' '.join(str(m.offset) for m in t.getmembers()))\" " +
        work_ / "cut.tar");
    ASSERT_TRUE(headers.ok()) << headers.err;
    std::uint64_t b_offset = std::stoull(headers.out.substr(headers.out.find(' ') + 1));
    // a's 1000 bytes of data end 24 bytes before b's header (PAX headers included).
    fs::resize_file(work_ / "cut.tar", in_data ? b_offset - 24 - 300 : b_offset + 100);
    AddLayer(ref, work_ / "cut.tar");
    Status s = Unpack(ref);
    ASSERT_FALSE(s.ok()) << (in_data ? "cut in data" : "cut in header");
    EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
    ExpectNothingLeft();
  }
}

TEST_F(BadInputTest, ManifestNamingMalformedDigestIsRefused) {
  std::string ref = ImageWithLayer({File("a")});
  auto dir = work_ / "layout";
  nlohmann::json index = nlohmann::json::parse(std::ifstream(dir + "/index.json"));
  std::string hex = index["manifests"][0]["digest"].get<std::string>().substr(7);
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(dir + "/blobs/sha256/" + hex));
  manifest["layers"][0]["digest"] = "sha256:../../../../etc/passwd";
  std::string body = manifest.dump();
  auto sum = Shell("printf '%s' '" + body + "' | sha256sum");
  std::string new_hex = sum.out.substr(0, 64);
  std::ofstream(dir + "/blobs/sha256/" + new_hex) << body;
  index["manifests"][0]["digest"] = "sha256:" + new_hex;
  index["manifests"][0]["size"] = body.size();
  std::ofstream(dir + "/index.json") << index.dump();
  Status s = Unpack(ref);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("malformed digest"), std::string::npos) << s.message();
  ExpectNothingLeft();
}

TEST_F(BadInputTest, DotDotEntryIsRefused) {
  Status s = Unpack(ImageWithLayer({File("../../escaped")}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'..' component"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(work_ / "escaped"));
  ExpectNothingLeft();
}

TEST_F(BadInputTest, AbsolutePathEntryIsRefused) {
  std::string target = work_ / "absolute-target";
  Status s = Unpack(ImageWithLayer({File(target)}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("absolute path"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(target));
  ExpectNothingLeft();
}

TEST_F(BadInputTest, WriteThroughSymlinkStaysInsideTheRoot) {
  // evil -> the host directory; evil/canary must land inside the root, never on the host.
  std::string host_dir = work_ / "host";
  fs::create_directories(host_dir);
  Status s = Unpack(ImageWithLayer({Link(TarEntry::kSymlink, "evil", host_dir), File("evil/canary")}));
  EXPECT_FALSE(fs::exists(host_dir + "/canary")) << "wrote through a symlink onto the host";
  // The link's target does not exist inside the root: refused rather than created.
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not exist in the root"), std::string::npos) << s.message();
  ExpectNothingLeft();
}

TEST_F(BadInputTest, WriteThroughRelativeSymlinkUpIsConfined) {
  // up -> ../../../.. resolves to the root itself (RESOLVE_IN_ROOT), so up/canary is /canary.
  fs::remove(work_ / "canary");
  Status s = Unpack(ImageWithLayer({Link(TarEntry::kSymlink, "up", "../../../.."), File("up/canary")}));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(fs::exists(work_ / "canary"));
  EXPECT_TRUE(fs::exists(dest_ + "/rootfs/canary"));
}

TEST_F(BadInputTest, HardLinkOutsideTheRootIsRefused) {
  Status s = Unpack(ImageWithLayer({Link(TarEntry::kHardLink, "passwd", "../../../../etc/passwd")}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'..' component"), std::string::npos) << s.message();
  ExpectNothingLeft();
}

TEST_F(BadInputTest, HardLinkThroughSymlinkLinksTheSymlinkNotTheHostFile) {
  Status s = Unpack(
      ImageWithLayer({Link(TarEntry::kSymlink, "s", "/etc/passwd"), Link(TarEntry::kHardLink, "h", "s")}));
  ASSERT_TRUE(s.ok()) << s.ToString();
  struct stat host {
  }, linked{};
  ASSERT_EQ(::stat("/etc/passwd", &host), 0);
  ASSERT_EQ(::lstat((dest_ + "/rootfs/h").c_str(), &linked), 0);
  EXPECT_TRUE(S_ISLNK(linked.st_mode));
  EXPECT_NE(host.st_ino, linked.st_ino);
}

TEST_F(BadInputTest, DecompressionBombBeyondTheLimit) {
  std::string ref = ImageWithLayer({File("zeros", std::string(16 << 20, '\0'))});
  image::PullOptions options;
  options.max_layer_size = 1 << 20;
  Status s = Unpack(ref, options);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("decompression bomb"), std::string::npos);
  EXPECT_NE(s.message().find("max_layer_size = 1048576"), std::string::npos) << s.ToString();
  ExpectNothingLeft();
}

// 300 MB of zeros gzip to ~300 KB: with the default limits (no option set) the ratio stops the
// layer long before its file is written out, and nothing is left.
TEST_F(BadInputTest, DecompressionBombHitsTheDefaultRatioLimit) {
  std::string ref = NewLayoutImage(work_ / "layout", "bomb");
  AddZerosLayer(ref, work_.path(), 300u << 20);
  ASSERT_LT(std::filesystem::file_size(LayerBlob(ref)), 1u << 20);
  Status s = Unpack(ref);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("max_decompression_ratio = 100"), std::string::npos) << s.ToString();
  ExpectNothingLeft();
}

TEST_F(BadInputTest, ImageSizeLimitCountsEveryLayer) {
  std::string ref = ImageWithLayer({File("a", std::string(600000, 'a'))});
  WriteTar(work_ / "second.tar", {File("b", std::string(600000, 'b'))});
  AddLayer(ref, work_ / "second.tar");
  image::PullOptions options;
  options.max_image_size = 1000000;  // each layer fits, both do not
  Status s = Unpack(ref, options);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("max_image_size"), std::string::npos) << s.ToString();
  ExpectNothingLeft();
}

// 129 layers (the default limit is 128) are refused before any layer is read.
TEST_F(BadInputTest, TooManyLayersAreRefused) {
  std::string one = ImageWithLayer({File("a")});
  std::string many = RepeatLastLayer(one, "many", 129);
  Status s = Unpack(many);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("129 layers: exceeds the limit max_layers = 128"), std::string::npos)
      << s.ToString();
  ExpectNothingLeft();
  // 128 are fine.
  EXPECT_TRUE(Unpack(RepeatLastLayer(one, "enough", 128)).ok());
}

TEST_F(BadInputTest, ExistingNonEmptyDestIsRefused) {
  fs::create_directories(dest_);
  std::ofstream(dest_ + "/precious") << "keep me";
  Status s = Unpack(ImageWithLayer({File("a")}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_TRUE(fs::exists(dest_ + "/precious"));
}

TEST_F(BadInputTest, NonDirectoryRootEntryIsRefused) {  // umoci CVE-2021-29136
  Status s = Unpack(ImageWithLayer({Link(TarEntry::kSymlink, "./", "/etc")}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("root must be a directory"), std::string::npos) << s.message();
  ExpectNothingLeft();
}

TEST_F(BadInputTest, DiffIdMismatchIsRefused) {
  std::string ref = ImageWithLayer({File("a")});
  auto dir = work_ / "layout";
  // Rewrite the config's diff_id (and the chain above it) so only the DiffID check can fail.
  nlohmann::json index = nlohmann::json::parse(std::ifstream(dir + "/index.json"));
  std::string mhex = index["manifests"][0]["digest"].get<std::string>().substr(7);
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(dir + "/blobs/sha256/" + mhex));
  std::string chex = manifest["config"]["digest"].get<std::string>().substr(7);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/blobs/sha256/" + chex));
  config["rootfs"]["diff_ids"][0] = "sha256:" + std::string(64, '0');
  auto put = [&](const std::string& body) {
    std::string hex = Shell("printf '%s' '" + body + "' | sha256sum").out.substr(0, 64);
    std::ofstream(dir + "/blobs/sha256/" + hex) << body;
    return hex;
  };
  std::string cbody = config.dump();
  manifest["config"]["digest"] = "sha256:" + put(cbody);
  manifest["config"]["size"] = cbody.size();
  std::string mbody = manifest.dump();
  index["manifests"][0]["digest"] = "sha256:" + put(mbody);
  index["manifests"][0]["size"] = mbody.size();
  std::ofstream(dir + "/index.json") << index.dump();
  Status s = Unpack(ref);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("DiffID: digest mismatch"), std::string::npos) << s.message();
  ExpectNothingLeft();
}

}  // namespace
}  // namespace sealroot::testing
