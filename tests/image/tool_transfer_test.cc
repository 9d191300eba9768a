// The `sealroot` tool moving bytes, through the real binary, a loopback registry and a TCP proxy
// that throttles or cuts the link (throttle_proxy.py): the progress line on a terminal (counts
// that only grow and are true, a summary line, --quiet), the blob cache and the destination
// layout reused across runs after an interruption, and what failures are called.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace sealroot::testing {
namespace {

constexpr double kLinkRate = 3e6;  // bytes/s the throttled link allows

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The proxy, stopped with the test.
class Proxy {
 public:
  Proxy(int target_port, const std::string& log, std::vector<std::string> flags = {}) : port_(FreePort()) {
    std::vector<std::string> argv = {SourceDir() + "/tests/image/throttle_proxy.py", std::to_string(port_),
                                     std::to_string(target_port), "--log", log};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_ = std::make_unique<BackgroundProcess>(argv, log + ".out");
    if (!WaitForPort(port_)) throw std::runtime_error("the proxy did not start");
  }
  std::string Ref(const std::string& repo_tag) const {
    return "docker://127.0.0.1:" + std::to_string(port_) + "/" + repo_tag;
  }

 private:
  int port_;
  std::unique_ptr<BackgroundProcess> process_;
};

// The blob digests fetched, from the proxy's request log.
std::multiset<std::string> BlobsFetched(const std::string& log) {
  std::multiset<std::string> out;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    auto at = line.find("/blobs/sha256:");
    if (line.starts_with("GET ") && at != std::string::npos) out.insert(line.substr(at + 7, 71));
  }
  return out;
}

class ToolTransferTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    images_ = new TempDir();
    // Three layers of incompressible bytes (1.5 MB each), so the link is the bottleneck.
    image_ = NewLayoutImage(*images_ / "layout", "noise");
    std::mt19937 random(7);
    for (int i = 0; i < 3; ++i) {
      std::string data(1500000, '\0');
      for (char& c : data) c = static_cast<char>(random());
      std::string tar = *images_ / ("layer" + std::to_string(i) + ".tar");
      WriteTar(tar, {{.type = TarEntry::kFile, .name = "noise" + std::to_string(i), .data = data}});
      AddLayer(image_, tar);
    }
    registry_ = new Registry();
    registry_->Push(image_, "noise:1");
    std::string dir = *images_ / "layout";
    auto index = nlohmann::json::parse(std::ifstream(dir + "/index.json"));
    for (const auto& m : index["manifests"]) {
      if (m["annotations"].value("org.opencontainers.image.ref.name", "") != "noise") continue;
      auto manifest = nlohmann::json::parse(
          std::ifstream(dir + "/blobs/sha256/" + m["digest"].get<std::string>().substr(7)));
      for (const auto& l : manifest["layers"]) {
        layers_.push_back(l["digest"]);
        compressed_ += l["size"].get<std::uint64_t>();
      }
    }
  }
  static void TearDownTestSuite() {
    delete registry_;
    delete images_;
  }

  // Runs sealroot with its own cache and home; `tty` under script(1), so stderr is a terminal.
  CommandResult Sealroot(std::vector<std::string> args, bool tty = false) {
    std::vector<std::string> argv = {BuiltProgram("sealroot"), "--insecure-policy", "--tls-verify=false"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandOptions o{.env = {{"HOME", home_.path()}, {"XDG_CACHE_HOME", home_ / "cache"}}};
    if (!tty) return testing::Run(argv, o);
    std::string command;
    for (const std::string& a : argv) command += (command.empty() ? "" : " ") + Quote(a);
    return testing::Run({"script", "-qefc", command, "/dev/null"}, o);
  }

  // Checks the live lines: per layer, counts never shrink; some count was seen mid-way.
  static void ExpectTrueProgress(const std::string& out) {
    std::regex layer(R"(#(\d+) ([0-9.]+)/([0-9.]+) MB)");
    std::map<int, double> last;
    bool partial = false;
    std::size_t lines = 0;
    std::string segment;
    std::istringstream in(out);
    while (std::getline(in, segment, '\r')) {
      if (segment.find("layers ") == std::string::npos) continue;
      ++lines;
      for (auto it = std::sregex_iterator(segment.begin(), segment.end(), layer);
           it != std::sregex_iterator(); ++it) {
        int n = std::stoi((*it)[1]);
        double got = std::stod((*it)[2]), total = std::stod((*it)[3]);
        EXPECT_GE(got, last[n]) << "layer " << n << " went back in:\n" << segment;
        EXPECT_LE(got, total) << segment;
        partial = partial || (got > 0 && got < total);
        last[n] = got;
      }
    }
    EXPECT_GT(lines, 2u) << "no live progress line:\n" << out;
    EXPECT_TRUE(partial) << "never showed a layer mid-way:\n" << out;
  }

  // The summary line's MB fetched and MB/s.
  static std::pair<double, double> Summary(const std::string& out, int layers,
                                           const std::string& extra = "") {
    std::regex summary("sealroot: " + std::to_string(layers) + " layers" + extra +
                       R"(, ([0-9.]+) MB fetched in [0-9.]+ s(?: \(([0-9.]+) MB/s\))?)");
    std::smatch m;
    if (!std::regex_search(out, m, summary)) {
      ADD_FAILURE() << "no summary line in:\n" << out;
      return {-1, -1};
    }
    return {std::stod(m[1]), m[2].matched ? std::stod(m[2]) : 0};
  }

  TempDir home_;
  static TempDir* images_;
  static Registry* registry_;
  static std::string image_;
  static std::vector<std::string> layers_;
  static std::uint64_t compressed_;
};

TempDir* ToolTransferTest::images_ = nullptr;
Registry* ToolTransferTest::registry_ = nullptr;
std::string ToolTransferTest::image_;
std::vector<std::string> ToolTransferTest::layers_;
std::uint64_t ToolTransferTest::compressed_ = 0;

TEST_F(ToolTransferTest, ProgressOnATerminalIsTrueAndEndsWithASummary) {
  TempDir work;
  Proxy proxy(registry_->port(), work / "proxy.log", {"--rate", std::to_string(kLinkRate)});
  auto r = Sealroot({"unpack", "--no-blob-cache", proxy.Ref("noise:1"), work / "b"}, /*tty=*/true);
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  ExpectTrueProgress(r.out);
  auto [mb, rate] = Summary(r.out, 3);
  EXPECT_NEAR(mb, static_cast<double>(compressed_) / 1e6, 0.15) << "every byte counted once";
  EXPECT_LE(rate, 2 * kLinkRate / 1e6) << "the rate cannot beat the link";
  EXPECT_GT(rate, 0);

  // pull shows it too.
  r = Sealroot({"pull", "--no-blob-cache", proxy.Ref("noise:1"), "oci:" + work / "copy:x"}, true);
  ASSERT_TRUE(r.ok()) << r.out;
  ExpectTrueProgress(r.out);
  Summary(r.out, 3);

  // --quiet: neither.
  r = Sealroot({"unpack", "--quiet", "--no-blob-cache", proxy.Ref("noise:1"), work / "c"}, true);
  ASSERT_TRUE(r.ok()) << r.out;
  EXPECT_EQ(r.out.find("layers "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("sealroot: "), std::string::npos) << r.out;
}

TEST_F(ToolTransferTest, BlobCacheServesTheNextRun) {
  TempDir work;
  Proxy proxy(registry_->port(), work / "proxy.log");
  auto r = Sealroot({"unpack", proxy.Ref("noise:1"), work / "a", "--log-level", "debug"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_NE(r.err.find("fetching blob " + layers_[0]), std::string::npos)
      << "debug says what is fetched: " << r.err;
  for (const std::string& d : layers_) {
    EXPECT_TRUE(std::filesystem::exists(home_ / "cache/sealroot/blobs/sha256/" + d.substr(7))) << d;
  }
  std::size_t first = BlobsFetched(work / "proxy.log").size();
  EXPECT_EQ(first, 4u) << "three layers and the config";

  r = Sealroot({"unpack", proxy.Ref("noise:1"), work / "b", "--log-level", "debug"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_NE(r.err.find("blob cache: hit " + layers_[1]), std::string::npos) << r.err;
  EXPECT_EQ(BlobsFetched(work / "proxy.log").size(), first) << "no blob fetched again, not even the config";
  auto [mb, rate] = Summary(r.err, 3, R"( \(3 from the blob cache\))");
  EXPECT_EQ(mb, 0.0);
  std::string diff = DiffTrees(ScanTree(work / "a/rootfs"), ScanTree(work / "b/rootfs"));
  EXPECT_EQ(diff, "") << diff;

  // A cached blob that is not the blob any more is dropped and fetched again.
  std::ofstream(home_ / "cache/sealroot/blobs/sha256/" + layers_[2].substr(7)) << "garbage";
  r = Sealroot({"unpack", proxy.Ref("noise:1"), work / "c"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(BlobsFetched(work / "proxy.log").count(layers_[2]), 2u);
  EXPECT_NE(r.err.find("blob cache: dropping"), std::string::npos) << r.err;
}

TEST_F(ToolTransferTest, InterruptedUnpackResumesFromTheCache) {
  TempDir work;
  {
    // The link dies for good after a layer and a half: layer 1 is complete, layer 2 is not.
    Proxy cutting(registry_->port(), work / "cut.log", {"--cut-after", std::to_string(2300000)});
    auto r = Sealroot({"unpack", "--parallel", "1", cutting.Ref("noise:1"), work / "b"});
    ASSERT_NE(r.exit_code, 0) << r.err;
    EXPECT_FALSE(std::filesystem::exists(work / "b")) << "a half-written tree is removed";
  }
  std::string cache = home_ / "cache/sealroot/blobs/sha256/";
  EXPECT_TRUE(std::filesystem::exists(cache + layers_[0].substr(7)));
  EXPECT_FALSE(std::filesystem::exists(cache + layers_[1].substr(7)));
  for (const auto& e : std::filesystem::directory_iterator(cache)) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".tmp")) << "no partial blob left: " << e.path();
  }
  Proxy proxy(registry_->port(), work / "proxy.log");
  auto r = Sealroot({"unpack", proxy.Ref("noise:1"), work / "b"});
  ASSERT_TRUE(r.ok()) << r.err;
  auto fetched = BlobsFetched(work / "proxy.log");
  EXPECT_EQ(fetched.count(layers_[0]), 0u) << "the verified layer came from the cache";
  EXPECT_EQ(fetched.count(layers_[1]), 1u);
  EXPECT_EQ(fetched.count(layers_[2]), 1u);
  EXPECT_TRUE(std::filesystem::exists(work / "b/rootfs/noise2"));
}

TEST_F(ToolTransferTest, InterruptedPullLeavesNoIndexAndResumesFromTheLayout) {
  TempDir work;
  std::string layout = work / "copy";
  {
    Proxy cutting(registry_->port(), work / "cut.log", {"--cut-after", std::to_string(2300000)});
    auto r = Sealroot({"pull", "--no-blob-cache", cutting.Ref("noise:1"), "oci:" + layout + ":x"});
    ASSERT_NE(r.exit_code, 0) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(layout + "/index.json")) << "nothing half-made looks done";
  EXPECT_TRUE(std::filesystem::exists(layout + "/blobs/sha256/" + layers_[0].substr(7)));
  // A blob in the layout that is not what its name says is fetched again, not trusted.
  std::ofstream(layout + "/blobs/sha256/" + layers_[2].substr(7)) << "garbage";
  Proxy proxy(registry_->port(), work / "proxy.log");
  auto r = Sealroot({"pull", "--no-blob-cache", proxy.Ref("noise:1"), "oci:" + layout + ":x"});
  ASSERT_TRUE(r.ok()) << r.err;
  auto fetched = BlobsFetched(work / "proxy.log");
  EXPECT_EQ(fetched.count(layers_[0]), 0u) << "skopeo-like reuse of what the layout has";
  EXPECT_EQ(fetched.count(layers_[1]), 1u);
  EXPECT_EQ(fetched.count(layers_[2]), 1u);
  EXPECT_TRUE(std::filesystem::exists(layout + "/index.json"));
  r = Sealroot({"unpack", "oci:" + layout + ":x", work / "b"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(std::filesystem::exists(work / "b/rootfs/noise2"));
}

TEST_F(ToolTransferTest, MissingArchiveAndMissingLayoutAreBothNotFound) {
  TempDir work;
  auto archive = Sealroot({"unpack", "oci-archive:" + work / "missing.tar", work / "a"});
  auto layout = Sealroot({"unpack", "oci:" + work / "missing:x", work / "b"});
  EXPECT_EQ(archive.exit_code, 4) << archive.err;
  EXPECT_EQ(layout.exit_code, 4) << layout.err;
  EXPECT_NE(archive.err.find("No such file"), std::string::npos) << archive.err;
}

// Rewrites the first layer of the layout's only image: "crc" breaks the gzip trailer's CRC and
// renames the blob to match (so only decompression can fail); "byte" flips a byte in the middle
// and keeps the name (so the blob digest fails).
void TamperFirstLayer(const std::string& dir, const std::string& how) {
  std::string script = R"(
import hashlib, json, os, sys
d, how = sys.argv[1], sys.argv[2]
def blob(h): return os.path.join(d, "blobs/sha256", h)
def put(b):
    h = hashlib.sha256(b).hexdigest(); open(blob(h), "wb").write(b); return h
index = json.load(open(os.path.join(d, "index.json")))
m = json.load(open(blob(index["manifests"][0]["digest"][7:])))
layer = m["layers"][0]
data = bytearray(open(blob(layer["digest"][7:]), "rb").read())
if how == "crc":
    data[-8] ^= 0xff
    layer["digest"] = "sha256:" + put(bytes(data))
else:
    data[len(data) // 2] ^= 0xff
    open(blob(layer["digest"][7:]), "wb").write(bytes(data))
mb = json.dumps(m).encode()
index["manifests"][0]["digest"] = "sha256:" + put(mb)
index["manifests"][0]["size"] = len(mb)
json.dump(index, open(os.path.join(d, "index.json"), "w"))
)";
  auto r = testing::Run({"python3", "-c", script, dir, how});
  if (!r.ok()) throw std::runtime_error("tampering failed: " + r.err);
}

TEST_F(ToolTransferTest, FailuresAreCalledWhatFailed) {
  TempDir work;
  std::string busybox = BuildBusyboxImage(work / "crc");
  TamperFirstLayer(work / "crc", "crc");
  auto r = Sealroot({"unpack", busybox, work / "a"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("decompressing"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("DiffID"), std::string::npos) << "the DiffID did not fail: " << r.err;

  std::string flipped = BuildBusyboxImage(work / "byte");
  TamperFirstLayer(work / "byte", "byte");
  r = Sealroot({"unpack", flipped, work / "b"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("digest mismatch"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("DiffID"), std::string::npos) << "the blob failed, not the DiffID: " << r.err;
  EXPECT_EQ(r.err.find("decompressing"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(work / "a"));
  EXPECT_FALSE(std::filesystem::exists(work / "b"));
}

}  // namespace
}  // namespace sealroot::testing
