// The standalone `sealroot` tool as skopeo/umoci users meet it, through the real binary: where
// the signature policy comes from and what a rejection says; skopeo's flag habits (options
// before the command, --src-tls-verify, -h, inspect --raw/--config, linux/arm); usage errors
// that name what is missing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "base/crypto.h"
#include "base/encoding.h"
#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace sealroot::testing {
namespace {

constexpr std::string_view kReject = R"({"default":[{"type":"reject"}]})";
constexpr std::string_view kAccept = R"({"default":[{"type":"insecureAcceptAnything"}]})";

void WriteText(const std::string& path, std::string_view text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string Sha256Hex(const std::string& bytes) {
  auto d = Sha256Of(bytes);
  return HexEncode(std::span(d));
}

class ToolCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    images_ = new TempDir();
    busybox_ = BuildBusyboxImage(*images_ / "layout");
    multi_ = BuildMultiPlatformImage(*images_ / "layout");
  }
  static void TearDownTestSuite() {
    delete images_;
    images_ = nullptr;
  }

  // Runs sealroot with HOME set to `home` (so ~/.config/containers is the test's).
  static CommandResult Sealroot(std::vector<std::string> args, const std::string& home) {
    args.insert(args.begin(), BuiltProgram("sealroot"));
    return testing::Run(args, {.env = {{"HOME", home}}});
  }
  // The same, in a private mount namespace whose /etc/containers is `etc_containers` (so the
  // system-wide default is the test's too, whatever this machine has there).
  static CommandResult SealrootWithEtc(std::vector<std::string> args, const std::string& home,
                                       const std::string& etc_containers) {
    std::vector<std::string> argv = {"unshare",
                                     "-m",
                                     "sh",
                                     "-c",
                                     "mount --bind \"$0\" /etc/containers && shift && exec \"$@\"",
                                     etc_containers,
                                     "--",
                                     BuiltProgram("sealroot")};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, {.env = {{"HOME", home}}});
  }

  static TempDir* images_;
  static std::string busybox_, multi_;
};

TempDir* ToolCliTest::images_ = nullptr;
std::string ToolCliTest::busybox_, ToolCliTest::multi_;

TEST_F(ToolCliTest, PolicyComesFromTheUsersConfigFirst) {
  TempDir home, work;
  std::string user_policy = home / ".config/containers/policy.json";
  WriteText(user_policy, kReject);
  auto r = Sealroot({"unpack", busybox_, work / "b"}, home.path());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(user_policy), std::string::npos) << "names the policy file: " << r.err;
  EXPECT_NE(r.err.find("--policy"), std::string::npos) << "says how to change it: " << r.err;
  EXPECT_NE(r.err.find("--insecure-policy"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(work / "b"));

  WriteText(user_policy, kAccept);
  r = Sealroot({"unpack", busybox_, work / "b"}, home.path());
  EXPECT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(std::filesystem::exists(work / "b/rootfs/bin/busybox"));

  // --policy wins over the user's file.
  std::string strict = work / "strict.json";
  WriteText(strict, kReject);
  r = Sealroot({"unpack", busybox_, work / "c", "--policy", strict}, home.path());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(strict), std::string::npos) << r.err;
}

TEST_F(ToolCliTest, PolicyFallsBackToEtcContainersThenFails) {
  TempDir home, etc, work;
  WriteText(etc / "policy.json", kReject);
  auto r = SealrootWithEtc({"unpack", busybox_, work / "b"}, home.path(), etc.path());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("/etc/containers/policy.json"), std::string::npos) << r.err;

  std::filesystem::remove(etc / "policy.json");
  r = SealrootWithEtc({"unpack", busybox_, work / "b"}, home.path(), etc.path());
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("no signature policy"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(home / ".config/containers/policy.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/etc/containers/policy.json"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(work / "b"));

  // Inspect needs no policy: it reports the verdict it can give.
  r = SealrootWithEtc({"inspect", busybox_, "--json"}, home.path(), etc.path());
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["layers"].size(), 1u);
}

TEST_F(ToolCliTest, GlobalOptionsBeforeTheCommand) {
  TempDir home, work;
  WriteText(home / ".config/containers/policy.json", kReject);
  auto r = Sealroot({"--insecure-policy", "unpack", busybox_, work / "b"}, home.path());
  EXPECT_TRUE(r.ok()) << r.err;
  std::string accept = work / "accept.json";
  WriteText(accept, kAccept);
  r = Sealroot({"--policy", accept, "--log-level", "warning", "unpack", busybox_, work / "c"}, home.path());
  EXPECT_TRUE(r.ok()) << r.err;
  r = Sealroot({"--json", "inspect", busybox_}, home.path());
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out).contains("layers")) << r.out;
}

TEST_F(ToolCliTest, ShortHelpEverywhere) {
  TempDir home;
  for (std::vector<std::string> args : {std::vector<std::string>{"-h"},
                                        {"unpack", "-h"},
                                        {"pull", "-h"},
                                        {"inspect", "-h"},
                                        {"-h", "inspect"}}) {
    auto r = Sealroot(args, home.path());
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << r.err;
    EXPECT_NE(r.out.find("Usage: sealroot"), std::string::npos) << r.out;
  }
  auto r = Sealroot({"inspect", "-h"}, home.path());
  EXPECT_NE(r.out.find("--raw"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--src-tls-verify"), std::string::npos) << r.out;
}

TEST_F(ToolCliTest, HelpListsEveryCommandTheReadmeLists) {
  TempDir home;
  auto help = Sealroot({"--help"}, home.path());
  ASSERT_TRUE(help.ok());
  std::ifstream readme(SourceDir() + "/README.md");
  std::string line;
  std::size_t commands = 0;
  std::regex row(R"(^\| `sealroot ([a-z-]+))");
  while (std::getline(readme, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    ++commands;
    EXPECT_NE(help.out.find("  " + m[1].str() + " "), std::string::npos) << m[1] << " is missing from --help";
  }
  EXPECT_GE(commands, 8u) << "the README's command table was not found";
}

TEST_F(ToolCliTest, UsageErrorsSayWhatIsMissing) {
  TempDir home;
  auto r = Sealroot({"unpack", busybox_}, home.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing DEST"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--seal"), std::string::npos) << r.err;
  r = Sealroot({"unpack"}, home.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing SOURCE"), std::string::npos) << r.err;
  r = Sealroot({"pull", busybox_}, home.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing DEST"), std::string::npos) << r.err;
  r = Sealroot({"inspect"}, home.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing SOURCE"), std::string::npos) << r.err;
}

TEST_F(ToolCliTest, InspectRawPrintsTheManifestBytesAndConfigTheConfig) {
  TempDir home;
  std::string dir = busybox_.substr(4, busybox_.rfind(':') - 4);
  auto index = nlohmann::json::parse(std::ifstream(dir + "/index.json"));
  std::string digest = index["manifests"][0]["digest"];
  auto r = Sealroot({"inspect", "--raw", busybox_}, home.path());
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ("sha256:" + Sha256Hex(r.out), digest) << "the exact bytes the digest names";
  auto manifest = nlohmann::json::parse(r.out);
  r = Sealroot({"inspect", "--config", busybox_}, home.path());
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ("sha256:" + Sha256Hex(r.out), manifest["config"]["digest"].get<std::string>());
}

TEST_F(ToolCliTest, SrcTlsVerifyAsSkopeoCopySpellsIt) {
  Registry registry;  // plain HTTP
  registry.Push(busybox_, "busybox:1");
  TempDir home, work;
  auto r = Sealroot({"--insecure-policy", "unpack", registry.Ref("busybox:1"), work / "a"}, home.path());
  EXPECT_NE(r.exit_code, 0) << "HTTPS is required by default";
  EXPECT_NE(r.err.find("--tls-verify=false"), std::string::npos) << r.err;
  r = Sealroot(
      {"--insecure-policy", "unpack", "--src-tls-verify=false", registry.Ref("busybox:1"), work / "b"},
      home.path());
  EXPECT_TRUE(r.ok()) << r.err;
  r = Sealroot({"--insecure-policy", "--src-tls-verify=false", "pull", registry.Ref("busybox:1"),
                "oci:" + work / "layout:x"},
               home.path());
  EXPECT_TRUE(r.ok()) << r.err;
}

// An index whose second entry is linux/arm/v7 (rewritten from the multi-platform image).
std::string MakeArmIndex(const std::string& multi, const std::string& dir) {
  std::string src = multi.substr(4, multi.rfind(':') - 4);
  std::filesystem::copy(src, dir, std::filesystem::copy_options::recursive);
  auto index_json = nlohmann::json::parse(std::ifstream(dir + "/index.json"));
  nlohmann::json* top = nullptr;
  for (auto& m : index_json["manifests"]) {
    if (m["annotations"].value("org.opencontainers.image.ref.name", "") == "multi") top = &m;
  }
  if (top == nullptr) throw std::runtime_error("no 'multi' tag");
  std::string blob = dir + "/blobs/sha256/" + (*top)["digest"].get<std::string>().substr(7);
  auto index = nlohmann::json::parse(std::ifstream(blob));
  for (auto& m : index["manifests"]) {
    if (m["platform"]["architecture"] == "arm64")
      m["platform"] = {{"os", "linux"}, {"architecture", "arm"}, {"variant", "v7"}};
  }
  std::string bytes = index.dump();
  std::string hex = Sha256Hex(bytes);
  std::ofstream(dir + "/blobs/sha256/" + hex) << bytes;
  (*top)["digest"] = "sha256:" + hex;
  (*top)["size"] = bytes.size();
  std::ofstream(dir + "/index.json") << index_json.dump();
  return "oci:" + dir + ":multi";
}

TEST_F(ToolCliTest, LinuxArmPicksArmV7AsOverrideArchArmDoes) {
  TempDir home, work;
  std::string ref = MakeArmIndex(multi_, work / "arm");
  auto raw = nlohmann::json::parse(Sealroot({"inspect", "--raw", ref}, home.path()).out);
  std::string want;
  for (const auto& m : raw["manifests"]) {
    if (m["platform"]["architecture"] == "arm") want = m["digest"];
  }
  ASSERT_FALSE(want.empty());
  for (std::string platform : {"linux/arm", "linux/arm/v7"}) {
    auto r = Sealroot({"inspect", "--json", "--platform", platform, ref}, home.path());
    ASSERT_TRUE(r.ok()) << platform << ": " << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["digest"], want) << platform;
  }
  // An armv6 host cannot run v7.
  auto r = Sealroot({"inspect", "--json", "--platform", "linux/arm/v6", ref}, home.path());
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
}

// registries.conf: a loopback registry reached only through what the file says.
class RegistriesConfTest : public ToolCliTest {
 protected:
  static void SetUpTestSuite() {
    ToolCliTest::SetUpTestSuite();
    registry_ = new Registry();
    registry_->Push(busybox_, "mirrored/busybox:1");
    dead_ = "127.0.0.1:" + std::to_string(FreePort());  // nothing listens there
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    ToolCliTest::TearDownTestSuite();
  }
  static CommandResult Unpack(const std::string& ref, const std::string& dest, const std::string& home,
                              std::vector<std::string> extra = {},
                              std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {BuiltProgram("sealroot"), "--insecure-policy", "unpack", ref, dest};
    argv.insert(argv.end(), extra.begin(), extra.end());
    env["HOME"] = home;
    return testing::Run(argv, {.env = env});
  }
  static Registry* registry_;
  static std::string dead_;
};

Registry* RegistriesConfTest::registry_ = nullptr;
std::string RegistriesConfTest::dead_;

TEST_F(RegistriesConfTest, PrefixRemapReachesTheRegistry) {
  TempDir home, work;
  WriteText(work / "registries.conf", "[[registry]]\nprefix = \"example.invalid/team\"\nlocation = \"" +
                                          registry_->host() + "/mirrored\"\ninsecure = true\n");
  auto r = Unpack("docker://example.invalid/team/busybox:1", work / "b", home.path(),
                  {"--registries-conf", work / "registries.conf"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(std::filesystem::exists(work / "b/rootfs/bin/busybox"));
  // Without the file the name leads nowhere.
  r = Unpack("docker://example.invalid/team/busybox:1", work / "c", home.path());
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(RegistriesConfTest, MirrorsAreTriedInOrderBeforeTheLocation) {
  TempDir home, work;
  // The primary and the first mirror are dead; the second mirror has the image.
  std::string conf = "[[registry]]\nlocation = \"" + dead_ + "/mirrored\"\ninsecure = true\n\n" +
                     "[[registry.mirror]]\nlocation = \"" + dead_ + "/elsewhere\"\ninsecure = true\n\n" +
                     "[[registry.mirror]]\nlocation = \"" + registry_->host() +
                     "/mirrored\"  # the live one\ninsecure = true\n";
  WriteText(work / "registries.conf", conf);
  auto r = Unpack("docker://" + dead_ + "/mirrored/busybox:1", work / "b", home.path(),
                  {"--log-level", "debug"}, {{"CONTAINERS_REGISTRIES_CONF", work / "registries.conf"}});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(std::filesystem::exists(work / "b/rootfs/bin/busybox"));
  EXPECT_NE(r.err.find("pulling from " + registry_->host() + "/mirrored/busybox (mirror)"), std::string::npos)
      << r.err;
  // A digest-only mirror is not used for a tag.
  std::string digest_only = conf + "pull-from-mirror = \"digest-only\"\n";
  WriteText(work / "registries.conf", digest_only);
  r = Unpack("docker://" + dead_ + "/mirrored/busybox:1", work / "c", home.path(), {},
             {{"CONTAINERS_REGISTRIES_CONF", work / "registries.conf"}});
  EXPECT_NE(r.exit_code, 0) << "only the dead endpoints were left";
  EXPECT_FALSE(std::filesystem::exists(work / "c"));
}

TEST_F(RegistriesConfTest, UsersFileDropInsAndSearchRegistries) {
  TempDir home, work;
  // The user's file searches the dead registry then the live one; a drop-in marks both insecure.
  WriteText(home / ".config/containers/registries.conf",
            "unqualified-search-registries = [\"" + dead_ + "\", \"" + registry_->host() + "\"]\n");
  WriteText(home / ".config/containers/registries.conf.d/50-loopback.conf",
            "[[registry]]\nlocation = \"" + dead_ + "\"\ninsecure = true\n[[registry]]\nlocation = \"" +
                registry_->host() + "\"\ninsecure = true\n");
  auto r = Unpack("mirrored/busybox:1", work / "b", home.path());
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(std::filesystem::exists(work / "b/rootfs/bin/busybox"));
  // A later drop-in blocks the live registry.
  WriteText(home / ".config/containers/registries.conf.d/90-block.conf",
            "[[registry]]\nlocation = \"" + registry_->host() + "\"\nblocked = true\n");
  r = Unpack("docker://" + registry_->host() + "/mirrored/busybox:1", work / "c", home.path());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("blocked"), std::string::npos) << r.err;
}

TEST_F(RegistriesConfTest, EtcContainersIsTheDefaultWithItsDropIns) {
  TempDir home, etc, work;
  WriteText(etc / "registries.conf", "unqualified-search-registries = [\"" + registry_->host() + "\"]\n");
  WriteText(etc / "registries.conf.d/10-insecure.conf",
            "[[registry]]\nlocation = \"" + registry_->host() + "\"\ninsecure = true\n");
  auto r = SealrootWithEtc({"--insecure-policy", "unpack", "mirrored/busybox:1", work / "b"}, home.path(),
                           etc.path());
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(std::filesystem::exists(work / "b/rootfs/bin/busybox"));
}

TEST_F(RegistriesConfTest, MistypedPathsAndSyntaxErrorsAreErrors) {
  TempDir home, work;
  auto r = Unpack("docker://" + registry_->host() + "/mirrored/busybox:1", work / "b", home.path(),
                  {"--registries-conf", work / "no-such.conf"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find(work / "no-such.conf"), std::string::npos) << r.err;
  r = Unpack("docker://" + registry_->host() + "/mirrored/busybox:1", work / "b", home.path(), {},
             {{"CONTAINERS_REGISTRIES_CONF", work / "missing.conf"}});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("CONTAINERS_REGISTRIES_CONF"), std::string::npos) << r.err;
  WriteText(work / "bad.conf", "[[registry]]\nlocation = \"unterminated\n");
  r = Unpack("docker://" + registry_->host() + "/mirrored/busybox:1", work / "b", home.path(),
             {"--registries-conf", work / "bad.conf"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(work / "bad.conf:2"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sealroot::testing
