// The API over both transports, driven by clients the project did not write: Python grpcio with
// code generated from agent/proto at test time, and Go's containerd/ttrpc 1.1.1 (Debian), built
// offline. The agent runs in-process with a fake puller, so pulls can be held in flight.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "agent/server/agent.h"
#include "tests/agent/fakes.h"
#include "tests/agent/ttrpc_harness.h"
#include "tests/support/process.h"

namespace sealroot::agent {
namespace {

using nlohmann::json;

class TransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tools_ = new testing::ClientTools(); }
  static void TearDownTestSuite() {
    delete tools_;
    tools_ = nullptr;
  }

  void SetUp() override {
    tcp_port_ = sealroot::testing::FreePort();
    config_ = testing::TestConfig(dir_.path(), tcp_port_);
    ServiceDeps deps;
    auto puller = std::make_unique<testing::FakePuller>();
    puller_ = puller.get();
    deps.puller = std::move(puller);
    deps.runtime = MakeUnavailableRuntime();
    deps.sealer = *MakeKeySealer(SecretBytes::Random(32));
    auto agent = Agent::Start(config_, std::move(deps));
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    agent_ = std::move(*agent);
  }

  json Python(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     sealroot::testing::SourceDir() + "/tests/agent/grpc_client.py",
                                     tools_->python_gen_dir(), dir_ / "grpc.sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = sealroot::testing::Run(argv);
    EXPECT_TRUE(result.ok()) << result.err;
    return json::parse(result.out, nullptr, false);
  }

  std::vector<testing::TtrpcResult> Go(const std::string& address, const std::string& service,
                                       const std::string& method, const std::string& payload, int n = 1) {
    return tools_->GoCall(address, service, method, payload, n);
  }

  std::string unix_address() { return "unix://" + (dir_ / "ttrpc.sock"); }
  std::string tcp_address() { return "tcp://127.0.0.1:" + std::to_string(tcp_port_); }

  static testing::ClientTools* tools_;
  sealroot::testing::TempDir dir_;
  int tcp_port_ = 0;
  AgentConfig config_;
  testing::FakePuller* puller_ = nullptr;
  std::unique_ptr<Agent> agent_;
};

testing::ClientTools* TransportTest::tools_ = nullptr;

TEST_F(TransportTest, PythonGrpcClientFromOurProtosGetsTheDocumentedAnswers) {
  json out = Python({"basic"});
  ASSERT_FALSE(out.is_discarded());
  EXPECT_EQ(out["check"]["status"], "SERVING");
  EXPECT_EQ(out["version"]["agent_version"], SEALROOT_VERSION);
  EXPECT_EQ(out["pause"]["code"], "UNIMPLEMENTED");
  EXPECT_NE(out["pause"]["message"].get<std::string>().find("PauseContainer"), std::string::npos);
  EXPECT_EQ(out["create_unknown"]["code"], "FAILED_PRECONDITION");
  EXPECT_EQ(out["create_no_spec"]["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(out["start_unknown"]["code"], "NOT_FOUND");
  EXPECT_EQ(out["exec"]["code"], "PERMISSION_DENIED");
  EXPECT_EQ(out["unknown_method"]["code"], "UNIMPLEMENTED");
  EXPECT_EQ(out["garbage_payload"]["code"], "INVALID_ARGUMENT");
}

TEST_F(TransportTest, PythonPullImageReturnsThePinnedReference) {
  json out = Python({"pull", "registry/a:1", "c1", "user:pass"});
  EXPECT_EQ(out["code"], "OK");
  EXPECT_EQ(out["image_ref"], "registry/a:1@sha256:" + std::string(64, 'a'));
  EXPECT_EQ(puller_->last_creds(), "user:pass");
}

TEST_F(TransportTest, PythonFiftyConcurrentHealthChecksAllServe) {
  EXPECT_EQ(Python({"health", "50"})["serving"], 50);
}

TEST_F(TransportTest, PythonEightConcurrentPullsOfTwoImagesDownloadEachOnce) {
  puller_->Close();
  json out;
  std::thread client([&] { out = Python({"pulls", "8", "registry/a:1", "registry/b:1"}); });
  ASSERT_TRUE(puller_->WaitRunning(2));
  ASSERT_TRUE(puller_->WaitResolved(8));  // the other six join (or find the image recorded)
  puller_->Open();
  client.join();
  ASSERT_EQ(out["results"].size(), 8u);
  for (const json& r : out["results"]) EXPECT_EQ(r["code"], "OK") << r.dump();
  EXPECT_EQ(puller_->pulls("registry/a:1"), 1);
  EXPECT_EQ(puller_->pulls("registry/b:1"), 1);
}

TEST_F(TransportTest, GoTtrpcClientHealthCheckOverUnixAndTcp) {
  for (const std::string& address : {unix_address(), tcp_address()}) {
    auto results = Go(address, "grpc.Health", "Check", "");
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].code, 0) << results[0].message;
    ::grpc::HealthCheckResponse response;
    ASSERT_TRUE(response.ParseFromString(results[0].payload));
    EXPECT_EQ(response.status(), ::grpc::HealthCheckResponse::SERVING);
  }
}

TEST_F(TransportTest, GoTtrpcClientFiftyConcurrentHealthChecksOnOneConnection) {
  auto results = Go(unix_address(), "grpc.Health", "Check", "", 50);
  ASSERT_EQ(results.size(), 50u);
  for (const auto& r : results) EXPECT_EQ(r.code, 0) << r.message;
}

TEST_F(TransportTest, GoTtrpcClientErrorsCarryCodesAndMessages) {
  auto unimplemented = Go(unix_address(), "grpc.AgentService", "PauseContainer", "");
  EXPECT_EQ(unimplemented.at(0).code, 12);
  EXPECT_NE(unimplemented.at(0).message.find("PauseContainer"), std::string::npos);
  ::grpc::StartContainerRequest start;
  start.set_container_id("nobody");
  EXPECT_EQ(Go(unix_address(), "grpc.AgentService", "StartContainer", start.SerializeAsString()).at(0).code,
            5);
  EXPECT_EQ(Go(unix_address(), "grpc.AgentService", "CreateContainer", "\xff\xff\xff").at(0).code, 3);
  EXPECT_EQ(Go(unix_address(), "no.Such", "Service", "").at(0).code, 12);
}

TEST_F(TransportTest, GoTtrpcEightConcurrentPullsOfTwoImagesOverTcpDownloadEachOnce) {
  // enclave-cc's shim: PullImage over TCP, one connection per call.
  puller_->Close();
  std::vector<std::thread> clients;
  std::vector<int> codes(8, -1);
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      ::grpc::PullImageRequest request;
      request.set_image(i % 2 ? "registry/a:1" : "registry/b:1");
      request.set_container_id("go-" + std::to_string(i));
      codes[i] = Go(tcp_address(), "grpc.Image", "PullImage", request.SerializeAsString()).at(0).code;
    });
  }
  ASSERT_TRUE(puller_->WaitRunning(2));
  ASSERT_TRUE(puller_->WaitResolved(8));
  puller_->Open();
  for (auto& t : clients) t.join();
  for (int code : codes) EXPECT_EQ(code, 0);
  EXPECT_EQ(puller_->pulls("registry/a:1"), 1);
  EXPECT_EQ(puller_->pulls("registry/b:1"), 1);
}

TEST_F(TransportTest, DestroySandboxStopsTheAgentAfterReplying) {
  EXPECT_EQ(Go(unix_address(), "grpc.AgentService", "DestroySandbox", "").at(0).code, 0);
  std::thread waiter([&] { agent_->Wait(); });
  waiter.join();  // returns: the stop was requested
  agent_.reset();
  EXPECT_NE(Go(unix_address(), "grpc.Health", "Check", "").at(0).code, 0);
}

}  // namespace
}  // namespace sealroot::agent
