// `sealroot unpack` against `umoci unpack` (the oracle) on images built with umoci/skopeo: the
// trees must be equal (type, mode, uid, gid, size, content hash, link target, xattrs, hard-link
// groups, file mtimes) and so must the config.json process (args, env, cwd, user).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "image/dir_sink.h"
#include "image/pull.h"
#include "tests/support/images.h"
#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

// The images are built once for the whole binary.
class UnpackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    images_ = new TempDir();
    busybox_ = BuildBusyboxImage(*images_ / "layout");
    rich_ = BuildFeatureRichImage(*images_ / "layout");
  }
  static void TearDownTestSuite() {
    delete images_;
    images_ = nullptr;
  }

  static CommandResult Sealroot(std::vector<std::string> args) {
    args.insert(args.begin(), BuiltProgram("sealroot"));
    args.push_back("--insecure-policy");
    return testing::Run(args);
  }

  static nlohmann::json Process(const std::string& bundle) {
    std::ifstream in(bundle + "/config.json");
    nlohmann::json spec = nlohmann::json::parse(in);
    return spec["process"];
  }

  // Unpacks `ref` through the library pipeline into the directory sink and `oracle_ref` with
  // umoci; compares the trees and the config.json processes.
  void ExpectSameAsUmoci(const std::string& ref, const std::string& oracle_ref,
                         const std::string& platform = "", bool rootless = false) {
    TempDir work;
    UmociUnpack(oracle_ref, work / "umoci", rootless);
    auto parsed = image::Reference::Parse(ref);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    image::PullOptions options;
    if (!platform.empty()) options.platform = *image::Platform::Parse(platform);
    auto sink = image::OpenDirSink(work / "sealroot", {.rootless = rootless});
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    Status s = image::PullAndUnpack(*parsed, options, **sink).status();
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::string diff = DiffTrees(ScanTree(work / "umoci/rootfs"), ScanTree(work / "sealroot/rootfs"));
    EXPECT_EQ(diff, "") << "tree differs from umoci's:\n" << diff;
    nlohmann::json want = Process(work / "umoci"), got = Process(work / "sealroot");
    for (const char* key : {"args", "env", "cwd", "user"}) EXPECT_EQ(got[key], want[key]) << key;
  }

  static TempDir* images_;
  static std::string busybox_, rich_;
};

TempDir* UnpackTest::images_ = nullptr;
std::string UnpackTest::busybox_, UnpackTest::rich_;

TEST_F(UnpackTest, BusyboxEqualsUmociAndRuns) {
  ExpectSameAsUmoci(busybox_, busybox_);
  TempDir work;
  ASSERT_TRUE(Sealroot({"unpack", busybox_, work / "b"}).ok());
  auto r = testing::Run({"chroot", work / "b/rootfs", "/bin/busybox", "echo", "ok"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

TEST_F(UnpackTest, FeatureRichLayersEqualUmoci) {
  ExpectSameAsUmoci(rich_, rich_);
  // Spot checks that the image exercises what it claims (so an empty tree cannot pass).
  TempDir work;
  ASSERT_TRUE(Sealroot({"unpack", rich_, work / "b"}).ok());
  Tree t = ScanTree(work / "b/rootfs");
  EXPECT_FALSE(t.count("data/gone.txt"));
  EXPECT_FALSE(t.count("opq/lower1.txt"));
  EXPECT_TRUE(t.count("opq/new.txt"));
  EXPECT_EQ(t["modes/suid"].mode, 04750u);
  EXPECT_EQ(t["modes/suid"].uid, 1000u);
  EXPECT_EQ(t["other/hard2"].hardlink_group, "links/hard1");
  EXPECT_EQ(t["dev/null"].type, 'c');
  EXPECT_TRUE(t.count("long/" + std::string(200, 'n')));
  auto xattrs = t["data/a.txt"].xattrs;
  EXPECT_NE(std::find(xattrs.begin(), xattrs.end(),
                      std::make_pair(std::string("user.note"), std::string("layer2"))),
            xattrs.end());
  EXPECT_EQ(Process(work / "b")["user"]["uid"], 1000);
}

// umoci 0.4's `insert` writes layers whose tar ends right after the last file's data: no block
// padding, no end-of-archive blocks. umoci (Go's archive/tar) unpacks them; so must we.
TEST_F(UnpackTest, UmociInsertLayersWithoutTarPaddingEqualUmoci) {
  TempDir work;
  std::string ref = NewLayoutImage(work / "layout", "insert");
  WriteTar(work / "base.tar",
           {{.type = TarEntry::kDir, .name = "add", .mode = 0755}, {.name = "add/old.txt", .data = "lower"}});
  AddLayer(ref, work / "base.tar");
  ConfigureImage(ref, {"--config.entrypoint=/bin/sh"});
  std::filesystem::create_directories(work / "src/d");
  std::ofstream(work / "src/d/f") << "hello\n";
  std::ofstream(work / "src/g") << "abc";  // 3 bytes: the stream ends 509 bytes short of a block
  std::string layout = work / "layout";
  for (std::vector<std::string> flags : {std::vector<std::string>{}, {"--opaque"}}) {
    std::vector<std::string> argv = {"umoci", "insert"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), {"--image", layout + ":insert", work / "src", "/add"});
    auto r = testing::Run(argv);
    ASSERT_TRUE(r.ok()) << r.err;
  }
  auto cut = Shell("for b in " + layout +
                   "/blobs/sha256/*; do gzip -t $b 2>/dev/null && "
                   "[ $(( $(zcat $b | wc -c) % 512 )) -ne 0 ] && echo $b; done");
  ASSERT_NE(cut.out, "") << "umoci wrote padded layers; the test shows nothing";
  ExpectSameAsUmoci(ref, ref);
  TempDir bundle;
  ASSERT_TRUE(Sealroot({"unpack", ref, bundle / "b"}).ok());
  Tree t = ScanTree(bundle / "b/rootfs");
  EXPECT_FALSE(t.count("add/old.txt"));  // the opaque insert hid the lower file
  EXPECT_EQ(t["add/g"].size, 3u);
}

TEST_F(UnpackTest, RootlessEqualsUmociRootless) {
  ExpectSameAsUmoci(rich_, rich_, "", true);
}

TEST_F(UnpackTest, ZstdTwinEqualsUmociOfGzipOriginal) {
  TempDir work;
  std::string twin = MakeZstdTwin(rich_, work / "zstd", "rich");
  std::ifstream index(work / "zstd/index.json");
  std::string manifest_dir = work / "zstd/blobs/sha256";
  auto r = Shell("grep -l 'tar+zstd' " + manifest_dir + "/*");
  ASSERT_TRUE(r.ok()) << "skopeo did not produce zstd layers";
  ExpectSameAsUmoci(twin, rich_);
}

TEST_F(UnpackTest, OciArchiveEqualsUmoci) {
  TempDir work;
  std::string archive = work / "rich.tar";
  auto r = testing::Run(
      {"skopeo", "--insecure-policy", "copy", "--quiet", rich_, "oci-archive:" + archive + ":rich"});
  ASSERT_TRUE(r.ok()) << r.err;
  ExpectSameAsUmoci("oci-archive:" + archive + ":rich", rich_);
}

TEST_F(UnpackTest, MultiPlatformIndexPicksThePlatform) {
  TempDir work;
  std::string multi = BuildMultiPlatformImage(work / "layout");
  ExpectSameAsUmoci(multi, "oci:" + work / "layout" + ":multi-amd64", "linux/amd64");
  ExpectSameAsUmoci(multi, "oci:" + work / "layout" + ":multi-arm64", "linux/arm64");
  auto r = Sealroot({"unpack", multi, work / "none", "--platform", "linux/s390x"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("linux/arm64/v8"), std::string::npos) << r.err;
}

TEST_F(UnpackTest, LibraryPipelineIntoDirSink) {
  TempDir work;
  auto ref = image::Reference::Parse(busybox_);
  ASSERT_TRUE(ref.ok());
  auto sink = image::OpenDirSink(work / "bundle", {});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  std::vector<image::ProgressEvent> events;
  image::PullOptions options;
  options.progress = [&](const image::ProgressEvent& e) { events.push_back(e); };
  Status s = image::PullAndUnpack(*ref, options, **sink).status();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(std::filesystem::exists(work / "bundle/rootfs/bin/busybox"));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().phase, image::ProgressEvent::Phase::kFinished);
}

TEST_F(UnpackTest, SealIntoStorePrintsRootHash) {
  TempDir work;
  auto r = Sealroot({"unpack", busybox_, "--seal", work / "store", "--key-file", work / "key", "--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  auto j = nlohmann::json::parse(r.out);
  std::string hash = j["root_hash"];
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos) << hash;
  EXPECT_EQ(std::filesystem::status(work / "key").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(UnpackTest, InspectShowsLayersAndConfig) {
  auto r = Sealroot({"inspect", rich_, "--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layers"].size(), 3u);
  EXPECT_EQ(j["config"]["config"]["User"], "app");
  EXPECT_EQ(j["trust"]["policy"]["accepted"], true);
  auto text = Sealroot({"inspect", rich_});
  EXPECT_NE(text.out.find("Layers:"), std::string::npos);
  EXPECT_NE(text.out.find("signatures: none"), std::string::npos);
}

TEST_F(UnpackTest, InspectReportsAPolicyRejectionInsteadOfFailing) {
  // Under a policy that rejects every image, inspect still shows the image and says why the
  // policy refuses it, where unpack stops.
  TempDir home, work;
  std::filesystem::create_directories(home / ".config/containers");
  std::ofstream(home / ".config/containers/policy.json") << R"({"default":[{"type":"reject"}]})";
  CommandOptions o{.env = {{"HOME", home.path()}}};
  auto r = testing::Run({BuiltProgram("sealroot"), "inspect", rich_, "--json"}, o);
  ASSERT_TRUE(r.ok()) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layers"].size(), 3u);
  EXPECT_EQ(j["trust"]["policy"]["accepted"], false);
  auto unpack = testing::Run({BuiltProgram("sealroot"), "unpack", rich_, work / "bundle"}, o);
  EXPECT_EQ(unpack.exit_code, 3) << unpack.err;
  EXPECT_FALSE(std::filesystem::exists(work / "bundle"));
}

TEST_F(UnpackTest, PullToLayoutThenUnpackEqualsUmoci) {
  TempDir work;
  auto r = Sealroot({"pull", rich_, "oci:" + work / "copy" + ":copied"});
  ASSERT_TRUE(r.ok()) << r.err;
  ExpectSameAsUmoci("oci:" + work / "copy" + ":copied", "oci:" + work / "copy" + ":copied");
}

}  // namespace
}  // namespace sealroot::testing
