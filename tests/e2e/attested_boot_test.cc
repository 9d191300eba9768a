// The app enclave's boot end to end, with this test process as the stub enclave: a sealed
// busybox image, the key release served over local attestation, sealroot-boot launched as a sim
// enclave (measured and signed), the sealed root mounted over FUSE inside the boot, the image's
// entrypoint run, its output and exit status relayed back.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/encoding.h"
#include "base/file.h"
#include "boot/spec/exec.h"
#include "local-attest/sim.h"
#include "stub-enclave/app_enclave.h"
#include "stub-enclave/launcher.h"
#include "stub-enclave/measure.h"
#include "stub-enclave/sigstruct.h"
#include "stub-enclave/src/exec_client.h"
#include "tests/e2e/sealed_image.h"
#include "tests/support/process.h"

namespace sealroot::boot {
namespace {

using testing::BuiltProgram;
using testing::TempDir;

constexpr char kMarker[] = "PLAINTEXT-MARKER-4b1d9f";
constexpr std::uint16_t kStubProdId = 1;
constexpr std::uint16_t kBootProdId = 2;
const stub_enclave::EnclaveConfig kEnclaveConfig{.heap_size = 1 << 20, .threads = 2};

// Image A runs as the non-root image user; image B echoes its stdin.
const char kConfigA[] =
    R"({"architecture":"amd64","os":"linux","config":{"Entrypoint":["sh","-c"],
       "Cmd":["echo hello from $NAME in $(pwd); id -u; cat /etc/motd"],"Env":["NAME=image-a"],
       "WorkingDir":"/home/app","User":"app"},"rootfs":{"type":"layers","diff_ids":[]}})";
const char kConfigB[] =
    R"({"architecture":"amd64","os":"linux","config":{"Cmd":["cat"]},"rootfs":{"type":"layers","diff_ids":[]}})";

// The release key the test seeds: printable, so that a shell in the container can look for it.
constexpr std::string_view kSeededKey = "sealroot-seeded-release-key-0042";

struct Suite {
  TempDir dir;
  std::string store;
  SecretBytes key{AsBytes(kSeededKey)};
  Sha256Digest root_a{}, root_b{};
  EvpPkeyPtr signing_key;
  local_attest::sgx::Measurement boot_mrenclave{};
  local_attest::sgx::Sigstruct boot_sig{};
  std::unique_ptr<local_attest::sgx::Tee> stub_tee;
};
Suite* suite = nullptr;

class AttestedBootTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite = new Suite;
    std::string rootfs = suite->dir / "rootfs";
    testing::MakeBusyboxRoot(rootfs, kMarker);
    suite->store = suite->dir / "store";
    auto sealed_a = testing::SealDirectory(suite->store, suite->key, rootfs, kConfigA);
    ASSERT_TRUE(sealed_a.ok()) << sealed_a.status().ToString();
    suite->root_a = *sealed_a;
    suite->root_b = testing::SealDirectory(suite->store, suite->key, rootfs, kConfigB).value();
    suite->signing_key = stub_enclave::GenerateSigningKey().value();
    auto image = stub_enclave::EnclaveImage::Load(BuiltProgram("sealroot-boot"), kEnclaveConfig).value();
    suite->boot_mrenclave = image.measurement().mr_enclave;
    suite->boot_sig = Sign(suite->boot_mrenclave);
    // The stub: another enclave of the same signer (product 1); this process plays its CPU.
    local_attest::sgx::EnclaveIdentity stub;
    stub.mr_enclave = Sha256Of(std::string_view("the enclave-agent build under test"));
    stub.mr_signer = stub_enclave::MrSignerOf(suite->boot_sig);
    stub.attributes.flags = local_attest::sgx::kFlagMode64Bit;
    stub.attributes.xfrm = 0x3;
    stub.isv_prod_id = kStubProdId;
    suite->stub_tee = local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(stub).value());
  }
  static void TearDownTestSuite() {
    delete suite;
    suite = nullptr;
  }

  static local_attest::sgx::Sigstruct Sign(const local_attest::sgx::Measurement& mr_enclave) {
    return stub_enclave::SignEnclave(suite->signing_key.get(), mr_enclave,
                                     {.isv_prod_id = kBootProdId, .isv_svn = 1})
        .value();
  }

  // This test plays the agent: each container's own keys and the last upper root its boot
  // reported (recorded only when it follows the one known, as the agent's keyring does).
  struct ContainerRecord {
    SecretBytes upper_key = SecretBytes::Random(32);
    SecretBytes exec_key = SecretBytes::Random(32);
    std::optional<Sha256Digest> upper_root;
  };
  ContainerRecord& Record(const std::string& container_id) {
    std::lock_guard lock(records_mu_);
    return records_[container_id];
  }

  stub_enclave::AppEnclaveSpec Spec(const std::string& container_id, const std::string& boot_spec,
                                    bool image_a = true) {
    stub_enclave::AppEnclaveSpec spec;
    {
      ContainerRecord& record = Record(container_id);
      std::lock_guard lock(records_mu_);
      spec.upper_key = record.upper_key.Clone();
      spec.exec_key = record.exec_key.Clone();
      spec.upper_root = record.upper_root;
    }
    spec.on_upper_commit = [this, container_id](const local_attest::UpperCommit& commit) {
      std::lock_guard lock(records_mu_);
      std::optional<Sha256Digest>& known = records_[container_id].upper_root;
      if (commit.previous != known) return FailedPrecondition("the commit does not follow the known state");
      known = commit.root;
      return OkStatus();
    };
    spec.container_id = container_id;
    spec.boot_spec = boot_spec;
    spec.store_dir = suite->store;
    spec.root_hash = image_a ? suite->root_a : suite->root_b;
    spec.key = suite->key.Clone();
    spec.state_dir = state_ / container_id;
    spec.boot_executable = BuiltProgram("sealroot-boot");
    spec.enclave_config = kEnclaveConfig;
    spec.sigstruct = suite->boot_sig;
    spec.boot_args = {"--stub-prod-id", std::to_string(kStubProdId)};
    spec.app_policy.mr_enclave = suite->boot_mrenclave;
    spec.app_policy.signer =
        local_attest::SignerPolicy{stub_enclave::MrSignerOf(suite->boot_sig), kBootProdId, 1};
    return spec;
  }

  static std::unique_ptr<stub_enclave::AppEnclave> Launch(stub_enclave::AppEnclaveSpec spec) {
    auto launched = stub_enclave::AppEnclave::Launch(*suite->stub_tee, std::move(spec));
    EXPECT_TRUE(launched.ok()) << launched.status().ToString();
    return launched.ok() ? std::move(*launched) : nullptr;
  }

  static std::string ReadAllFrom(stub_enclave::EnclaveProcess& app, bool stderr_stream = false) {
    std::string out;
    while (true) {
      auto chunk = stderr_stream ? app.ReadStderr(4096) : app.ReadStdout(4096);
      if (!chunk.ok() || chunk->empty()) return out;
      out += *chunk;
    }
  }

  struct Outcome {
    int exit_code = -1;
    std::string out, err;
  };
  static Outcome Finish(stub_enclave::AppEnclave& app) {
    Outcome o;
    std::thread err_reader([&] { o.err = ReadAllFrom(app, true); });
    o.out = ReadAllFrom(app);
    err_reader.join();
    auto code = app.Wait();
    EXPECT_TRUE(code.ok()) << code.status().ToString();
    o.exit_code = code.ok() ? *code : -1;
    return o;
  }

  struct HandLaunch {
    int exit_code = -1;
    std::string err;
  };
  // What a hostile host can do by hand: launch the genuine boot (measured, signed) with
  // `config_id` against `socket`, giving it a spec file of its choosing.
  HandLaunch LaunchBootByHand(const std::string& socket, const std::string& spec_text,
                              const local_attest::sgx::ConfigId& config_id) {
    std::string dir = state_ / ("by-hand-" + std::to_string(++hand_launches_));
    EXPECT_TRUE(MakeDirs(dir + "/scratch").ok());
    EXPECT_TRUE(WriteFileAtomic(dir + "/spec.json", spec_text).ok());
    stub_enclave::LaunchSpec launch;
    launch.executable = BuiltProgram("sealroot-boot");
    launch.config = kEnclaveConfig;
    launch.sigstruct = suite->boot_sig;
    launch.args = {"--attest-socket",  socket,      "--store",        suite->store,     "--spec",
                   dir + "/spec.json", "--scratch", dir + "/scratch", "--stub-prod-id", "1"};
    launch.config_id = config_id;
    UniqueFd err(::open((dir + "/err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    launch.stderr_fd = err.get();
    HandLaunch out;
    auto launched = stub_enclave::LaunchEnclave(launch);
    EXPECT_TRUE(launched.ok()) << launched.status().ToString();
    if (launched.ok()) {
      auto code = (*launched)->Wait();
      out.exit_code = code.ok() ? *code : -1;
    }
    auto err_text = ReadFile(dir + "/err");
    out.err = err_text.ok() ? *err_text : "";
    return out;
  }

  TempDir state_;
  int hand_launches_ = 0;
  std::mutex records_mu_;
  std::map<std::string, ContainerRecord> records_;  // std::map: references stay valid
};

TEST_F(AttestedBootTest, ImageEntrypointRunsAsTheImageUserFromTheSealedRoot) {
  auto app = Launch(Spec("ctr-a", R"({"hostname":"ctr-a"})"));
  ASSERT_TRUE(app);
  Outcome o = Finish(*app);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "hello from image-a in /home/app\n1000\n" + std::string(kMarker) + "\n");
  EXPECT_TRUE(app->release_status().ok()) << app->release_status().ToString();
}

TEST_F(AttestedBootTest, SpecArgsEnvAndCwdOverrideTheImage) {
  auto app = Launch(Spec("ctr-args", R"({"process":{"args":["sh","-c","echo $NAME $EXTRA; pwd; exit 7"],
      "env":["NAME=from-spec","EXTRA=x"],"cwd":"/tmp","user":{"uid":4242,"gid":4242}}})"));
  ASSERT_TRUE(app);
  Outcome o = Finish(*app);
  EXPECT_EQ(o.exit_code, 7) << o.err;
  EXPECT_EQ(o.out, "from-spec x\n/tmp\n");
}

TEST_F(AttestedBootTest, StdinStreamsToTheContainer) {
  auto app = Launch(Spec("ctr-cat", "{}", /*image_a=*/false));
  ASSERT_TRUE(app);
  ASSERT_TRUE(app->WriteStdin("through the pipe\n").ok());
  ASSERT_TRUE(app->CloseStdin().ok());
  Outcome o = Finish(*app);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "through the pipe\n");
}

TEST_F(AttestedBootTest, SignalsReachTheEntrypoint) {
  auto term = Launch(Spec("ctr-term", R"({"process":{"args":["sh","-c","echo up; exec sleep 60"]}})"));
  auto kill = Launch(Spec("ctr-kill", R"({"process":{"args":["sh","-c","echo up; exec sleep 60"]}})"));
  ASSERT_TRUE(term && kill);
  EXPECT_EQ(term->ReadStdout(3).value(), "up\n");  // running: the root was mounted and entered
  EXPECT_EQ(kill->ReadStdout(3).value(), "up\n");
  EXPECT_TRUE(term->Signal(SIGTERM).ok());
  EXPECT_TRUE(kill->Signal(SIGKILL).ok());
  EXPECT_EQ(term->Wait().value(), 128 + SIGTERM);
  EXPECT_EQ(kill->Wait().value(), 128 + SIGKILL);
  EXPECT_EQ(term->Signal(SIGTERM).code(), Code::kNotFound);
}

TEST_F(AttestedBootTest, ImpostorBootGetsNoKeyAndTheContainerDoesNotStart) {
  // An honest but different build: one byte appended changes MRENCLAVE, not the signer.
  std::string impostor = state_ / "impostor-boot";
  ASSERT_TRUE(testing::Shell("cp '" + BuiltProgram("sealroot-boot") + "' '" + impostor +
                             "' && printf x >> '" + impostor + "'")
                  .ok());
  auto image = stub_enclave::EnclaveImage::Load(impostor, kEnclaveConfig).value();
  stub_enclave::AppEnclaveSpec spec = Spec("ctr-impostor", "{}");
  spec.boot_executable = impostor;
  spec.sigstruct = Sign(image.measurement().mr_enclave);
  auto app = Launch(std::move(spec));
  ASSERT_TRUE(app);
  Outcome o = Finish(*app);
  EXPECT_NE(o.exit_code, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find("refused this enclave"), std::string::npos) << o.err;
  EXPECT_EQ(app->release_status().code(), Code::kPermissionDenied);
  EXPECT_NE(app->release_status().message().find("MRENCLAVE"), std::string::npos)
      << app->release_status().message();
}

TEST_F(AttestedBootTest, ReleaseForContainerACannotStartContainerB) {
  auto a = Launch(Spec("ctr-a2", R"({"process":{"args":["sh","-c","echo up; exec sleep 60"]}})"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->ReadStdout(3).value(), "up\n");
  // The host launches B's app enclave (B's CONFIGID) but points it at A's release socket.
  std::string b_spec = R"({"process":{"args":["echo","b ran"]}})";
  HandLaunch b = LaunchBootByHand(state_ / "ctr-a2/attest.sock", b_spec,
                                  local_attest::ContainerConfigId("ctr-b", Sha256Of(b_spec)));
  EXPECT_NE(b.exit_code, 0);
  EXPECT_NE(b.err.find("refused this enclave"), std::string::npos) << b.err;
  EXPECT_EQ(a->release_status().code(), Code::kOk);  // A's own boot got A's key earlier
  EXPECT_TRUE(a->Signal(SIGKILL).ok());
  EXPECT_EQ(a->Wait().value(), 128 + SIGKILL);
}

TEST_F(AttestedBootTest, SpecChangedByTheHostIsRefused) {
  stub_enclave::AppEnclaveSpec spec =
      Spec("ctr-swap", R"({"process":{"args":["sh","-c","echo up; exec sleep 60"]}})");
  std::string released = spec.boot_spec;
  auto holder = Launch(std::move(spec));
  ASSERT_TRUE(holder);
  ASSERT_EQ(holder->ReadStdout(3).value(), "up\n");
  // A second, genuine boot launched for the same container and released digest (so the agent
  // releases the key to it), reading a spec file the host rewrote.
  HandLaunch forged =
      LaunchBootByHand(state_ / "ctr-swap/attest.sock", R"({"process":{"args":["echo","forged"]}})",
                       local_attest::ContainerConfigId("ctr-swap", Sha256Of(released)));
  EXPECT_EQ(forged.exit_code, 3);  // verification failure
  EXPECT_NE(forged.err.find("does not match the released digest"), std::string::npos) << forged.err;
  EXPECT_TRUE(holder->Signal(SIGKILL).ok());
}

TEST_F(AttestedBootTest, EightConcurrentContainersFromTwoImages) {
  std::vector<std::unique_ptr<stub_enclave::AppEnclave>> apps;
  for (int i = 0; i < 8; ++i) {
    std::string id = "ctr-par-" + std::to_string(i);
    std::string spec = i % 2 == 0 ? R"({"process":{"env":["NAME=)" + id + R"("]}})" : "{}";
    apps.push_back(Launch(Spec(id, spec, /*image_a=*/i % 2 == 0)));
    ASSERT_TRUE(apps.back());
    if (i % 2 == 1) {
      ASSERT_TRUE(apps.back()->CloseStdin().ok());
    }
  }
  for (int i = 0; i < 8; ++i) {
    Outcome o = Finish(*apps[i]);
    EXPECT_EQ(o.exit_code, 0) << i << ": " << o.err;
    if (i % 2 == 0) {
      EXPECT_EQ(o.out.substr(0, o.out.find('\n')),
                "hello from ctr-par-" + std::to_string(i) + " in /home/app");
    } else {
      EXPECT_EQ(o.out, "");
    }
  }
}

TEST_F(AttestedBootTest, PersistentUpperKeepsWritesSealedAcrossBoots) {
  const std::string secret = "upper-secret-" + std::to_string(::getpid());
  std::string upper = state_ / "upper";
  stub_enclave::AppEnclaveSpec first =
      Spec("ctr-upper", R"({"process":{"args":["sh","-c","echo )" + secret +
                            R"( > /etc/note; rm /etc/motd"],"user":{"uid":0,"gid":0}}})");
  first.upper_dir = upper;
  auto writer = Launch(std::move(first));
  ASSERT_TRUE(writer);
  Outcome wrote = Finish(*writer);
  ASSERT_EQ(wrote.exit_code, 0) << wrote.err;
  writer.reset();

  stub_enclave::AppEnclaveSpec second =
      Spec("ctr-upper", R"({"process":{"args":["sh","-c","cat /etc/note; ls /etc/motd"]}})");
  second.upper_dir = upper;
  auto reader = Launch(std::move(second));
  ASSERT_TRUE(reader);
  Outcome read = Finish(*reader);
  EXPECT_EQ(read.out, secret + "\n");
  EXPECT_NE(read.exit_code, 0);  // the deletion persisted too
  // What the container wrote is on the host only sealed.
  EXPECT_EQ(testing::Shell("grep -rl '" + secret + "' '" + upper + "'").out, "");
  EXPECT_NE(testing::Shell("find '" + upper + "' -type f | wc -l").out, "0\n");
}

// The host's moves against a persistent upper: each one must leave the boot refusing to serve
// (a non-zero exit that names the refusal, nothing on stdout).
class UpperPinningTest : public AttestedBootTest {
 protected:
  // One boot of container `id` over `upper` running `script` as root.
  Outcome Boot(const std::string& id, const std::string& upper, const std::string& script) {
    stub_enclave::AppEnclaveSpec spec =
        Spec(id, R"({"process":{"args":["sh","-c",")" + script + R"("],"user":{"uid":0,"gid":0}}})");
    spec.state_dir = state_ / (id + "-" + std::to_string(++boots_));
    spec.upper_dir = upper;
    auto app = Launch(std::move(spec));
    if (!app) return {};
    return Finish(*app);
  }
  void ExpectRefused(const Outcome& o, std::string_view why) {
    EXPECT_NE(o.exit_code, 0);
    EXPECT_EQ(o.out, "");
    EXPECT_NE(o.err.find(why), std::string::npos) << o.err;
  }
  int boots_ = 0;
};

TEST_F(UpperPinningTest, UpperOfAnotherContainerCopiedIntoItsPlaceIsRefused) {
  std::string a = state_ / "upper-a", b = state_ / "upper-b";
  ASSERT_EQ(Boot("ctr-own-a", a, "echo private-to-a > /etc/note").exit_code, 0);
  ASSERT_TRUE(testing::Shell("cp -a '" + a + "' '" + b + "'").ok());
  ExpectRefused(Boot("ctr-own-b", b, "cat /etc/note"), "upper");
}

TEST_F(UpperPinningTest, RolledBackUpperIsRefused) {
  std::string upper = state_ / "upper", saved = state_ / "upper-v1";
  ASSERT_EQ(Boot("ctr-rollback", upper, "echo v1 > /etc/note").exit_code, 0);
  ASSERT_TRUE(testing::Shell("cp -a '" + upper + "' '" + saved + "'").ok());
  ASSERT_EQ(Boot("ctr-rollback", upper, "echo v2 > /etc/note").exit_code, 0);
  ASSERT_TRUE(testing::Shell("rm -rf '" + upper + "' && mv '" + saved + "' '" + upper + "'").ok());
  ExpectRefused(Boot("ctr-rollback", upper, "cat /etc/note"), "not the expected one");
}

TEST_F(UpperPinningTest, EmptiedUpperIsRefusedWhenAStateIsExpected) {
  std::string upper = state_ / "upper";
  ASSERT_EQ(Boot("ctr-emptied", upper, "echo mine > /etc/note").exit_code, 0);
  ASSERT_TRUE(testing::Shell("rm -rf '" + upper + "'/*").ok());
  ExpectRefused(Boot("ctr-emptied", upper, "cat /etc/note; true"), "no state");
}

TEST_F(UpperPinningTest, RestartOfTheSameContainerSeesItsOwnFiles) {
  std::string upper = state_ / "upper";
  ASSERT_EQ(Boot("ctr-restart", upper, "echo first > /etc/note; sync").exit_code, 0);
  ASSERT_EQ(Boot("ctr-restart", upper, "echo second >> /etc/note").exit_code, 0);
  Outcome o = Boot("ctr-restart", upper, "cat /etc/note");
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "first\nsecond\n");
}

TEST_F(AttestedBootTest, ExecRunsInsideTheContainerRootNeverOnTheHost) {
  auto app = Launch(
      Spec("ctr-exec", R"({"hostname":"exec-box","process":{"args":["sh","-c","echo up; exec sleep 60"]}})"));
  ASSERT_TRUE(app);
  ASSERT_EQ(app->ReadStdout(3).value(), "up\n");
  auto exec = app->Exec(
      R"({"process":{"args":["sh","-c","cat /etc/motd; hostname; echo $$; id -u; read x; echo got $x"],
      "user":{"uid":1000,"gid":1000}}})");
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  ASSERT_TRUE((*exec)->WriteStdin("input\n").ok());
  std::string out = ReadAllFrom(**exec);
  EXPECT_EQ((*exec)->Wait().value(), 0);
  // The sealed image's motd, the container's hostname and PID namespace: not the host's.
  EXPECT_EQ(out, std::string(kMarker) + "\nexec-box\n3\n1000\ngot input\n");

  auto sleeper = app->Exec(R"({"process":{"args":["sleep","60"]}})");
  ASSERT_TRUE(sleeper.ok()) << sleeper.status().ToString();
  EXPECT_TRUE((*sleeper)->Signal(SIGTERM).ok());
  EXPECT_EQ((*sleeper)->Wait().value(), 128 + SIGTERM);

  auto missing = app->Exec(R"({"process":{"args":["no-such-tool"]}})");
  EXPECT_EQ(missing.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("not found in the container's PATH"), std::string::npos)
      << missing.status().message();
  EXPECT_TRUE(app->Signal(SIGKILL).ok());
  EXPECT_EQ(app->Wait().value(), 128 + SIGKILL);
  EXPECT_EQ(app->Exec(R"({"process":{"args":["true"]}})").status().code(), Code::kFailedPrecondition);
}

// Reads `process`'s stdout until `text` arrived; all that was read.
std::string ReadUntil(stub_enclave::EnclaveProcess& process, const std::string& text) {
  std::string out;
  while (out.find(text) == std::string::npos) {
    auto chunk = process.ReadStdout(4096);
    if (!chunk.ok() || chunk->empty()) break;
    out += *chunk;
  }
  return out;
}

TEST_F(AttestedBootTest, TerminalsOfTheEntrypointAndOfAnExecAreResizedByTheAgent) {
  auto app = Launch(Spec("ctr-tty", R"({"process":{"terminal":true,"consoleSize":{"height":24,"width":80},
      "args":["sh","-c","[ -t 0 ] && stty size; read x; stty size; exec sleep 60"]}})"));
  ASSERT_TRUE(app);
  EXPECT_EQ(ReadUntil(*app, "\r\n"), "24 80\r\n");
  ASSERT_TRUE(app->ResizeTerminal(40, 120).ok());
  ASSERT_TRUE(app->WriteStdin("go\n").ok());
  // The pty echoes the line typed, then the new size.
  EXPECT_EQ(ReadUntil(*app, "40 120\r\n"), "go\r\n40 120\r\n");

  auto exec = app->Exec(R"({"process":{"terminal":true,"consoleSize":{"height":10,"width":20},
      "args":["sh","-c","[ -t 1 ] && stty size; read x; stty size"]}})");
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  EXPECT_EQ(ReadUntil(**exec, "\r\n"), "10 20\r\n");
  ASSERT_TRUE((*exec)->ResizeTerminal(11, 22).ok());
  ASSERT_TRUE((*exec)->WriteStdin("go\n").ok());
  EXPECT_EQ(ReadAllFrom(**exec), "go\r\n11 22\r\n");
  EXPECT_EQ((*exec)->Wait().value(), 0);

  EXPECT_TRUE(app->Signal(SIGKILL).ok());
  EXPECT_EQ(app->Wait().value(), 128 + SIGKILL);
}

TEST_F(AttestedBootTest, ForgedExecRequestFromTheHostIsRefused) {
  auto app = Launch(Spec("ctr-forge", R"({"process":{"args":["sh","-c","echo up; exec sleep 60"]}})"));
  ASSERT_TRUE(app);
  ASSERT_EQ(app->ReadStdout(3).value(), "up\n") << ReadAllFrom(*app, true);
  // The host knows the socket but not the container's exec key.
  SecretBytes guessed = SecretBytes::Random(32);
  auto forged =
      stub_enclave::StartExec(state_ / "ctr-forge/exec.sock", guessed, R"({"process":{"args":["id"]}})",
                              std::chrono::steady_clock::now() + std::chrono::seconds(5));
  ASSERT_FALSE(forged.ok());
  // The boot checks the request's MAC before anything else and hangs up: the client reads the
  // refusal, or, when the hang-up wins the race with its sending of the stdio descriptors, a
  // broken pipe. Either way nothing ran.
  const std::string& why = forged.status().message();
  EXPECT_TRUE(why.find("not authenticated") != std::string::npos ||
              why.find("Broken pipe") != std::string::npos ||
              why.find("Connection reset") != std::string::npos)
      << why;
  EXPECT_TRUE(app->Signal(SIGKILL).ok());
}

TEST_F(AttestedBootTest, ExecKeyOfAnotherContainerIsRefused) {
  const std::string sleeper = R"({"process":{"args":["sh","-c","echo up; exec sleep 60"]}})";
  auto a = Launch(Spec("ctr-keys-a", sleeper));
  auto b = Launch(Spec("ctr-keys-b", sleeper));
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->ReadStdout(3).value(), "up\n");
  ASSERT_EQ(b->ReadStdout(3).value(), "up\n");
  // What A's boot holds (its exec key) does not authenticate an exec to B, though both run the
  // same image with the same store key.
  auto forged = stub_enclave::StartExec(state_ / "ctr-keys-b/exec.sock", Record("ctr-keys-a").exec_key,
                                        R"({"process":{"args":["id"]}})",
                                        std::chrono::steady_clock::now() + std::chrono::seconds(5));
  ASSERT_FALSE(forged.ok());
  auto own = stub_enclave::StartExec(state_ / "ctr-keys-a/exec.sock", Record("ctr-keys-a").exec_key,
                                     R"({"process":{"args":["true"]}})",
                                     std::chrono::steady_clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ((*own)->Wait().value(), 0);
  EXPECT_TRUE(a->Signal(SIGKILL).ok());
  EXPECT_TRUE(b->Signal(SIGKILL).ok());
}

TEST_F(AttestedBootTest, NothingOfTheContainerIsLeftOnTheHost) {
  std::string store_before = testing::Shell("cd '" + suite->store + "' && find . | sort").out;
  std::string state_dir;
  {
    stub_enclave::AppEnclaveSpec spec =
        Spec("ctr-clean",
             R"({"process":{"args":["sh","-c","echo data > /home/app/new; echo up; exec sleep 60"]}})");
    state_dir = spec.state_dir;
    auto app = Launch(std::move(spec));
    ASSERT_TRUE(app);
    ASSERT_EQ(app->ReadStdout(3).value(), "up\n");
    // While it runs, the host sees neither the FUSE mount nor the writable layer.
    EXPECT_EQ(ReadFile("/proc/self/mountinfo").value().find(state_dir), std::string::npos);
    EXPECT_EQ(testing::Shell("find '" + state_dir + "' -mindepth 1 | sort").out,
              state_dir + "/attest.sock\n" + state_dir + "/exec.sock\n" + state_dir + "/scratch\n" +
                  state_dir + "/spec.json\n");
  }  // RemoveContainer while running: the stub_enclave::AppEnclave kills the boot and cleans up
  EXPECT_NE(::access(state_dir.c_str(), F_OK), 0);
  EXPECT_EQ(ReadFile("/proc/self/mountinfo").value().find(state_dir), std::string::npos);
  EXPECT_EQ(testing::Shell("cd '" + suite->store + "' && find . | sort").out, store_before);
  // The store holds no plaintext of the image.
  EXPECT_EQ(testing::Shell("grep -rl '" + std::string(kMarker) + "' '" + suite->store + "'").out, "");
}

// With its own user namespace the container's root is an unprivileged host uid, yet the sealed
// root shows the image's ownership and stays writable (the FUSE server presents ids through the
// mapping).
TEST_F(AttestedBootTest, SealedRootLooksRightFromInsideAUserNamespace) {
  nlohmann::json spec = {
      {"process",
       {{"args",
         {"sh", "-c",
          "stat -c '%u %g' /etc/motd /home/app; id -u; cat /etc/motd; cat /proc/self/uid_map | tr -s ' ';"
          "echo w > /home/app/new && stat -c '%u %g' /home/app/new; chown 1000:1000 /home/app/new && "
          "stat -c '%u %g' /home/app/new"}},
        {"user", {{"uid", 0}, {"gid", 0}}}}},
      {"linux",
       {{"namespaces", {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "user"}}, {{"type", "ipc"}}}},
        {"uidMappings", {{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}}},
        {"gidMappings", {{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}}}}}};
  auto app = Launch(Spec("ctr-userns", spec.dump()));
  ASSERT_TRUE(app);
  Outcome o = Finish(*app);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  // The image (sealed by root) owns everything as 0:0; a chown inside stores the container's ids.
  EXPECT_EQ(o.out, "0 0\n0 0\n0\n" + std::string(kMarker) + "\n 0 200000 65536\n0 0\n1000 1000\n");
}

// What a root container would do to steal the keys: read every readable memory region of every
// process it can see, and their environment and command line, looking for the release key in
// raw and hex form. A process the scanner itself plants with the key in its environment proves
// that the scan finds what is there; nothing else may hold it.
TEST_F(AttestedBootTest, RootContainerScanningEveryVisibleProcessFindsNoKey) {
  std::string reversed(kSeededKey.rbegin(), kSeededKey.rend());  // the spec itself must not hold the key
  const std::string scan = R"(
k=$(echo ')" + reversed + R"(' | rev)
{ echo "$k"; printf %s "$k" | od -An -tx1 | tr -d ' \n'; echo; } > /tmp/pattern
K=$k sleep 600 & planted=$!
echo planted $planted
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$$" ] && continue
  for f in environ cmdline; do
    tr '\000' '\n' < $d/$f 2>/dev/null | grep -q -F -f /tmp/pattern && echo found $p $f
  done
  read_regions=0 in_mem=0
  while read range perms rest; do
    case $perms in r*) ;; *) continue ;; esac
    start=$((0x${range%-*})); size=$((0x${range#*-} - start))
    [ $size -gt 67108864 ] && continue
    dd if=$d/mem of=/tmp/region bs=4096 skip=$((start / 4096)) count=$((size / 4096)) 2>/dev/null &&
      read_regions=$((read_regions + 1))
    tr '\000' '\n' < /tmp/region | grep -q -F -f /tmp/pattern && in_mem=1
    rm -f /tmp/region
  done < $d/maps
  [ $in_mem = 1 ] && echo found $p mem
  echo scanned $p $read_regions
done
kill $planted)";
  nlohmann::json spec = {{"process", {{"args", {"sh", "-c", scan}}, {"user", {{"uid", 0}, {"gid", 0}}}}}};
  auto app = Launch(Spec("ctr-scan", spec.dump()));
  ASSERT_TRUE(app);
  Outcome o = Finish(*app);
  std::string planted;
  std::vector<std::string> found;
  bool scanned_init = false;
  std::istringstream lines(o.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("planted ", 0) == 0) planted = line.substr(8);
    if (line.rfind("found ", 0) == 0) found.push_back(line.substr(6));
    if (line.rfind("scanned 1 ", 0) == 0) scanned_init = line != "scanned 1 0";
  }
  EXPECT_TRUE(scanned_init) << "the container's PID 1 was not readable: " << o.out << o.err;
  EXPECT_EQ(found, (std::vector<std::string>{planted + " environ", planted + " mem"})) << o.out << o.err;
}

}  // namespace
}  // namespace sealroot::boot
