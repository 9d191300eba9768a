// Pulls from a real docker-registry on loopback: plain HTTP, TLS with a private CA and htpasswd
// Basic auth, a Bearer token front, a front that drops connections mid-blob, and one that
// redirects blobs to another origin. Unpacked trees are held against umoci's.
#include "tests/support/registry.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "image/dir_sink.h"
#include "image/pull.h"
#include "tests/support/images.h"
#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

SecretBytes Secret(std::string_view s) {
  return SecretBytes(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

class RegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    images_ = new TempDir();
    busybox_ = BuildBusyboxImage(*images_ / "layout");
    rich_ = BuildFeatureRichImage(*images_ / "layout");
    TempDir oracle;
    UmociUnpack(busybox_, *images_ / "busybox-umoci");
    UmociUnpack(rich_, *images_ / "rich-umoci");
  }
  static void TearDownTestSuite() {
    delete images_;
    images_ = nullptr;
  }

  static Status Unpack(const std::string& ref, const image::PullOptions& options, const std::string& dest) {
    auto parsed = image::Reference::Parse(ref);
    if (!parsed.ok()) return parsed.status();
    auto sink = image::OpenDirSink(dest, {});
    if (!sink.ok()) return sink.status();
    return image::PullAndUnpack(*parsed, options, **sink).status();
  }

  static image::PullOptions Insecure() {
    image::PullOptions o;
    o.tls_verify = false;
    return o;
  }

  void ExpectTree(const std::string& oracle, const std::string& bundle) {
    std::string diff = DiffTrees(ScanTree(*images_ / oracle + "/rootfs"), ScanTree(bundle + "/rootfs"));
    EXPECT_EQ(diff, "") << diff;
  }

  // A registry_front.py in front of `backend`.
  std::unique_ptr<BackgroundProcess> Front(const Registry& backend, int port,
                                           std::vector<std::string> flags) {
    std::vector<std::string> argv = {"/usr/bin/python3", SourceDir() + "/tests/image/registry_front.py",
                                     "--port",           std::to_string(port),
                                     "--backend",        std::to_string(backend.port())};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto p = std::make_unique<BackgroundProcess>(argv, work_ / ("front" + std::to_string(port) + ".log"));
    EXPECT_TRUE(WaitForPort(port));
    return p;
  }

  static TempDir* images_;
  static std::string busybox_, rich_;
  TempDir work_;
};

TempDir* RegistryTest::images_ = nullptr;
std::string RegistryTest::busybox_, RegistryTest::rich_;

TEST_F(RegistryTest, PlainHttpOciAndV2s2EqualUmoci) {
  Registry reg;
  reg.Push(rich_, "rich:oci");
  reg.Push(rich_, "rich:v2s2", {"--format", "v2s2"});
  Status oci = Unpack(reg.Ref("rich:oci"), Insecure(), work_ / "oci");
  ASSERT_TRUE(oci.ok()) << oci.ToString();
  ExpectTree("rich-umoci", work_ / "oci");
  Status v2 = Unpack(reg.Ref("rich:v2s2"), Insecure(), work_ / "v2s2");
  ASSERT_TRUE(v2.ok()) << v2.ToString();
  ExpectTree("rich-umoci", work_ / "v2s2");
}

TEST_F(RegistryTest, PlainHttpNeedsTlsVerifyFalse) {
  Registry reg;
  reg.Push(busybox_, "busybox:latest");
  Status s = Unpack(reg.Ref("busybox:latest"), {}, work_ / "b");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--tls-verify=false"), std::string::npos) << s.message();
}

TEST_F(RegistryTest, MultiPlatformIndexFromRegistry) {
  Registry reg;
  std::string multi = BuildMultiPlatformImage(work_ / "multi");
  reg.Push(multi, "multi:latest", {"--all"});
  image::PullOptions o = Insecure();
  o.platform = *image::Platform::Parse("linux/arm64");
  Status s = Unpack(reg.Ref("multi:latest"), o, work_ / "arm");
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::ifstream marker(work_ / "arm/rootfs/platform");
  std::string text((std::istreambuf_iterator<char>(marker)), {});
  EXPECT_EQ(text, "arm64\n");
}

TEST_F(RegistryTest, TlsWithCertDirAndBasicAuth) {
  Registry reg({.tls = true, .user = "alice", .password = "s3cret"});
  reg.Push(busybox_, "busybox:latest");
  image::PullOptions o;
  o.cert_dir = reg.cert_dir();
  o.creds = Secret("alice:s3cret");
  Status s = Unpack(reg.Ref("busybox:latest"), o, work_ / "ok");
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectTree("busybox-umoci", work_ / "ok");

  image::PullOptions untrusted;  // the private CA is not trusted without --cert-dir
  untrusted.creds = Secret("alice:s3cret");
  EXPECT_FALSE(Unpack(reg.Ref("busybox:latest"), untrusted, work_ / "untrusted").ok());
}

TEST_F(RegistryTest, WrongCredentialsAreRefused) {
  Registry reg({.tls = true, .user = "alice", .password = "s3cret"});
  reg.Push(busybox_, "busybox:latest");
  image::PullOptions o;
  o.cert_dir = reg.cert_dir();
  o.creds = Secret("alice:wrong");
  Status s = Unpack(reg.Ref("busybox:latest"), o, work_ / "b");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kUnauthenticated) << s.ToString();
  EXPECT_EQ(s.message().find("wrong"), std::string::npos) << "the password leaked into the error";
  EXPECT_FALSE(std::filesystem::exists(work_ / "b"));
  // And through the CLI: exit code 3, the registry named.
  auto r = testing::Run({BuiltProgram("sealroot"), "unpack", "--insecure-policy", "--cert-dir",
                         reg.cert_dir(), "--creds", "alice:wrong", reg.Ref("busybox:latest"), work_ / "cli"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(reg.host()), std::string::npos) << r.err;
}

TEST_F(RegistryTest, CredentialsFromAuthFile) {
  Registry reg({.tls = true, .user = "bob", .password = "pw"});
  reg.Push(busybox_, "team/busybox:latest");
  std::string authfile = work_ / "auth.json";
  std::ofstream(authfile) << R"({"auths":{")" << reg.host() << R"(":{"auth":"d3Jvbmc6d3Jvbmc="},")"
                          << reg.host() << R"(/team":{"auth":")"
                          << "Ym9iOnB3"
                          << R"("}}})";  // wrong:wrong / bob:pw
  image::PullOptions o;
  o.cert_dir = reg.cert_dir();
  o.authfile = authfile;
  Status s = Unpack(reg.Ref("team/busybox:latest"), o, work_ / "b");
  ASSERT_TRUE(s.ok()) << "the most specific auth.json key must win: " << s.ToString();
}

TEST_F(RegistryTest, BearerTokenAuth) {
  Registry reg;
  reg.Push(busybox_, "busybox:latest");
  int port = FreePort();
  auto front = Front(reg, port, {"--bearer", "carol:tok-pass"});
  std::string ref = "docker://127.0.0.1:" + std::to_string(port) + "/busybox:latest";
  image::PullOptions o = Insecure();
  o.creds = Secret("carol:tok-pass");
  Status s = Unpack(ref, o, work_ / "b");
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectTree("busybox-umoci", work_ / "b");
  image::PullOptions wrong = Insecure();
  wrong.creds = Secret("carol:nope");
  Status bad = Unpack(ref, wrong, work_ / "bad");
  EXPECT_EQ(bad.code(), Code::kUnauthenticated) << bad.ToString();
}

// A Bearer realm named by the registry on another host over plain HTTP never sees the
// credentials: the token is asked for anonymously (enough for a public repository), and a
// refusal says why. (The front answers 400 and logs LEAKED if credentials reach it.)
TEST_F(RegistryTest, CredentialsNeverGoToAPlainHttpRealmOnAnotherHost) {
  Registry reg;
  reg.Push(busybox_, "busybox:latest");
  int port = FreePort();
  auto front = Front(reg, port, {"--bearer", "erin:secret-pw", "--realm-host", "localhost"});
  std::string ref = "docker://127.0.0.1:" + std::to_string(port) + "/busybox:latest";
  image::PullOptions o = Insecure();
  o.creds = Secret("erin:secret-pw");
  Status s = Unpack(ref, o, work_ / "private");
  EXPECT_EQ(s.code(), Code::kUnauthenticated) << s.ToString();
  EXPECT_NE(s.message().find("the credentials were not sent"), std::string::npos) << s.ToString();

  int public_port = FreePort();
  auto anonymous =
      Front(reg, public_port, {"--bearer", "erin:secret-pw", "--realm-host", "localhost", "--anonymous"});
  image::PullOptions p = Insecure();
  p.creds = Secret("erin:secret-pw");
  Status pulled =
      Unpack("docker://127.0.0.1:" + std::to_string(public_port) + "/busybox:latest", p, work_ / "public");
  ASSERT_TRUE(pulled.ok()) << pulled.ToString();
  ExpectTree("busybox-umoci", work_ / "public");
  for (int log_port : {port, public_port}) {
    std::ifstream log(work_ / ("front" + std::to_string(log_port) + ".log"));
    std::string text((std::istreambuf_iterator<char>(log)), {});
    EXPECT_EQ(text.find("LEAKED"), std::string::npos) << text;
  }
}

TEST_F(RegistryTest, DroppedConnectionMidBlobResumes) {
  Registry reg;
  reg.Push(rich_, "rich:latest");
  reg.Push(busybox_, "busybox:latest");
  int port = FreePort();
  auto front = Front(reg, port, {"--drop-after", "3000"});
  std::string base = "docker://127.0.0.1:" + std::to_string(port);
  Status s = Unpack(base + "/busybox:latest", Insecure(), work_ / "b");
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectTree("busybox-umoci", work_ / "b");
  std::ifstream log(work_ / ("front" + std::to_string(port) + ".log"));
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_GE(std::count(text.begin(), text.end(), '\n'), 4) << "the front did not see the resumed requests";
}

TEST_F(RegistryTest, RedirectDoesNotLeakAuthorization) {
  Registry reg;
  reg.Push(busybox_, "busybox:latest");
  int port = FreePort();
  auto front = Front(reg, port, {"--bearer", "dave:pw", "--redirect"});
  image::PullOptions o = Insecure();
  o.creds = Secret("dave:pw");
  // The redirect target answers 400 to any request that carries Authorization.
  Status s = Unpack("docker://127.0.0.1:" + std::to_string(port) + "/busybox:latest", o, work_ / "b");
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectTree("busybox-umoci", work_ / "b");
}

TEST_F(RegistryTest, CtrlCLeavesNoStaging) {
  Registry reg;
  reg.Push(busybox_, "busybox:latest");
  int port = FreePort();
  auto front = Front(reg, port, {"--delay-blobs", "30"});
  std::string parent = work_ / "out";
  std::filesystem::create_directories(parent);
  BackgroundProcess unpack(
      {BuiltProgram("sealroot"), "unpack", "--insecure-policy", "--tls-verify=false",
       "docker://127.0.0.1:" + std::to_string(port) + "/busybox:latest", parent + "/bundle"},
      work_ / "unpack.log");
  auto staging_exists = [&] {
    for (const auto& e : std::filesystem::directory_iterator(parent)) {
      if (e.path().filename().string().starts_with(".bundle.sealroot-")) return true;
    }
    return false;
  };
  for (int i = 0; i < 200 && !staging_exists(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(staging_exists()) << "the unpack never started staging";
  int code = unpack.Stop(SIGINT);
  std::ifstream log(work_ / "unpack.log");
  EXPECT_EQ(code, 130) << std::string((std::istreambuf_iterator<char>(log)), {});
  EXPECT_FALSE(staging_exists()) << "Ctrl-C left the staging directory behind";
  EXPECT_FALSE(std::filesystem::exists(parent + "/bundle"));
}

TEST_F(RegistryTest, PullToLayoutFromRegistry) {
  Registry reg;
  reg.Push(rich_, "rich:latest");
  auto src = image::Reference::Parse(reg.Ref("rich:latest"));
  auto dest = image::Reference::Parse("oci:" + work_ / "copy" + ":pulled");
  Status s = image::PullToLayout(*src, *dest, Insecure());
  ASSERT_TRUE(s.ok()) << s.ToString();
  UmociUnpack("oci:" + work_ / "copy" + ":pulled", work_ / "umoci");
  std::string diff = DiffTrees(ScanTree(*images_ / "rich-umoci/rootfs"), ScanTree(work_ / "umoci/rootfs"));
  EXPECT_EQ(diff, "") << diff;
}

}  // namespace
}  // namespace sealroot::testing
