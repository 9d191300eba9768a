// The whole flow through the agent's API: enclave-agent runs as a sim stub enclave (this test
// process is its launcher and CPU) with a boot configured; a busybox image in a loopback
// registry is pulled and sealed, a container created and started (sealroot-boot launched as the
// container's app enclave, attested, booted from the sealed root), its output read and its exit
// status waited for, then removed — over ttrpc (the project's own client, as `sealroot ctl`
// uses) and over gRPC (Python grpcio from the project's protos). The agent's configuration is
// its measured manifest (the owner's workload policy in it); the boot's manifest names the
// agent it accepts. Also the "boot" config section, and `sealroot ctl` (CtlTest) as ctr and
// kubectl users expect it: exec streaming and exit codes, ps, pull's container id, --authfile,
// --grpc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "agent.pb.h"
#include "agent/server/agent.h"
#include "agent/server/config.h"
#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "health.pb.h"
#include "image.pb.h"
#include "rpc/ttrpc.h"
#include "stub-enclave/launcher.h"
#include "stub-enclave/measure.h"
#include "stub-enclave/sigstruct.h"
#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace sealroot::agent {
namespace {

namespace ttrpc = rpc::ttrpc;

using namespace std::chrono_literals;
using nlohmann::json;
using sealroot::testing::BuiltProgram;
using sealroot::testing::TempDir;

const stub_enclave::EnclaveConfig kLayout{.heap_size = 1 << 20, .threads = 2};

// The commands the tests run: the image owner's workload policy allows exactly these.
const std::vector<std::string> kHello = {"sh", "-c", "echo hello from $(id -u) in $(pwd)"};
const std::vector<std::string> kOverGrpc = {"sh", "-c", "echo over grpc; cat /etc/passwd | head -1; exit 3"};
const std::vector<std::string> kFails = {"sh", "-c", "echo failing >&2; exit 42"};
const std::vector<std::string> kSleeper = {"sh", "-c", "echo up; exec sleep 600"};
const std::vector<std::string> kMustNotRun = {"sh", "-c", "echo must not run"};
const std::vector<std::string> kProbe = {"sh", "-c", "head -1 /etc/passwd; exit 5"};
const std::vector<std::string> kWritePrivate = {"sh", "-c", "echo private-to-a > /etc/note"};
const std::vector<std::string> kReadPrivate = {"sh", "-c", "cat /etc/note"};
const std::vector<std::string> kTerminalSize = {"sh", "-c", "stty size; read x; stty size"};
const std::vector<std::string> kReadsStdin = {"sh", "-c",
                                              "read line; echo got $line; echo to stderr >&2; exit 4"};
const std::vector<std::string> kIsTerminal = {"sh", "-c", "test -t 1 && echo terminal"};

json OwnerPolicy() {
  return {{"args", {kHello, kOverGrpc, kFails, kSleeper, kMustNotRun, kWritePrivate, kReadPrivate}},
          {"cwd", {"/"}},
          {"exec", {kProbe, kTerminalSize, kReadsStdin, kIsTerminal}}};
}

// Built once: the registry with busybox, the signing key, the boot (with its manifest naming
// the agent's signer and product) and an impostor.
struct Material {
  TempDir dir;
  sealroot::testing::Registry registry;
  std::string image;
  EvpPkeyPtr key = stub_enclave::GenerateSigningKey().value();
  std::string boot_manifest;
  std::string boot_mrenclave;
  std::string python_gen;

  Material() {
    registry.Push(sealroot::testing::BuildBusyboxImage(dir / "layout", "busybox"), "busybox:1");
    image = registry.Ref("busybox:1");
    // The boot accepts keys only from an agent of this signer, product 1, SVN >= 1.
    boot_manifest =
        json{{"stub", {{"mrsigner", HexEncode(MrSigner())}, {"isv_prod_id", 1}, {"min_isv_svn", 1}}}}.dump();
    if (!WriteFileAtomic(dir / "boot-manifest.json", boot_manifest).ok())
      throw std::runtime_error("boot manifest");
    boot_mrenclave = HexEncode(SignFile(BuiltProgram("sealroot-boot"), 2, dir / "boot.sig")->enclave_hash);
    // The impostor: the genuine boot with one byte appended (another MRENCLAVE), same signer.
    std::filesystem::copy_file(BuiltProgram("sealroot-boot"), dir / "impostor");
    std::filesystem::permissions(dir / "impostor", std::filesystem::perms::owner_all);
    auto appended = sealroot::testing::Shell("printf x >> " + (dir / "impostor"));
    if (!appended.ok()) throw std::runtime_error("making the impostor: " + appended.err);
    (void)SignFile(dir / "impostor", 2, dir / "impostor.sig").value();
    // A "boot" that exits at once without attesting.
    std::filesystem::copy_file("/bin/busybox", dir / "dead-boot");
    (void)SignFile(dir / "dead-boot", 2, dir / "dead-boot.sig").value();
    python_gen = dir / "py";
    std::filesystem::create_directory(python_gen);
    auto generated = sealroot::testing::Run({"/usr/bin/python3", "-m", "grpc_tools.protoc", "-I",
                                             sealroot::testing::SourceDir() + "/agent/proto",
                                             "--python_out=" + python_gen, "--grpc_python_out=" + python_gen,
                                             sealroot::testing::SourceDir() + "/agent/proto/agent.proto",
                                             sealroot::testing::SourceDir() + "/agent/proto/image.proto",
                                             sealroot::testing::SourceDir() + "/agent/proto/oci.proto"});
    if (!generated.ok()) throw std::runtime_error("grpc_tools.protoc: " + generated.err);
  }

  local_attest::sgx::Measurement MrSigner() {
    return stub_enclave::MrSignerOf(
        stub_enclave::SignEnclave(key.get(), local_attest::sgx::Measurement{}, {}).value());
  }

  // Measures `path` with `manifest` (default: the boot's) and signs it with `signer` (default
  // the test key) as product `prod_id`; writes the SIGSTRUCT to `out` when given.
  Result<local_attest::sgx::Sigstruct> SignFile(const std::string& path, std::uint16_t prod_id,
                                                const std::string& out,
                                                const std::optional<std::string>& manifest = std::nullopt,
                                                EVP_PKEY* signer = nullptr) {
    SR_ASSIGN_OR_RETURN(auto image,
                        stub_enclave::EnclaveImage::Load(path, kLayout, manifest.value_or(boot_manifest)));
    SR_ASSIGN_OR_RETURN(local_attest::sgx::Sigstruct sig,
                        stub_enclave::SignEnclave(signer ? signer : key.get(), image.measurement().mr_enclave,
                                                  {.isv_prod_id = prod_id, .isv_svn = 1}));
    if (!out.empty()) {
      auto bytes = local_attest::sgx::BytesOf(sig);
      SR_RETURN_IF_ERROR(WriteFileAtomic(out, std::string(bytes.begin(), bytes.end())));
    }
    return sig;
  }
};
Material* material = nullptr;

class ApiFlowTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (material == nullptr) material = new Material();
  }

  void TearDown() override {
    if (agent_) {
      (void)agent_->Kill(SIGTERM);
      auto code = agent_->Wait();
      EXPECT_TRUE(code.ok() && *code == 0) << "agent exit: " << (code.ok() ? *code : -1) << "\n" << Log();
    }
  }

  // The agent's measured manifest: the whole configuration, self-contained.
  static std::string AgentManifest(const json& workload = OwnerPolicy(),
                                   const std::string& boot = BuiltProgram("sealroot-boot"),
                                   const std::string& boot_sig = material->dir / "boot.sig") {
    return json{{"registry", {{"tls_verify", false}}},
                // Signatures are the trust tests' business (tests/trust, tests/agent): accept this image.
                {"trust", {{"policy", json::parse(R"({"default": [{"type": "insecureAcceptAnything"}]})")}}},
                {"app_enclaves", json::array({json{{"mrenclave", material->boot_mrenclave}}})},
                {"workload", workload},
                {"boot",
                 {{"executable", boot},
                  {"sigstruct", boot_sig},
                  {"manifest", material->dir / "boot-manifest.json"},
                  {"heap_size", 1 << 20},
                  {"threads", 2}}}}
        .dump();
  }

  // Launches enclave-agent as a sim stub enclave with `manifest`, signed by the test key as
  // product 1 (or with `sigstruct`); only addresses and directories come from argv.
  Result<std::unique_ptr<stub_enclave::LaunchedEnclave>> Launch(
      const std::string& manifest, std::optional<local_attest::sgx::Sigstruct> sigstruct = std::nullopt,
      std::vector<std::string> extra_args = {}) {
    if (!sigstruct) {
      SR_ASSIGN_OR_RETURN(sigstruct, material->SignFile(BuiltProgram("enclave-agent"), 1, "", manifest));
    }
    log_fd_ = UniqueFd(::open((dir_ / "agent.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    stub_enclave::LaunchSpec spec;
    spec.executable = BuiltProgram("enclave-agent");
    spec.config = kLayout;
    spec.sigstruct = *sigstruct;
    spec.manifest = manifest;
    spec.args = {"--ttrpc",     "unix://" + (dir_ / "ttrpc.sock"),
                 "--grpc",      "unix://" + (dir_ / "grpc.sock"),
                 "--state-dir", dir_ / "state",
                 "--store",     dir_ / "store"};
    spec.args.insert(spec.args.end(), extra_args.begin(), extra_args.end());
    spec.stdout_fd = log_fd_.get();
    spec.stderr_fd = log_fd_.get();
    return stub_enclave::LaunchEnclave(spec);
  }

  void StartAgent(const std::string& manifest = AgentManifest(),
                  std::optional<local_attest::sgx::Sigstruct> sigstruct = std::nullopt,
                  std::vector<std::string> extra_args = {}) {
    auto launched = Launch(manifest, sigstruct, std::move(extra_args));
    ASSERT_TRUE(launched.ok()) << launched.status().ToString();
    agent_ = std::move(*launched);
    for (int i = 0; i < 300; ++i) {
      auto client = ttrpc::Client::Connect(*ListenAddress::Parse("unix://" + (dir_ / "ttrpc.sock")));
      if (client.ok() && (*client)->Call("grpc.Health", "Check", "").ok()) {
        client_ = std::move(*client);
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "the agent did not come up:\n" << Log();
  }

  template <typename Response, typename Request>
  Result<Response> Call(std::string_view service, std::string_view method, const Request& request) {
    SR_ASSIGN_OR_RETURN(std::string bytes, client_->Call(service, method, request.SerializeAsString()));
    Response response;
    if (!response.ParseFromString(bytes)) return Internal(std::string(method) + ": malformed response");
    return response;
  }
  Status Agent(std::string_view method, const google::protobuf::Message& request) {
    return client_->Call("grpc.AgentService", method, request.SerializeAsString()).status();
  }

  void Pull(const std::string& id) {
    ::grpc::PullImageRequest pull;
    pull.set_image(material->image);
    pull.set_container_id(id);
    auto pulled = Call<::grpc::PullImageResponse>("grpc.Image", "PullImage", pull);
    ASSERT_TRUE(pulled.ok()) << pulled.status().ToString() << "\n" << Log();
  }
  static ::grpc::CreateContainerRequest CreateRequest(const std::string& id,
                                                      const std::vector<std::string>& args) {
    ::grpc::CreateContainerRequest create;
    create.set_container_id(id);
    create.mutable_oci()->mutable_process();  // present even when empty: the image's own process
    for (const std::string& arg : args) create.mutable_oci()->mutable_process()->add_args(arg);
    if (!args.empty()) create.mutable_oci()->mutable_process()->set_cwd("/");
    return create;
  }
  // PullImage + CreateContainer with `args` (empty: the image's own command).
  void Create(const std::string& id, const std::vector<std::string>& args) {
    ASSERT_NO_FATAL_FAILURE(Pull(id));
    Status created = Agent("CreateContainer", CreateRequest(id, args));
    ASSERT_TRUE(created.ok()) << created.ToString();
  }
  Status Start(const std::string& id) {
    ::grpc::StartContainerRequest start;
    start.set_container_id(id);
    return Agent("StartContainer", start);
  }
  std::string ReadAll(const std::string& id, const std::string& exec_id = "") {
    std::string out;
    ::grpc::ReadStreamRequest read;
    read.set_container_id(id);
    read.set_exec_id(exec_id);
    read.set_len(4096);
    while (true) {
      auto chunk = Call<::grpc::ReadStreamResponse>("grpc.AgentService", "ReadStdout", read);
      if (!chunk.ok() || chunk->data().empty()) return out;
      out += chunk->data();
    }
  }
  int WaitFor(const std::string& id, const std::string& exec_id = "") {
    ::grpc::WaitProcessRequest wait;
    wait.set_container_id(id);
    wait.set_exec_id(exec_id);
    auto status = Call<::grpc::WaitProcessResponse>("grpc.AgentService", "WaitProcess", wait);
    EXPECT_TRUE(status.ok()) << status.status().ToString();
    return status.ok() ? status->status() : -1;
  }
  void Remove(const std::string& id) {
    ::grpc::RemoveContainerRequest remove;
    remove.set_container_id(id);
    ASSERT_TRUE(Agent("RemoveContainer", remove).ok());
  }
  std::string Log() {
    auto text = ReadFile(dir_ / "agent.log");
    return text.ok() ? *text : "";
  }

  TempDir dir_;
  UniqueFd log_fd_;
  std::unique_ptr<stub_enclave::LaunchedEnclave> agent_;
  std::unique_ptr<ttrpc::Client> client_;
};

TEST_F(ApiFlowTest, PullCreateStartReadWaitRemoveOverTtrpc) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("flow-ttrpc", kHello));
  Status started = Start("flow-ttrpc");
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << Log();
  EXPECT_EQ(ReadAll("flow-ttrpc"), "hello from 0 in /\n");
  EXPECT_EQ(WaitFor("flow-ttrpc"), 0);
  ASSERT_NO_FATAL_FAILURE(Remove("flow-ttrpc"));
  // Nothing of the container is left: its boot state, its upper, the image only it used.
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "state/boot"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "store/images"));
}

TEST_F(ApiFlowTest, PullCreateStartReadWaitRemoveOverGrpc) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  auto result = sealroot::testing::Run({"/usr/bin/python3",
                                        sealroot::testing::SourceDir() + "/tests/e2e/api_flow_grpc.py",
                                        material->python_gen, dir_ / "grpc.sock", material->image,
                                        "flow-grpc", kOverGrpc[0], kOverGrpc[1], kOverGrpc[2]});
  ASSERT_TRUE(result.ok()) << result.err;
  json out = json::parse(result.out, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << result.out;
  EXPECT_EQ(out["pull"], "OK");
  EXPECT_EQ(out["create"], "OK");
  EXPECT_EQ(out["start"], "OK") << Log();
  EXPECT_EQ(out["stdout"], "over grpc\nroot:x:0:0:root:/root:/bin/sh\n");
  EXPECT_EQ(out["wait"], "OK");
  EXPECT_EQ(out["status"], 3);
  EXPECT_EQ(out["remove"], "OK");
}

// A container with the agent's default spec lives in its own network namespace: the agent's
// loopback TCP listener (no authentication: DestroySandbox would stop the agent) is out of reach.
TEST_F(ApiFlowTest, ContainerCannotReachTheAgentsTcpListener) {
  const int port = sealroot::testing::FreePort();
  const std::vector<std::string> probe = {
      "sh", "-c",
      "nc -w 2 127.0.0.1 " + std::to_string(port) + " </dev/null && echo reached || echo unreachable"};
  json policy = OwnerPolicy();
  policy["args"].push_back(probe);
  ASSERT_NO_FATAL_FAILURE(StartAgent(AgentManifest(policy), std::nullopt,
                                     {"--ttrpc", "tcp://127.0.0.1:" + std::to_string(port)}));
  ASSERT_TRUE(sealroot::testing::WaitForPort(port));
  ASSERT_NO_FATAL_FAILURE(Create("probe-tcp", probe));
  ASSERT_TRUE(Start("probe-tcp").ok()) << Log();
  EXPECT_EQ(ReadAll("probe-tcp"), "unreachable\n");
  EXPECT_EQ(WaitFor("probe-tcp"), 0);
  EXPECT_TRUE(client_->Call("grpc.Health", "Check", "").ok());
  ASSERT_NO_FATAL_FAILURE(Remove("probe-tcp"));
}

TEST_F(ApiFlowTest, ContainerExitingNonZeroReportsItsStatus) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("fails", kFails));
  ASSERT_TRUE(Start("fails").ok()) << Log();
  EXPECT_EQ(WaitFor("fails"), 42);
  ASSERT_NO_FATAL_FAILURE(Remove("fails"));
}

TEST_F(ApiFlowTest, SignalProcessKillEndsTheContainer) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("sleeper", kSleeper));
  ASSERT_TRUE(Start("sleeper").ok()) << Log();
  ::grpc::ReadStreamRequest read;
  read.set_container_id("sleeper");
  read.set_len(3);
  auto first = Call<::grpc::ReadStreamResponse>("grpc.AgentService", "ReadStdout", read);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->data(), "up\n");
  ::grpc::SignalProcessRequest kill;
  kill.set_container_id("sleeper");
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(Agent("SignalProcess", kill).ok());
  EXPECT_EQ(WaitFor("sleeper"), 128 + SIGKILL);
  ASSERT_NO_FATAL_FAILURE(Remove("sleeper"));
}

TEST_F(ApiFlowTest, ImpostorBootGetsNoKeyAndTheContainerDoesNotStart) {
  ASSERT_NO_FATAL_FAILURE(
      StartAgent(AgentManifest(OwnerPolicy(), material->dir / "impostor", material->dir / "impostor.sig")));
  ASSERT_NO_FATAL_FAILURE(Create("impostor", kMustNotRun));
  Status started = Start("impostor");
  EXPECT_EQ(started.code(), Code::kPermissionDenied) << started.ToString();
  EXPECT_NE(started.message().find("MRENCLAVE mismatch"), std::string::npos) << started.ToString();
  ::grpc::WaitProcessRequest wait;
  wait.set_container_id("impostor");
  EXPECT_EQ(Agent("WaitProcess", wait).code(), Code::kFailedPrecondition);  // never started
  ASSERT_NO_FATAL_FAILURE(Remove("impostor"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "state/boot"));
}

TEST_F(ApiFlowTest, BootDyingBeforeAttestationFailsStartContainer) {
  ASSERT_NO_FATAL_FAILURE(
      StartAgent(AgentManifest(OwnerPolicy(), material->dir / "dead-boot", material->dir / "dead-boot.sig")));
  ASSERT_NO_FATAL_FAILURE(Create("dead", kMustNotRun));
  Status started = Start("dead");
  EXPECT_EQ(started.code(), Code::kFailedPrecondition) << started.ToString();
  EXPECT_NE(started.message().find("exited before it attested"), std::string::npos) << started.ToString();
  ASSERT_NO_FATAL_FAILURE(Remove("dead"));
}

TEST_F(ApiFlowTest, ExecOfACommandThePolicyDoesNotListIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("no-exec", kSleeper));
  ASSERT_TRUE(Start("no-exec").ok()) << Log();
  ::grpc::ExecProcessRequest exec;
  exec.set_container_id("no-exec");
  exec.set_exec_id("shell");
  exec.mutable_process()->add_args("/bin/sh");
  Status refused = Agent("ExecProcess", exec);
  EXPECT_EQ(refused.code(), Code::kPermissionDenied) << refused.ToString();
  EXPECT_NE(refused.message().find("process.args"), std::string::npos) << refused.ToString();
  // Removed while running: the boot is killed and its state goes with it.
  ASSERT_NO_FATAL_FAILURE(Remove("no-exec"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "state/boot"));
}

TEST_F(ApiFlowTest, ExecThePolicyListsRunsInsideTheContainerRoot) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("with-exec", kSleeper));
  ASSERT_TRUE(Start("with-exec").ok()) << Log();
  ::grpc::ExecProcessRequest exec;
  exec.set_container_id("with-exec");
  exec.set_exec_id("probe");
  for (const std::string& arg : kProbe) exec.mutable_process()->add_args(arg);
  exec.mutable_process()->set_cwd("/");
  Status started = Agent("ExecProcess", exec);
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << Log();
  // The image's /etc/passwd, not the host's: the exec runs in the container's sealed root.
  EXPECT_EQ(ReadAll("with-exec", "probe"), "root:x:0:0:root:/root:/bin/sh\n");
  EXPECT_EQ(WaitFor("with-exec", "probe"), 5);
  ASSERT_NO_FATAL_FAILURE(Remove("with-exec"));
}

TEST_F(ApiFlowTest, TtyWinResizeReachesAnExecsTerminal) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("with-tty", kSleeper));
  ASSERT_TRUE(Start("with-tty").ok()) << Log();
  ::grpc::ExecProcessRequest exec;
  exec.set_container_id("with-tty");
  exec.set_exec_id("tty");
  for (const std::string& arg : kTerminalSize) exec.mutable_process()->add_args(arg);
  exec.mutable_process()->set_cwd("/");
  exec.mutable_process()->set_terminal(true);
  exec.mutable_process()->mutable_consolesize()->set_height(10);
  exec.mutable_process()->mutable_consolesize()->set_width(20);
  Status started = Agent("ExecProcess", exec);
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << Log();
  ::grpc::ReadStreamRequest read;
  read.set_container_id("with-tty");
  read.set_exec_id("tty");
  std::string first;
  while (first.find("\r\n") == std::string::npos) {
    auto chunk = Call<::grpc::ReadStreamResponse>("grpc.AgentService", "ReadStdout", read);
    ASSERT_TRUE(chunk.ok() && !chunk->data().empty()) << first;
    first += chunk->data();
  }
  EXPECT_EQ(first, "10 20\r\n");
  auto resized = sealroot::testing::Run({BuiltProgram("sealroot"), "ctl", "resize", "with-tty", "--exec-id",
                                         "tty", "--rows", "11", "--columns", "22", "--address",
                                         "unix://" + (dir_ / "ttrpc.sock")});
  ASSERT_EQ(resized.exit_code, 0) << resized.err;
  ::grpc::WriteStreamRequest write;
  write.set_container_id("with-tty");
  write.set_exec_id("tty");
  write.set_data("go\n");
  ASSERT_TRUE(Agent("WriteStdin", write).ok());
  EXPECT_EQ(ReadAll("with-tty", "tty"), "go\r\n11 22\r\n");
  EXPECT_EQ(WaitFor("with-tty", "tty"), 0);
  // The container's own process has no terminal.
  ::grpc::TtyWinResizeRequest resize;
  resize.set_container_id("with-tty");
  resize.set_row(11);
  resize.set_column(22);
  EXPECT_EQ(Agent("TtyWinResize", resize).code(), Code::kFailedPrecondition);
  ASSERT_NO_FATAL_FAILURE(Remove("with-tty"));
}

TEST_F(ApiFlowTest, UpperOfAnotherContainerCopiedIntoItsPlaceIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("owner-a", kWritePrivate));
  ASSERT_TRUE(Start("owner-a").ok()) << Log();
  ASSERT_EQ(WaitFor("owner-a"), 0) << Log();
  ASSERT_NO_FATAL_FAILURE(Create("thief-b", kReadPrivate));
  // The host puts A's writable layer where B's boot will look for B's.
  const std::string containers = dir_ / "state/containers";
  auto copied = sealroot::testing::Shell("rm -rf '" + containers + "/thief-b/upper' && cp -a '" + containers +
                                         "/owner-a/upper' '" + containers + "/thief-b/upper'");
  ASSERT_TRUE(copied.ok()) << copied.err;
  Status started = Start("thief-b");
  if (started.ok()) {
    EXPECT_EQ(ReadAll("thief-b"), "");
    EXPECT_NE(WaitFor("thief-b"), 0);
    ::grpc::ReadStreamRequest read;
    read.set_container_id("thief-b");
    read.set_len(4096);
    auto err = Call<::grpc::ReadStreamResponse>("grpc.AgentService", "ReadStderr", read);
    ASSERT_TRUE(err.ok()) << err.status().ToString();
    EXPECT_NE(err->data().find("upper"), std::string::npos) << err->data();
  }
  EXPECT_EQ(Log().find("private-to-a"), std::string::npos);
}

// The attack: the host asks the agent to run a command of its choosing (a tar of the decrypted
// image on stdout). With no owner policy the container runs exactly the image's command.
TEST_F(ApiFlowTest, HostChosenCommandIsRefusedAndTheImagesOwnRuns) {
  ASSERT_NO_FATAL_FAILURE(StartAgent(AgentManifest(json::object())));
  ASSERT_NO_FATAL_FAILURE(Pull("c1"));
  auto ctl = sealroot::testing::Run({BuiltProgram("sealroot"), "ctl", "create", "c1", "--address",
                                     "unix://" + (dir_ / "ttrpc.sock"), "--", "/bin/tar", "c", "/"});
  EXPECT_NE(ctl.exit_code, 0);
  EXPECT_NE(ctl.err.find("process.args"), std::string::npos) << ctl.err;
  EXPECT_EQ(Agent("CreateContainer", CreateRequest("c1", {"/bin/tar", "c", "/"})).code(),
            Code::kPermissionDenied);
  ::grpc::CreateContainerRequest preload = CreateRequest("c1", {});
  preload.mutable_oci()->mutable_process()->add_env("LD_PRELOAD=/tmp/x.so");
  Status env = Agent("CreateContainer", preload);
  EXPECT_EQ(env.code(), Code::kPermissionDenied);
  EXPECT_NE(env.message().find("process.env: LD_PRELOAD"), std::string::npos) << env.ToString();

  ASSERT_TRUE(Agent("CreateContainer", CreateRequest("c1", {})).ok());
  Status started = Start("c1");
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << Log();
  EXPECT_EQ(ReadAll("c1"), "hello from busybox\n");
  EXPECT_EQ(WaitFor("c1"), 0);
  ASSERT_NO_FATAL_FAILURE(Remove("c1"));
}

TEST_F(ApiFlowTest, OwnerPolicyAllowsOneExtraArgvAndNothingNextToIt) {
  const std::vector<std::string> owner = {"sh", "-c", "echo owner-allowed"};
  ASSERT_NO_FATAL_FAILURE(StartAgent(AgentManifest({{"args", {owner}}})));
  ASSERT_NO_FATAL_FAILURE(Pull("owned"));
  std::vector<std::string> longer = owner;
  longer.push_back("extra");
  ::grpc::CreateContainerRequest refused = CreateRequest("owned", longer);
  refused.mutable_oci()->mutable_process()->clear_cwd();
  EXPECT_EQ(Agent("CreateContainer", refused).code(), Code::kPermissionDenied);
  ::grpc::CreateContainerRequest allowed = CreateRequest("owned", owner);
  allowed.mutable_oci()->mutable_process()->clear_cwd();
  ASSERT_TRUE(Agent("CreateContainer", allowed).ok());
  ASSERT_TRUE(Start("owned").ok()) << Log();
  EXPECT_EQ(ReadAll("owned"), "owner-allowed\n");
  EXPECT_EQ(WaitFor("owned"), 0);
}

// The workload policy may live with the owner's key broker rather than in the manifest: the agent
// fetches it after attesting, and that policy alone decides. A host that stops the broker stops
// containers from being created; it never gets a more permissive policy.
TEST_F(ApiFlowTest, TheWorkloadPolicyFromTheOwnersBrokerDecides) {
  const std::vector<std::string> owner = {"sh", "-c", "echo allowed-by-the-broker"};
  ASSERT_TRUE(MakeDirs(dir_ / "resources/default/policy", 0700).ok());
  ASSERT_TRUE(
      WriteFileAtomic(dir_ / "resources/default/policy/workload", json{{"args", {owner}}}.dump(), 0600).ok());
  json trusted = {{"trusted", {{{"mrsigner", HexEncode(material->MrSigner())}, {"isv_prod_id", 1}}}}};
  ASSERT_TRUE(WriteFileAtomic(dir_ / "broker-policy.json", trusted.dump()).ok());
  const int port = sealroot::testing::FreePort();
  auto start_broker = [&] {
    return std::make_unique<sealroot::testing::BackgroundProcess>(
        std::vector<std::string>{BuiltProgram("sealroot"), "keyprovider", "--kbs", "--log-level", "info",
                                 "--listen", "127.0.0.1:" + std::to_string(port), "--sim-root", "--policy",
                                 dir_ / "broker-policy.json", "--resources", dir_ / "resources"},
        dir_ / "broker.log");
  };
  json manifest = json::parse(AgentManifest());
  manifest.erase("workload");
  manifest["key_broker"] = {{"url", "http://127.0.0.1:" + std::to_string(port)},
                            {"workload_policy", "kbs:///default/policy/workload"}};
  ASSERT_NO_FATAL_FAILURE(StartAgent(manifest.dump()));
  ASSERT_NO_FATAL_FAILURE(Pull("brokered"));
  ::grpc::CreateContainerRequest allowed = CreateRequest("brokered", owner);
  allowed.mutable_oci()->mutable_process()->clear_cwd();

  // No broker: nothing is created, and the container can still be created once it is back.
  Status unreachable = Agent("CreateContainer", allowed);
  EXPECT_FALSE(unreachable.ok());
  EXPECT_NE(unreachable.code(), Code::kPermissionDenied) << unreachable.ToString();
  EXPECT_NE(unreachable.message().find("workload policy"), std::string::npos) << unreachable.ToString();

  auto broker = start_broker();
  ASSERT_TRUE(sealroot::testing::WaitForPort(port));
  // The manifest's usual commands are not the broker's: refused.
  EXPECT_EQ(Agent("CreateContainer", CreateRequest("brokered", kHello)).code(), Code::kPermissionDenied);
  Status created = Agent("CreateContainer", allowed);
  ASSERT_TRUE(created.ok()) << created.ToString() << "\n" << Log();
  ASSERT_TRUE(Start("brokered").ok()) << Log();
  EXPECT_EQ(ReadAll("brokered"), "allowed-by-the-broker\n");
  EXPECT_EQ(WaitFor("brokered"), 0);
  std::string broker_log = ReadFile(dir_ / "broker.log").value();
  EXPECT_NE(broker_log.find("released default/policy/workload"), std::string::npos) << broker_log;
}

// What the host writes into the spec's isolation fields is bounded too.
TEST_F(ApiFlowTest, IsolationFieldsBeyondTheBoundsAreRefused) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Pull("iso"));
  std::vector<std::pair<std::string, ::grpc::CreateContainerRequest>> attacks;
  ::grpc::CreateContainerRequest host_pid = CreateRequest("iso", kHello);
  for (const char* ns : {"ipc", "mount", "uts"})
    host_pid.mutable_oci()->mutable_linux()->add_namespaces()->set_type(ns);
  attacks.emplace_back("linux.namespaces: no pid namespace", host_pid);
  ::grpc::CreateContainerRequest cap = CreateRequest("iso", kHello);
  cap.mutable_oci()->mutable_process()->mutable_capabilities()->add_bounding("CAP_SYS_PTRACE");
  attacks.emplace_back("process.capabilities.bounding: CAP_SYS_PTRACE", cap);
  ::grpc::CreateContainerRequest device = CreateRequest("iso", kHello);
  device.mutable_oci()->mutable_linux()->add_devices()->set_path("/dev/mem");
  attacks.emplace_back("linux.devices: /dev/mem", device);
  ::grpc::CreateContainerRequest bind_root = CreateRequest("iso", kHello);
  ::grpc::Mount& mount = *bind_root.mutable_oci()->add_mounts();
  mount.set_destination("/host");
  mount.set_source("/");
  mount.set_type("bind");
  attacks.emplace_back("bind mount of / on /host", bind_root);
  for (const auto& [field, request] : attacks) {
    Status refused = Agent("CreateContainer", request);
    EXPECT_EQ(refused.code(), Code::kPermissionDenied) << field << ": " << refused.ToString();
    EXPECT_NE(refused.message().find(field), std::string::npos) << refused.ToString();
  }
  EXPECT_TRUE(Agent("CreateContainer", CreateRequest("iso", kHello)).ok());
}

// A spec with the container's own namespaces and `resources` (memory bytes, pids; 0: unset).
::grpc::CreateContainerRequest LimitedRequest(const std::string& id, const std::vector<std::string>& args,
                                              std::int64_t memory, std::int64_t pids) {
  ::grpc::CreateContainerRequest create;
  create.set_container_id(id);
  for (const std::string& arg : args) create.mutable_oci()->mutable_process()->add_args(arg);
  create.mutable_oci()->mutable_process()->set_cwd("/");
  ::grpc::Linux* linux_spec = create.mutable_oci()->mutable_linux();
  for (const char* ns : {"pid", "network", "ipc", "uts", "mount"}) linux_spec->add_namespaces()->set_type(ns);
  if (memory != 0) linux_spec->mutable_resources()->mutable_memory()->set_limit(memory);
  if (pids != 0) linux_spec->mutable_resources()->mutable_pids()->set_limit(pids);
  return create;
}

::grpc::UpdateContainerRequest UpdateRequest(const std::string& id, std::int64_t memory, std::int64_t pids) {
  ::grpc::UpdateContainerRequest update;
  update.set_container_id(id);
  if (memory != 0) update.mutable_resources()->mutable_memory()->set_limit(memory);
  if (pids != 0) update.mutable_resources()->mutable_pids()->set_limit(pids);
  return update;
}

constexpr std::int64_t kMiB = 1 << 20;

// StatsContainer reads the container's cgroup through its boot; UpdateContainer changes its
// limits as `runc update` does, and the stats show the new ones.
TEST_F(ApiFlowTest, StatsContainerReportsTheCgroupAndUpdateContainerChangesIt) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Pull("limited"));
  Status created = Agent("CreateContainer", LimitedRequest("limited", kSleeper, 256 * kMiB, 32));
  ASSERT_TRUE(created.ok()) << created.ToString();
  ASSERT_TRUE(Start("limited").ok()) << Log();
  ::grpc::ReadStreamRequest read;
  read.set_container_id("limited");
  read.set_len(3);
  auto first = Call<::grpc::ReadStreamResponse>("grpc.AgentService", "ReadStdout", read);
  ASSERT_TRUE(first.ok() && first->data() == "up\n") << first.status().ToString();

  ::grpc::StatsContainerRequest stats_request;
  stats_request.set_container_id("limited");
  auto stats = Call<::grpc::StatsContainerResponse>("grpc.AgentService", "StatsContainer", stats_request);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString() << "\n" << Log();
  const ::grpc::CgroupStats& cgroup = stats->cgroup_stats();
  EXPECT_EQ(cgroup.memory_stats().usage().limit(), static_cast<std::uint64_t>(256 * kMiB));
  EXPECT_GT(cgroup.memory_stats().usage().usage(), 0u);
  EXPECT_EQ(cgroup.pids_stats().limit(), 32u);
  EXPECT_GE(cgroup.pids_stats().current(), 2u) << "init and sleep";
  EXPECT_GT(cgroup.cpu_stats().cpu_usage().total_usage(), 0u);

  Status updated = Agent("UpdateContainer", UpdateRequest("limited", 384 * kMiB, 48));
  ASSERT_TRUE(updated.ok()) << updated.ToString() << "\n" << Log();
  stats = Call<::grpc::StatsContainerResponse>("grpc.AgentService", "StatsContainer", stats_request);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->cgroup_stats().memory_stats().usage().limit(), static_cast<std::uint64_t>(384 * kMiB));
  EXPECT_EQ(stats->cgroup_stats().pids_stats().limit(), 48u);

  // Device rules are fixed at creation.
  ::grpc::UpdateContainerRequest devices = UpdateRequest("limited", 0, 0);
  ::grpc::LinuxDeviceCgroup* rule = devices.mutable_resources()->add_devices();
  rule->set_allow(true);
  rule->set_type("b");
  rule->set_major(7);
  rule->set_minor(0);
  rule->set_access("rwm");
  EXPECT_EQ(Agent("UpdateContainer", devices).code(), Code::kPermissionDenied);

  ::grpc::SignalProcessRequest kill;
  kill.set_container_id("limited");
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(Agent("SignalProcess", kill).ok());
  EXPECT_EQ(WaitFor("limited"), 128 + SIGKILL);
  EXPECT_EQ(Agent("StatsContainer", stats_request).code(), Code::kFailedPrecondition);
  ASSERT_NO_FATAL_FAILURE(Remove("limited"));
}

// The owner bounds the container's resources: the host can neither create a container beyond
// them (or without limits) nor lift a running one's limits past them.
TEST_F(ApiFlowTest, ResourcesBeyondThePolicysBoundsAreRefused) {
  json policy = OwnerPolicy();
  policy["resources"] = {{"memory", 512 * kMiB}, {"pids", 64}};
  ASSERT_NO_FATAL_FAILURE(StartAgent(AgentManifest(policy)));
  ASSERT_NO_FATAL_FAILURE(Pull("bounded"));
  Status unlimited = Agent("CreateContainer", LimitedRequest("bounded", kSleeper, 0, 32));
  EXPECT_EQ(unlimited.code(), Code::kPermissionDenied) << unlimited.ToString();
  EXPECT_NE(unlimited.message().find("linux.resources.memory.limit: not set"), std::string::npos)
      << unlimited.ToString();
  Status too_big = Agent("CreateContainer", LimitedRequest("bounded", kSleeper, 1024 * kMiB, 32));
  EXPECT_EQ(too_big.code(), Code::kPermissionDenied) << too_big.ToString();
  Status created = Agent("CreateContainer", LimitedRequest("bounded", kSleeper, 256 * kMiB, 32));
  ASSERT_TRUE(created.ok()) << created.ToString();
  ASSERT_TRUE(Start("bounded").ok()) << Log();

  for (const auto& [memory, pids, field] : std::vector<std::tuple<std::int64_t, std::int64_t, std::string>>{
           {2048 * kMiB, 0, "linux.resources.memory.limit"},
           {-1, 0, "linux.resources.memory.limit: unlimited"},
           {0, 1000, "linux.resources.pids.limit"},
           {0, -1, "linux.resources.pids.limit: unlimited"}}) {
    Status refused = Agent("UpdateContainer", UpdateRequest("bounded", memory, pids));
    EXPECT_EQ(refused.code(), Code::kPermissionDenied) << field << ": " << refused.ToString();
    EXPECT_NE(refused.message().find(field), std::string::npos) << refused.ToString();
  }
  EXPECT_TRUE(Agent("UpdateContainer", UpdateRequest("bounded", 512 * kMiB, 0)).ok());
  ::grpc::StatsContainerRequest stats_request;
  stats_request.set_container_id("bounded");
  auto stats = Call<::grpc::StatsContainerResponse>("grpc.AgentService", "StatsContainer", stats_request);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->cgroup_stats().memory_stats().usage().limit(), static_cast<std::uint64_t>(512 * kMiB));
  EXPECT_EQ(stats->cgroup_stats().pids_stats().limit(), 32u) << "the refused updates changed nothing";

  ::grpc::SignalProcessRequest kill;
  kill.set_container_id("bounded");
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(Agent("SignalProcess", kill).ok());
  EXPECT_EQ(WaitFor("bounded"), 128 + SIGKILL);
  ASSERT_NO_FATAL_FAILURE(Remove("bounded"));
}

// A namespace path the host names is joined only when it is a pod's (another process's
// network, ipc or uts namespace, not the host's) or the owner's policy lists it: /proc/1/ns/net
// would put the container on the host's network.
TEST_F(ApiFlowTest, HostNamespacePathsAreRefusedAndAPodsAreJoined) {
  const std::vector<std::string> probe = {"sh", "-c", "readlink /proc/self/ns/net; hostname"};
  json policy = OwnerPolicy();
  policy["args"].push_back(probe);
  ASSERT_NO_FATAL_FAILURE(StartAgent(AgentManifest(policy)));
  ASSERT_NO_FATAL_FAILURE(Pull("joiner"));
  auto joining = [&](const std::string& type, const std::string& path) {
    ::grpc::CreateContainerRequest create = LimitedRequest("joiner", probe, 0, 0);
    for (::grpc::LinuxNamespace& ns : *create.mutable_oci()->mutable_linux()->mutable_namespaces()) {
      if (ns.type() == type) ns.set_path(path);
    }
    return create;
  };
  for (const auto& [type, path] : std::vector<std::pair<std::string, std::string>>{
           {"network", "/proc/1/ns/net"},
           {"network", "/proc/self/ns/net"},
           {"network", "/proc/" + std::to_string(::getpid()) + "/ns/net"},
           {"ipc", "/proc/1/ns/ipc"},
           {"uts", "/proc/1/ns/uts"},
           {"pid", "/proc/1/ns/pid"},
           {"network", "/etc/../proc/1/ns/net"}}) {
    Status refused = Agent("CreateContainer", joining(type, path));
    EXPECT_EQ(refused.code(), Code::kPermissionDenied) << path << ": " << refused.ToString();
    EXPECT_NE(refused.message().find("linux.namespaces: the " + type + " namespace joins " + path),
              std::string::npos)
        << refused.ToString();
  }

  // The pod: a process in its own network and UTS namespaces, as a pod sandbox holds them.
  sealroot::testing::BackgroundProcess pod(
      {"/usr/bin/unshare", "--net", "--uts", "sh", "-c", "hostname pod-host; exec sleep 600"},
      dir_ / "pod.log");
  std::string pod_net;
  for (int i = 0; i < 200; ++i) {
    std::error_code ec;
    pod_net = std::filesystem::read_symlink("/proc/" + std::to_string(pod.pid()) + "/ns/net", ec).string();
    std::ifstream comm("/proc/" + std::to_string(pod.pid()) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (!ec && name == "sleep") break;
    std::this_thread::sleep_for(20ms);
  }
  ::grpc::CreateContainerRequest create =
      joining("network", "/proc/" + std::to_string(pod.pid()) + "/ns/net");
  for (::grpc::LinuxNamespace& ns : *create.mutable_oci()->mutable_linux()->mutable_namespaces()) {
    if (ns.type() == "uts") ns.set_path("/proc/" + std::to_string(pod.pid()) + "/ns/uts");
  }
  Status created = Agent("CreateContainer", create);
  ASSERT_TRUE(created.ok()) << created.ToString();
  ASSERT_TRUE(Start("joiner").ok()) << Log();
  EXPECT_EQ(ReadAll("joiner"), pod_net + "\npod-host\n");
  EXPECT_EQ(WaitFor("joiner"), 0);
  ASSERT_NO_FATAL_FAILURE(Remove("joiner"));
}

// The owner may allow a host namespace by path; then the container joins it. (The host's here is
// this test's: PID 1 of this machine is out of reach of the tests' root.)
TEST_F(ApiFlowTest, AHostNamespaceThePolicyListsIsJoined) {
  const std::vector<std::string> probe = {"sh", "-c", "readlink /proc/self/ns/net"};
  const std::string host_net = "/proc/" + std::to_string(::getpid()) + "/ns/net";
  json policy = OwnerPolicy();
  policy["args"].push_back(probe);
  policy["namespaces"] = {{"network", {host_net}}};
  ASSERT_NO_FATAL_FAILURE(StartAgent(AgentManifest(policy)));
  ASSERT_NO_FATAL_FAILURE(Pull("hostnet"));
  ::grpc::CreateContainerRequest create = LimitedRequest("hostnet", probe, 0, 0);
  for (::grpc::LinuxNamespace& ns : *create.mutable_oci()->mutable_linux()->mutable_namespaces()) {
    if (ns.type() == "network") ns.set_path(host_net);
  }
  Status created = Agent("CreateContainer", create);
  ASSERT_TRUE(created.ok()) << created.ToString();
  ASSERT_TRUE(Start("hostnet").ok()) << Log();
  EXPECT_EQ(ReadAll("hostnet"), std::filesystem::read_symlink("/proc/self/ns/net").string() + "\n");
  EXPECT_EQ(WaitFor("hostnet"), 0);
  ASSERT_NO_FATAL_FAILURE(Remove("hostnet"));
}

// The host edits the owner's policy in the agent's manifest (here: allowing its own command).
// With the vendor's SIGSTRUCT the launcher refuses the changed enclave; re-signed with a key of
// the host's, the agent runs but no boot accepts it as its stub, so nothing runs.
TEST_F(ApiFlowTest, AManifestEditedByTheHostIsRefused) {
  const std::string genuine = AgentManifest(json::object());
  std::string edited = AgentManifest({{"args", {{"/bin/tar", "c", "/"}}}});
  auto genuine_sig = material->SignFile(BuiltProgram("enclave-agent"), 1, "", genuine);
  ASSERT_TRUE(genuine_sig.ok());
  auto refused = Launch(edited, *genuine_sig);
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied) << refused.status().ToString();
  // One byte is enough.
  std::string one_byte = genuine;
  one_byte.back() = ' ';
  one_byte += "}";
  EXPECT_EQ(Launch(one_byte, *genuine_sig).status().code(), Code::kPermissionDenied);

  EvpPkeyPtr host_key = stub_enclave::GenerateSigningKey().value();
  auto host_sig = material->SignFile(BuiltProgram("enclave-agent"), 1, "", edited, host_key.get());
  ASSERT_TRUE(host_sig.ok());
  ASSERT_NO_FATAL_FAILURE(StartAgent(edited, *host_sig));
  ASSERT_NO_FATAL_FAILURE(Pull("stolen"));
  ::grpc::CreateContainerRequest tar = CreateRequest("stolen", {"/bin/tar", "c", "/"});
  tar.mutable_oci()->mutable_process()->clear_cwd();
  Status created = Agent("CreateContainer", tar);
  ASSERT_TRUE(created.ok()) << created.ToString();
  Status started = Start("stolen");
  EXPECT_FALSE(started.ok()) << Log();
  EXPECT_EQ(ReadAll("stolen"), "");
  ASSERT_NO_FATAL_FAILURE(Remove("stolen"));
}

// An agent in an enclave takes no configuration from the host, and its sealed state belongs to
// its manifest: a changed manifest (even one its vendor signed) does not open the old state.
TEST_F(ApiFlowTest, ConfigFromTheHostAndStateUnderAnotherManifestAreRefused) {
  auto with_config = Launch(AgentManifest(), std::nullopt, {"--config", "/dev/null"});
  ASSERT_TRUE(with_config.ok()) << with_config.status().ToString();
  EXPECT_NE((*with_config)->Wait().value(), 0);
  EXPECT_NE(Log().find("measured manifest"), std::string::npos) << Log();
  auto without_manifest = Launch("");  // an enclave launched with none has no configuration
  ASSERT_TRUE(without_manifest.ok()) << without_manifest.status().ToString();
  EXPECT_NE((*without_manifest)->Wait().value(), 0);
  EXPECT_NE(Log().find("no measured manifest"), std::string::npos) << Log();

  ASSERT_NO_FATAL_FAILURE(StartAgent(AgentManifest()));
  ASSERT_NO_FATAL_FAILURE(Pull("kept"));  // the state now holds the image's key
  ASSERT_TRUE(agent_->Kill(SIGTERM).ok());
  EXPECT_EQ(agent_->Wait().value(), 0);
  agent_.reset();
  json changed = OwnerPolicy();
  changed["exec"].push_back({"sh"});
  auto relaunched = Launch(AgentManifest(changed));
  ASSERT_TRUE(relaunched.ok()) << relaunched.status().ToString();
  EXPECT_NE((*relaunched)->Wait().value(), 0);
  EXPECT_NE(Log().find("sealed under another measured configuration"), std::string::npos) << Log();
  // The genuine manifest still opens it.
  ASSERT_NO_FATAL_FAILURE(StartAgent(AgentManifest()));
  ASSERT_NO_FATAL_FAILURE(Create("kept", kHello));
}

// The boot takes the stub it accepts keys from out of its measured manifest only: --stub-*
// flags a host adds to make it trust another agent are refused.
TEST_F(ApiFlowTest, ABootWithAManifestRefusesStubFlagsFromTheHost) {
  auto sig = material->SignFile(BuiltProgram("sealroot-boot"), 2, "");
  ASSERT_TRUE(sig.ok());
  UniqueFd log(::open((dir_ / "boot.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  stub_enclave::LaunchSpec spec;
  spec.executable = BuiltProgram("sealroot-boot");
  spec.config = kLayout;
  spec.sigstruct = *sig;
  spec.manifest = material->boot_manifest;
  spec.args = {"--attest-socket", dir_ / "attest.sock", "--store",        dir_.path(),
               "--spec",          dir_ / "spec.json",   "--scratch",      dir_.path(),
               "--stub-mrsigner", std::string(64, '0'), "--stub-prod-id", "7"};
  spec.stdout_fd = log.get();
  spec.stderr_fd = log.get();
  auto boot = stub_enclave::LaunchEnclave(spec);
  ASSERT_TRUE(boot.ok()) << boot.status().ToString();
  EXPECT_EQ((*boot)->Wait().value(), 3);
  EXPECT_NE(ReadFile(dir_ / "boot.log").value().find("comes from its measured manifest"), std::string::npos)
      << ReadFile(dir_ / "boot.log").value();
}

TEST(BootConfigTest, HalfOrRelativeBootConfigsAreRefused) {
  EXPECT_EQ(ParseAgentConfig(R"({"boot": {"executable": "/usr/bin/sealroot-boot"}})").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParseAgentConfig(R"({"boot": {"executable": "boot", "sigstruct": "/b.sig"}})").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParseAgentConfig(R"({"boot": {"executable": "/b", "sigstruct": "/s", "heap_size": 0}})")
                .status()
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParseAgentConfig(R"({"boot": {"exectuable": "/b"}})").status().code(), Code::kInvalidArgument);
  auto parsed = ParseAgentConfig(R"({"boot": {"executable": "/b", "sigstruct": "/s", "threads": 2}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->boot.executable, "/b");
  EXPECT_EQ(parsed->boot.threads, 2u);
  EXPECT_EQ(parsed->boot.heap_size, 64ull << 20);
}

TEST(BootConfigTest, OutsideAnEnclaveAConfiguredBootIsNotAvailable) {
  TempDir dir;
  auto config = ParseAgentConfig(R"({"state_dir": ")" + (dir / "state") + R"(", "store_dir": ")" +
                                 (dir / "store") + R"(", "boot": {"executable": "/b", "sigstruct": "/s"},
                                 "state_sealing": {"source": "file"}})");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(::getenv("SEALROOT_SIM_TEE_FD"), nullptr);  // this test process has no TEE
  auto deps = MakeDefaultDeps(*config);
  ASSERT_TRUE(deps.ok()) << deps.status().ToString();
  SecretBytes key = SecretBytes::Random(32);
  ContainerLaunch launch;
  launch.container_id = "c1";
  launch.key = &key;
  auto started = deps->runtime->Start(launch);
  EXPECT_EQ(started.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(started.status().message().find("boot not available"), std::string::npos);
}

// `sealroot ctl` as ctr/kubectl users expect it, against the real agent and boot: pull prints
// the container id it made, exec streams the process's output and exits with its status (an
// exec id made up when none is given; -i forwards stdin, -t gives a terminal), ps lists the
// containers with image, state and exit status; and the same over the gRPC endpoint.
class CtlTest : public ApiFlowTest {
 protected:
  sealroot::testing::CommandResult Ctl(std::vector<std::string> args, const std::string& stdin_data = "",
                                       bool grpc = false) {
    std::vector<std::string> argv = {BuiltProgram("sealroot"), "ctl"};
    if (grpc) {
      argv.insert(argv.end(), {"--grpc", "unix://" + (dir_ / "grpc.sock")});
    } else {
      argv.insert(argv.end(), {"--address", "unix://" + (dir_ / "ttrpc.sock")});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return sealroot::testing::Run(argv, {.stdin_data = stdin_data});
  }
  static std::vector<std::string> With(std::vector<std::string> head,
                                       const std::vector<std::string>& command) {
    head.push_back("--");
    head.insert(head.end(), command.begin(), command.end());
    return head;
  }
};

TEST_F(CtlTest, PullPrintsTheContainerIdAndExecStreamsAndReturnsTheExitStatus) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  auto pulled = Ctl({"pull", material->image});
  ASSERT_TRUE(pulled.ok()) << pulled.err << Log();
  const std::string id = pulled.out.substr(0, pulled.out.find('\n'));
  EXPECT_EQ(pulled.out, id + "\n");
  EXPECT_TRUE(id.starts_with("img-")) << id;
  EXPECT_NE(pulled.err.find("@sha256:"), std::string::npos) << pulled.err;  // the pinned reference
  ASSERT_TRUE(Ctl(With({"create", id, "--cwd", "/"}, kSleeper)).ok()) << Log();
  auto started = Ctl({"start", id});
  ASSERT_TRUE(started.ok()) << started.err << Log();

  auto probe = Ctl(With({"exec", id, "--cwd", "/"}, kProbe));
  EXPECT_EQ(probe.exit_code, 5) << probe.err << Log();
  EXPECT_EQ(probe.out, "root:x:0:0:root:/root:/bin/sh\n");  // the image's, from inside its root
  // Twice without --exec-id: each gets its own generated id.
  EXPECT_EQ(Ctl(With({"exec", id, "--cwd", "/"}, kProbe)).exit_code, 5);
  // -i: ctl's stdin reaches the process; its stderr comes out on ctl's.
  auto interactive = Ctl(With({"exec", "-i", id, "--cwd", "/"}, kReadsStdin), "hello\n");
  EXPECT_EQ(interactive.exit_code, 4) << interactive.err;
  EXPECT_EQ(interactive.out, "got hello\n");
  EXPECT_EQ(interactive.err, "to stderr\n");
  // Without -i the process's stdin is closed: it reads EOF instead of waiting.
  auto closed = Ctl(With({"exec", id, "--cwd", "/"}, kReadsStdin), "ignored\n");
  EXPECT_EQ(closed.exit_code, 4);
  EXPECT_EQ(closed.out, "got\n");
  // -t: a terminal (the line discipline turns \n into \r\n).
  auto tty = Ctl(With({"exec", "-t", id, "--cwd", "/"}, kIsTerminal));
  EXPECT_EQ(tty.exit_code, 0) << tty.err;
  EXPECT_EQ(tty.out, "terminal\r\n");
  EXPECT_EQ(Ctl(With({"exec", id, "--cwd", "/"}, kIsTerminal)).exit_code, 1);
  // A command the policy does not list: refused, ctl's own error and exit code.
  auto refused = Ctl(With({"exec", id, "--cwd", "/"}, kMustNotRun));
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_NE(refused.err.find("process.args"), std::string::npos) << refused.err;
}

TEST_F(CtlTest, PsListsContainersWithImageStateAndExitStatusOverTtrpcAndGrpc) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_TRUE(Ctl({"pull", material->image, "--container-id", "sleeper"}).ok()) << Log();
  ASSERT_TRUE(Ctl(With({"create", "sleeper", "--cwd", "/"}, kSleeper)).ok());
  ASSERT_TRUE(Ctl({"start", "sleeper"}).ok()) << Log();
  ASSERT_TRUE(Ctl({"pull", material->image, "--container-id", "failing"}).ok());
  ASSERT_TRUE(Ctl(With({"create", "failing", "--cwd", "/"}, kFails)).ok());
  ASSERT_TRUE(Ctl({"start", "failing"}).ok()) << Log();
  auto waited = Ctl({"wait", "failing"});
  ASSERT_EQ(waited.out, "42\n") << waited.err;
  ASSERT_TRUE(Ctl({"pull", material->image, "--container-id", "pulled-only"}).ok());

  for (bool grpc : {false, true}) {
    SCOPED_TRACE(grpc ? "gRPC" : "ttrpc");
    auto ps = Ctl({"ps", "--json"}, "", grpc);
    ASSERT_TRUE(ps.ok()) << ps.err;
    json out = json::parse(ps.out, nullptr, false);
    ASSERT_FALSE(out.is_discarded()) << ps.out;
    std::map<std::string, json> by_id;
    for (const json& c : out["containers"]) by_id[c["container_id"].get<std::string>()] = c;
    ASSERT_EQ(by_id.size(), 3u) << ps.out;
    EXPECT_EQ(by_id["sleeper"]["state"], "running");
    EXPECT_TRUE(by_id["sleeper"]["exit_status"].is_null());
    EXPECT_EQ(by_id["failing"]["state"], "stopped");
    EXPECT_EQ(by_id["failing"]["exit_status"], 42);
    EXPECT_EQ(by_id["pulled-only"]["state"], "pulled");
    for (const auto& entry : by_id) {
      const std::string image = entry.second["image"].get<std::string>();
      EXPECT_NE(image.find("busybox@sha256:"), std::string::npos) << image;
    }
  }
  auto text = Ctl({"ps"}, "", /*grpc=*/true);
  ASSERT_TRUE(text.ok()) << text.err;
  EXPECT_TRUE(text.out.starts_with("CONTAINER")) << text.out;
  EXPECT_NE(text.out.find("failing"), std::string::npos) << text.out;
  // exec over gRPC streams and returns the status too.
  auto probe = Ctl(With({"exec", "sleeper", "--cwd", "/"}, kProbe), "", /*grpc=*/true);
  EXPECT_EQ(probe.exit_code, 5) << probe.err;
  EXPECT_EQ(probe.out, "root:x:0:0:root:/root:/bin/sh\n");
  // An address gRPC cannot serve is a usage error, not a hang.
  EXPECT_EQ(sealroot::testing::Run({BuiltProgram("sealroot"), "ctl", "--grpc", "tcp://127.0.0.1:1", "ps"})
                .exit_code,
            2);
}

TEST_F(CtlTest, PullTakesCredentialsFromAnAuthfileOrACredsFile) {
  sealroot::testing::Registry locked({.tls = false, .user = "owner", .password = "s3cret"});
  locked.Push(sealroot::testing::BuildBusyboxImage(dir_ / "layout", "busybox"), "private:1");
  const std::string image = locked.Ref("private:1");
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  EXPECT_NE(Ctl({"pull", image, "--container-id", "anonymous"}).exit_code, 0);
  // skopeo's --authfile: a containers-auth.json keyed by registry.
  json auth = {{"auths", {{locked.host(), {{"auth", Base64Encode(AsBytes("owner:s3cret"))}}}}}};
  ASSERT_TRUE(WriteFileAtomic(dir_ / "auth.json", auth.dump(), 0600).ok());
  auto with_authfile = Ctl({"pull", image, "--container-id", "c1", "--authfile", dir_ / "auth.json"});
  ASSERT_TRUE(with_authfile.ok()) << with_authfile.err << Log();
  EXPECT_EQ(with_authfile.out, "c1\n");
  // --creds-file, the same option: a USER:PASS line.
  ASSERT_TRUE(WriteFileAtomic(dir_ / "creds", "owner:wrong\n", 0600).ok());
  EXPECT_NE(Ctl({"pull", image, "--container-id", "c2", "--creds-file", dir_ / "creds"}).exit_code, 0);
  ASSERT_TRUE(WriteFileAtomic(dir_ / "creds", "owner:s3cret\n", 0600).ok());
  auto with_creds_file = Ctl({"pull", image, "--container-id", "c3", "--creds-file", dir_ / "creds"});
  EXPECT_TRUE(with_creds_file.ok()) << with_creds_file.err;
}

}  // namespace
}  // namespace sealroot::agent
