// The whole flow through the agent's API: enclave-agent runs as a sim stub enclave (this test
// process is its launcher and CPU) with a boot configured; a busybox image in a loopback
// registry is pulled and sealed, a container created and started (sealroot-boot launched as the
// container's app enclave, attested, booted from the sealed root), its output read and its exit
// status waited for, then removed — over ttrpc (the project's own client, as `sealroot ctl`
// uses) and over gRPC (Python grpcio from the project's protos). Also the "boot" config section.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent.pb.h"
#include "agent/server/agent.h"
#include "agent/server/config.h"
#include "agent/server/ttrpc.h"
#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "health.pb.h"
#include "image.pb.h"
#include "stub-enclave/launcher.h"
#include "stub-enclave/measure.h"
#include "stub-enclave/sigstruct.h"
#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace sealroot::agent {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using sealroot::testing::BuiltProgram;
using sealroot::testing::TempDir;

const enclave::EnclaveConfig kLayout{.heap_size = 1 << 20, .threads = 2};

// Built once: the registry with busybox, the signing key, the signed agent, boot and impostor.
struct Material {
  TempDir dir;
  sealroot::testing::Registry registry;
  std::string image;
  EvpPkeyPtr key = enclave::GenerateSigningKey().value();
  sgx::Sigstruct agent_sig{};
  std::string boot_mrenclave;
  std::string python_gen;

  Material() {
    registry.Push(sealroot::testing::BuildBusyboxImage(dir / "layout", "busybox"), "busybox:1");
    image = registry.Ref("busybox:1");
    agent_sig = SignFile(BuiltProgram("enclave-agent"), 1, "").value();
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
    // Signatures are the trust tests' business (tests/trust, tests/agent): accept this image.
    if (!WriteFileAtomic(dir / "policy.json", R"({"default": [{"type": "insecureAcceptAnything"}]})").ok()) {
      throw std::runtime_error("writing policy.json");
    }
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

  // Measures and signs `path` with the test key as product `prod_id`; writes the SIGSTRUCT to
  // `out` when given.
  Result<sgx::Sigstruct> SignFile(const std::string& path, std::uint16_t prod_id, const std::string& out) {
    SR_ASSIGN_OR_RETURN(auto image, enclave::EnclaveImage::Load(path, kLayout));
    SR_ASSIGN_OR_RETURN(sgx::Sigstruct sig, enclave::SignEnclave(key.get(), image.measurement().mr_enclave,
                                                                 {.isv_prod_id = prod_id, .isv_svn = 1}));
    if (!out.empty()) {
      auto bytes = sgx::BytesOf(sig);
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

  // Starts enclave-agent as a sim enclave with the genuine boot policy and `boot` configured.
  // With `tcp_port`, ttrpc also listens on tcp://127.0.0.1:PORT (enclave-cc's shim).
  void StartAgent(const std::string& boot = BuiltProgram("sealroot-boot"),
                  const std::string& boot_sig = material->dir / "boot.sig", bool allow_exec = false,
                  int tcp_port = 0) {
    json ttrpc = json::array({"unix://" + (dir_ / "ttrpc.sock")});
    if (tcp_port != 0) ttrpc.push_back("tcp://127.0.0.1:" + std::to_string(tcp_port));
    json config = {
        {"ttrpc", ttrpc},
        {"grpc", json::array({"unix://" + (dir_ / "grpc.sock")})},
        {"state_dir", dir_ / "state"},
        {"store_dir", dir_ / "store"},
        {"registry", {{"tls_verify", false}}},
        {"trust", {{"policy", material->dir / "policy.json"}}},
        {"app_enclaves", json::array({json{{"mrenclave", material->boot_mrenclave}}})},
        {"allow_exec", allow_exec},
        {"boot", {{"executable", boot}, {"sigstruct", boot_sig}, {"heap_size", 1 << 20}, {"threads", 2}}}};
    ASSERT_TRUE(WriteFileAtomic(dir_ / "agent.json", config.dump()).ok());
    log_fd_ = UniqueFd(::open((dir_ / "agent.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    enclave::LaunchSpec spec;
    spec.executable = BuiltProgram("enclave-agent");
    spec.config = kLayout;
    spec.sigstruct = material->agent_sig;
    spec.args = {"--config", dir_ / "agent.json"};
    spec.stdout_fd = log_fd_.get();
    spec.stderr_fd = log_fd_.get();
    auto launched = enclave::LaunchEnclave(spec);
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

  // PullImage + CreateContainer with `args`.
  void Create(const std::string& id, const std::vector<std::string>& args) {
    ::grpc::PullImageRequest pull;
    pull.set_image(material->image);
    pull.set_container_id(id);
    auto pulled = Call<::grpc::PullImageResponse>("grpc.Image", "PullImage", pull);
    ASSERT_TRUE(pulled.ok()) << pulled.status().ToString() << "\n" << Log();
    ::grpc::CreateContainerRequest create;
    create.set_container_id(id);
    for (const std::string& arg : args) create.mutable_oci()->mutable_process()->add_args(arg);
    create.mutable_oci()->mutable_process()->set_cwd("/");
    ASSERT_TRUE(Agent("CreateContainer", create).ok());
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
  std::unique_ptr<enclave::LaunchedEnclave> agent_;
  std::unique_ptr<ttrpc::Client> client_;
};

TEST_F(ApiFlowTest, PullCreateStartReadWaitRemoveOverTtrpc) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("flow-ttrpc", {"sh", "-c", "echo hello from $(id -u) in $(pwd)"}));
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
  auto result = sealroot::testing::Run(
      {"/usr/bin/python3", sealroot::testing::SourceDir() + "/tests/e2e/api_flow_grpc.py",
       material->python_gen, dir_ / "grpc.sock", material->image, "flow-grpc", "sh", "-c",
       "echo over grpc; cat /etc/passwd | head -1; exit 3"});
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
  ASSERT_NO_FATAL_FAILURE(StartAgent(BuiltProgram("sealroot-boot"), material->dir / "boot.sig", false, port));
  ASSERT_TRUE(sealroot::testing::WaitForPort(port));
  const std::string probe =
      "nc -w 2 127.0.0.1 " + std::to_string(port) + " </dev/null && echo reached || echo unreachable";
  ASSERT_NO_FATAL_FAILURE(Create("probe-tcp", {"sh", "-c", probe}));
  ASSERT_TRUE(Start("probe-tcp").ok()) << Log();
  EXPECT_EQ(ReadAll("probe-tcp"), "unreachable\n");
  EXPECT_EQ(WaitFor("probe-tcp"), 0);
  EXPECT_TRUE(client_->Call("grpc.Health", "Check", "").ok());
  ASSERT_NO_FATAL_FAILURE(Remove("probe-tcp"));
}

TEST_F(ApiFlowTest, ContainerExitingNonZeroReportsItsStatus) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("fails", {"sh", "-c", "echo failing >&2; exit 42"}));
  ASSERT_TRUE(Start("fails").ok()) << Log();
  EXPECT_EQ(WaitFor("fails"), 42);
  ASSERT_NO_FATAL_FAILURE(Remove("fails"));
}

TEST_F(ApiFlowTest, SignalProcessKillEndsTheContainer) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("sleeper", {"sh", "-c", "echo up; exec sleep 600"}));
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
  ASSERT_NO_FATAL_FAILURE(StartAgent(material->dir / "impostor", material->dir / "impostor.sig"));
  ASSERT_NO_FATAL_FAILURE(Create("impostor", {"sh", "-c", "echo must not run"}));
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
  ASSERT_NO_FATAL_FAILURE(StartAgent(material->dir / "dead-boot", material->dir / "dead-boot.sig"));
  ASSERT_NO_FATAL_FAILURE(Create("dead", {"sh", "-c", "echo must not run"}));
  Status started = Start("dead");
  EXPECT_EQ(started.code(), Code::kFailedPrecondition) << started.ToString();
  EXPECT_NE(started.message().find("exited before it attested"), std::string::npos) << started.ToString();
  ASSERT_NO_FATAL_FAILURE(Remove("dead"));
}

TEST_F(ApiFlowTest, ExecIsRefusedByDefault) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_NO_FATAL_FAILURE(Create("no-exec", {"sh", "-c", "echo up; exec sleep 600"}));
  ASSERT_TRUE(Start("no-exec").ok()) << Log();
  ::grpc::ExecProcessRequest exec;
  exec.set_container_id("no-exec");
  exec.set_exec_id("shell");
  exec.mutable_process()->add_args("/bin/sh");
  Status refused = Agent("ExecProcess", exec);
  EXPECT_EQ(refused.code(), Code::kPermissionDenied) << refused.ToString();
  // Removed while running: the boot is killed and its state goes with it.
  ASSERT_NO_FATAL_FAILURE(Remove("no-exec"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "state/boot"));
}

TEST_F(ApiFlowTest, ExecWhenAllowedRunsInsideTheContainerRoot) {
  ASSERT_NO_FATAL_FAILURE(
      StartAgent(BuiltProgram("sealroot-boot"), material->dir / "boot.sig", /*allow_exec=*/true));
  ASSERT_NO_FATAL_FAILURE(Create("with-exec", {"sh", "-c", "echo up; exec sleep 600"}));
  ASSERT_TRUE(Start("with-exec").ok()) << Log();
  ::grpc::ExecProcessRequest exec;
  exec.set_container_id("with-exec");
  exec.set_exec_id("probe");
  exec.mutable_process()->add_args("sh");
  exec.mutable_process()->add_args("-c");
  exec.mutable_process()->add_args("head -1 /etc/passwd; exit 5");
  exec.mutable_process()->set_cwd("/");
  Status started = Agent("ExecProcess", exec);
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << Log();
  // The image's /etc/passwd, not the host's: the exec runs in the container's sealed root.
  EXPECT_EQ(ReadAll("with-exec", "probe"), "root:x:0:0:root:/root:/bin/sh\n");
  EXPECT_EQ(WaitFor("with-exec", "probe"), 5);
  ASSERT_NO_FATAL_FAILURE(Remove("with-exec"));
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
                                 (dir / "store") + R"(", "boot": {"executable": "/b", "sigstruct": "/s"}})");
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

}  // namespace
}  // namespace sealroot::agent
