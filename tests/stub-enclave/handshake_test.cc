// Full handshakes between two separately launched sim enclaves (two processes, each measured
// and signed, each served its own simulated CPU by this test process acting as launcher).
#include <fcntl.h>
#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "base/encoding.h"
#include "base/file.h"
#include "local-attest/manifest.h"
#include "local-attest/policy.h"
#include "stub-enclave/launcher.h"
#include "tests/stub-enclave/signing_keys.h"
#include "tests/support/process.h"

namespace sealroot::stub_enclave {
namespace {

using namespace std::chrono_literals;

const EnclaveConfig kConfig{.heap_size = 1 << 20, .threads = 2};
const Sha256Digest kSpec = Sha256Of(std::string_view("{\"args\":[\"/bin/app\"]}"));
const std::string kRootHash(64, 'c');
const std::string kKeyHex(64, '7');

// The file's contents, or "" while it does not exist yet.
std::string Slurp(const std::string& path) {
  Result<std::string> r = ReadFile(path);
  return r.ok() ? *r : std::string();
}

struct Program {
  std::string path;
  local_attest::sgx::Measurement mr_enclave;
};

Program Measure(const std::string& name) {
  std::string path = testing::BuiltProgram(name);
  return {path, EnclaveImage::Load(path, kConfig).value().measurement().mr_enclave};
}

class HandshakeTest : public ::testing::Test {
 protected:
  // Measured once per suite: measuring includes every library of the (ASan) programs.
  static void SetUpTestSuite() {
    stub_.emplace(Measure("test_stub"));
    app_.emplace(Measure("test_app"));
    impostor_.emplace(Measure("test_impostor"));
  }

  std::unique_ptr<LaunchedEnclave> Launch(const Program& p, EVP_PKEY* key, SigningParams params,
                                          std::vector<std::string> args, const std::string& out_file,
                                          const local_attest::sgx::ConfigId& config_id = {}) {
    LaunchSpec spec;
    spec.executable = p.path;
    spec.config = kConfig;
    spec.sigstruct = SignEnclave(key, p.mr_enclave, params).value();
    spec.args = std::move(args);
    spec.config_id = config_id;
    UniqueFd out(::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    spec.stdout_fd = out.get();
    auto launched = LaunchEnclave(spec);
    EXPECT_TRUE(launched.ok()) << launched.status().ToString();
    return launched.ok() ? std::move(launched).value() : nullptr;
  }

  // Starts the test stub (signed with key A, product 1) serving container `container`.
  void StartStub(std::vector<std::string> policy_args, int sessions = 1,
                 const std::string& container = "ctr-a") {
    std::vector<std::string> args = {
        "--socket",    socket_,   "--container-id", container, "--spec-digest", HexEncode(kSpec),
        "--root-hash", kRootHash, "--key",          kKeyHex,   "--sessions",    std::to_string(sessions)};
    args.insert(args.end(), policy_args.begin(), policy_args.end());
    stub_enclave_ = Launch(*stub_, testkeys::KeyA(), {.isv_prod_id = 1, .isv_svn = 1}, args, stub_out_);
    ASSERT_TRUE(stub_enclave_);
    for (int i = 0; i < 400; ++i) {
      if (Slurp(stub_out_).find("ready") != std::string::npos) return;
      std::this_thread::sleep_for(25ms);
    }
    FAIL() << "stub never became ready: " << Slurp(stub_out_);
  }

  // Runs an app enclave to completion; returns (exit code, stdout).
  std::pair<int, std::string> RunApp(const Program& p, EVP_PKEY* key, SigningParams params,
                                     const std::string& container = "ctr-a",
                                     std::vector<std::string> stub_policy = {}) {
    if (stub_policy.empty()) stub_policy = {"--stub-mrenclave", HexEncode(stub_->mr_enclave)};
    std::vector<std::string> args = {"--socket", socket_};
    args.insert(args.end(), stub_policy.begin(), stub_policy.end());
    std::string out = dir_ / ("app-" + std::to_string(++apps_) + ".out");
    auto app = Launch(p, key, params, args, out, local_attest::ContainerConfigId(container, kSpec));
    if (!app) return {-1, ""};
    int code = app->Wait().value();
    return {code, Slurp(out)};
  }

  std::string StubOutput() {
    EXPECT_EQ(stub_enclave_->Wait().value(), 0);
    return Slurp(stub_out_);
  }

  std::vector<std::string> MrEnclavePolicy() { return {"--mrenclave", HexEncode(app_->mr_enclave)}; }
  std::vector<std::string> SignerPolicy(int min_svn) {
    return {"--mrsigner",
            HexEncode(Sha256Of(SignEnclave(testkeys::KeyA(), app_->mr_enclave, {}).value().modulus)),
            "--prodid",
            "2",
            "--min-svn",
            std::to_string(min_svn)};
  }

  static inline std::optional<Program> stub_, app_, impostor_;
  testing::TempDir dir_;
  std::string socket_ = dir_ / "ctr.sock";
  std::string stub_out_ = dir_ / "stub.out";
  std::unique_ptr<LaunchedEnclave> stub_enclave_;
  int apps_ = 0;
};

TEST_F(HandshakeTest, ExpectedAppEnclaveReceivesTheKey) {
  StartStub(MrEnclavePolicy());
  auto [code, out] = RunApp(*app_, testkeys::KeyA(), {.isv_prod_id = 2, .isv_svn = 1});
  EXPECT_EQ(code, 0) << out;
  std::string key_digest = HexEncode(Sha256Of(HexDecode(kKeyHex).value()));
  EXPECT_EQ(out, "released ctr-a rootfs " + kRootHash + " " + key_digest + " by app\n");
  EXPECT_EQ(StubOutput(), "ready\nsession: ok\n");
}

TEST_F(HandshakeTest, ImpostorBinaryIsRefused) {
  StartStub(MrEnclavePolicy());
  auto [code, out] = RunApp(*impostor_, testkeys::KeyA(), {.isv_prod_id = 2, .isv_svn = 1});
  EXPECT_EQ(code, 3);
  EXPECT_NE(out.find("the stub refused this enclave"), std::string::npos) << out;
  EXPECT_NE(StubOutput().find("MRENCLAVE mismatch"), std::string::npos);
}

TEST_F(HandshakeTest, SameBinarySignedByAnotherKeyIsRefusedBySignerPolicy) {
  StartStub(SignerPolicy(1), 2);
  auto [code, out] = RunApp(*app_, testkeys::KeyB(), {.isv_prod_id = 2, .isv_svn = 1});
  EXPECT_EQ(code, 3) << out;
  auto [ok_code, ok_out] = RunApp(*app_, testkeys::KeyA(), {.isv_prod_id = 2, .isv_svn = 1});
  EXPECT_EQ(ok_code, 0) << ok_out;
  std::string stub = StubOutput();
  EXPECT_NE(stub.find("session: refused: app enclave"), std::string::npos) << stub;
  EXPECT_NE(stub.find("MRSIGNER mismatch"), std::string::npos) << stub;
  EXPECT_NE(stub.find("session: ok"), std::string::npos) << stub;
}

TEST_F(HandshakeTest, DebugEnclaveIsRefusedByDefault) {
  StartStub(MrEnclavePolicy());
  auto [code, out] = RunApp(*app_, testkeys::KeyA(), {.isv_prod_id = 2, .isv_svn = 1, .debug = true});
  EXPECT_EQ(code, 3) << out;
  EXPECT_NE(StubOutput().find("DEBUG enclave refused"), std::string::npos);
}

TEST_F(HandshakeTest, DebugEnclaveIsAcceptedWhenExplicitlyAllowed) {
  auto policy = MrEnclavePolicy();
  policy.push_back("--allow-debug");
  StartStub(policy);
  auto [code, out] = RunApp(*app_, testkeys::KeyA(), {.isv_prod_id = 2, .isv_svn = 1, .debug = true});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(StubOutput().find("session: ok"), std::string::npos);
}

TEST_F(HandshakeTest, IsvSvnBelowTheMinimumIsRefused) {
  StartStub(SignerPolicy(3));
  auto [code, out] = RunApp(*app_, testkeys::KeyA(), {.isv_prod_id = 2, .isv_svn = 2});
  EXPECT_EQ(code, 3) << out;
  EXPECT_NE(StubOutput().find("ISVSVN 2 is below the minimum 3"), std::string::npos);
}

TEST_F(HandshakeTest, ReleaseForContainerAIsRefusedToContainerBsEnclave) {
  StartStub(MrEnclavePolicy(), 1, "ctr-a");
  auto [code, out] = RunApp(*app_, testkeys::KeyA(), {.isv_prod_id = 2, .isv_svn = 1}, "ctr-b");
  EXPECT_EQ(code, 3) << out;
  EXPECT_NE(StubOutput().find("CONFIGID mismatch"), std::string::npos);
}

TEST_F(HandshakeTest, BootRefusesAStubWithAnUnexpectedIdentity) {
  StartStub(MrEnclavePolicy());
  // The boot expects a stub whose MRENCLAVE is the impostor's.
  auto [code, out] = RunApp(*app_, testkeys::KeyA(), {.isv_prod_id = 2, .isv_svn = 1}, "ctr-a",
                            {"--stub-mrenclave", HexEncode(impostor_->mr_enclave)});
  EXPECT_EQ(code, 3);
  EXPECT_NE(out.find("stub enclave mrenclave=" + HexEncode(stub_->mr_enclave)), std::string::npos) << out;
  EXPECT_NE(out.find("MRENCLAVE mismatch"), std::string::npos) << out;
  EXPECT_NE(StubOutput().find("session: refused"), std::string::npos);
}

TEST(Launcher, StaticExecutablesHaveNoLibrariesAndRunFromTheMeasuredCopy) {
  const std::string busybox = "/bin/busybox";  // busybox-static
  auto image = EnclaveImage::Load(busybox, kConfig).value();
  EXPECT_TRUE(image.measurement().libraries.empty());
  LaunchSpec spec;
  spec.executable = busybox;
  spec.config = kConfig;
  spec.sigstruct = SignEnclave(testkeys::KeyA(), image.measurement().mr_enclave, {}).value();
  spec.args = {"sh", "-c", "exit 7"};
  auto launched = LaunchEnclave(spec).value();
  std::optional<int> code;
  for (int i = 0; i < 500 && !code; ++i) {
    code = launched->Poll().value();
    if (!code) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(code, 7);
  EXPECT_EQ(launched->Wait().value(), 7);
}

TEST(Launcher, RefusesASigstructForAnotherBinary) {
  LaunchSpec spec;
  spec.executable = testing::BuiltProgram("test_app");
  spec.config = kConfig;
  auto impostor = EnclaveImage::Load(testing::BuiltProgram("test_impostor"), kConfig).value();
  spec.sigstruct = SignEnclave(testkeys::KeyA(), impostor.measurement().mr_enclave, {}).value();
  auto r = LaunchEnclave(spec);
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("signs another enclave"), std::string::npos) << r.status().ToString();
}

TEST(Launcher, TheEnclaveGetsItsMeasuredIdentityAndNoLdVariables) {
  auto image = EnclaveImage::Load(testing::BuiltProgram("test_app"), kConfig).value();
  LaunchSpec spec;
  spec.executable = testing::BuiltProgram("test_app");
  spec.config = kConfig;
  spec.sigstruct =
      SignEnclave(testkeys::KeyB(), image.measurement().mr_enclave, {.isv_prod_id = 9, .isv_svn = 4}).value();
  spec.args = {"--socket", "/nonexistent.sock", "--stub-mrenclave", std::string(64, '0')};
  spec.env = {"LD_PRELOAD=/nonexistent.so", "KEEP=1"};
  testing::TempDir dir;
  UniqueFd out(::open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  spec.stdout_fd = out.get();
  auto launched = LaunchEnclave(spec).value();
  EXPECT_EQ(launched->identity().mr_enclave, image.measurement().mr_enclave);
  EXPECT_EQ(launched->identity().mr_signer, MrSignerOf(spec.sigstruct));
  EXPECT_EQ(launched->identity().isv_prod_id, 9);
  EXPECT_EQ(launched->identity().isv_svn, 4);
  EXPECT_NE(launched->identity().attributes.flags & local_attest::sgx::kFlagInitted, 0u);
  // The app fails to connect (no stub) but must have started: LD_PRELOAD would have killed it.
  EXPECT_EQ(launched->Wait().value(), 3);
  EXPECT_NE(ReadFile(dir / "out").value().find("connecting to the stub"), std::string::npos);
}

TEST(Launcher, TheEnclaveReadsItsMeasuredManifestFromASealedFd) {
  const std::string manifest = R"({"stub": {"isv_prod_id": 1}})";
  auto image = EnclaveImage::Load("/bin/busybox", kConfig, manifest).value();
  LaunchSpec spec;
  spec.executable = "/bin/busybox";
  spec.config = kConfig;
  spec.manifest = manifest;
  spec.sigstruct = SignEnclave(testkeys::KeyA(), image.measurement().mr_enclave, {}).value();
  // The child sees the manifest at the announced fd, cannot write it, and inherits nothing else.
  spec.args = {
      "sh", "-c",
      "cat /proc/self/fd/$SEALROOT_SIM_MANIFEST_FD; echo; echo x >> /proc/self/fd/5 && echo WRITABLE;"
      " ls /proc/self/fd | tr '\\n' ' '"};
  spec.env = {std::string(local_attest::sgx::kSimManifestFdEnv) + "=9"};  // a caller's value is replaced
  testing::TempDir dir;
  UniqueFd out(::open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  spec.stdout_fd = out.get();
  spec.stderr_fd = out.get();
  auto launched = LaunchEnclave(spec).value();
  EXPECT_EQ(launched->identity().mr_enclave, image.measurement().mr_enclave);
  launched->Wait().value();
  const std::string got = ReadFile(dir / "out").value();
  EXPECT_EQ(got.substr(0, manifest.size() + 1), manifest + "\n") << got;
  EXPECT_EQ(got.find("WRITABLE"), std::string::npos) << got;
  // Signed for the measurement with this manifest: another manifest is another enclave.
  spec.manifest = R"({"stub": {"isv_prod_id": 2}})";
  EXPECT_EQ(LaunchEnclave(spec).status().code(), Code::kPermissionDenied);
}

}  // namespace
}  // namespace sealroot::stub_enclave
