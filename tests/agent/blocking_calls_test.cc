// Calls that block (WaitProcess on a process that does not exit) cannot take the agent's request
// threads: beyond the per-connection and total bounds they get RESOURCE_EXHAUSTED at once,
// Health.Check keeps answering, and a client that disconnects, or whose call's deadline
// (timeout_nano) passes, frees its slots.
#include <gtest/gtest.h>

#include <thread>

#include "agent.pb.h"
#include "agent/server/agent.h"
#include "health.pb.h"
#include "image.pb.h"
#include "rpc/ttrpc.h"
#include "tests/agent/fakes.h"
#include "tests/agent/ttrpc_harness.h"
#include "ttrpc.pb.h"

namespace sealroot::agent {
namespace {

namespace ttrpc = rpc::ttrpc;

using namespace std::chrono_literals;

class BlockingCallsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::TestConfig(dir_.path(), 0);
    ServiceDeps deps;
    deps.puller = std::make_unique<testing::FakePuller>();
    deps.runtime = std::make_unique<testing::EchoRuntime>();  // its processes exit only when told
    deps.sealer = *MakeKeySealer(SecretBytes::Random(32));
    auto agent = Agent::Start(config_, std::move(deps));
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    agent_ = std::move(*agent);
    auto client = ttrpc::Client::Connect(config_.ttrpc[0]);
    ASSERT_TRUE(client.ok());
    ::grpc::PullImageRequest pull;
    pull.set_image("registry/a:1");
    pull.set_container_id("c1");
    ASSERT_TRUE((*client)->Call("grpc.Image", "PullImage", pull.SerializeAsString()).ok());
    ::grpc::CreateContainerRequest create;
    create.set_container_id("c1");
    create.mutable_oci()->mutable_process()->add_args("/bin/sh");
    ASSERT_TRUE((*client)->Call("grpc.AgentService", "CreateContainer", create.SerializeAsString()).ok());
    ::grpc::StartContainerRequest start;
    start.set_container_id("c1");
    ASSERT_TRUE((*client)->Call("grpc.AgentService", "StartContainer", start.SerializeAsString()).ok());
  }

  UniqueFd Connect() {
    auto fd = ttrpc::Dial(config_.ttrpc[0]);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }

  // Pipelines n calls of `method` (WaitProcess or ReadStdout) for c1, stream ids first_stream,
  // +2, +4..., each with `timeout` as its timeout_nano, without reading the answers.
  static void SendCalls(int fd, int n, const std::string& method = "WaitProcess",
                        std::chrono::nanoseconds timeout = 0ns, std::uint32_t first_stream = 1) {
    ::grpc::ReadStreamRequest read;  // ReadStdout
    read.set_container_id("c1");
    ::grpc::WaitProcessRequest wait;
    wait.set_container_id("c1");
    ::ttrpc::Request request;
    request.set_service("grpc.AgentService");
    request.set_method(method);
    request.set_payload(method == "WaitProcess" ? wait.SerializeAsString() : read.SerializeAsString());
    request.set_timeout_nano(timeout.count());
    const std::string bytes = request.SerializeAsString();
    for (int i = 0; i < n; ++i) {
      ttrpc::FrameHeader header{static_cast<std::uint32_t>(bytes.size()),
                                static_cast<std::uint32_t>(first_stream + 2 * i), ttrpc::kTypeRequest, 0};
      ASSERT_TRUE(ttrpc::WriteFrame(fd, header, bytes).ok());
    }
  }

  // The codes of the responses that arrive within `wait` (the refusals come at once; the
  // accepted calls block).
  static std::vector<int> Responses(int fd, std::chrono::milliseconds wait = 1500ms) {
    std::vector<int> codes;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      std::array<std::uint8_t, ttrpc::kHeaderSize> head{};
      if (!ttrpc::ReadFull(fd, head, deadline).ok()) return codes;
      ttrpc::FrameHeader header = ttrpc::DecodeHeader(head);
      std::string body(header.length, '\0');
      if (!ttrpc::ReadFull(fd, std::span(reinterpret_cast<std::uint8_t*>(body.data()), body.size()), deadline)
               .ok()) {
        return codes;
      }
      ::ttrpc::Response response;
      EXPECT_TRUE(response.ParseFromString(body));
      codes.push_back(response.status().code());
    }
  }

  static int Count(const std::vector<int>& codes, Code code) {
    return static_cast<int>(std::count(codes.begin(), codes.end(), static_cast<int>(code)));
  }

  // A fresh client gets SERVING promptly (a starved agent would not answer at all).
  void ExpectHealthPrompt() {
    auto client = ttrpc::Client::Connect(config_.ttrpc[0]);
    ASSERT_TRUE(client.ok());
    const auto start = std::chrono::steady_clock::now();
    auto reply = (*client)->Call("grpc.Health", "Check", "", 10s);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    ::grpc::HealthCheckResponse health;
    ASSERT_TRUE(health.ParseFromString(*reply));
    EXPECT_EQ(health.status(), ::grpc::HealthCheckResponse::SERVING);
  }

  sealroot::testing::TempDir dir_;
  AgentConfig config_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(BlockingCallsTest, PipelinedWaitProcessCallsCannotStarveHealthCheck) {
  const int per_connection = static_cast<int>(config_.limits.max_blocking_calls_per_connection);
  UniqueFd fd = Connect();
  SendCalls(fd.get(), 260);
  std::vector<int> codes = Responses(fd.get());  // meanwhile the accepted calls took their threads
  EXPECT_EQ(Count(codes, Code::kResourceExhausted), 260 - per_connection);
  EXPECT_EQ(codes.size(), static_cast<std::size_t>(260 - per_connection));  // the others still wait
  ExpectHealthPrompt();
}

TEST_F(BlockingCallsTest, WaitProcessCallsAcrossConnectionsAreBoundedInTotal) {
  const int per_connection = static_cast<int>(config_.limits.max_blocking_calls_per_connection);
  const int total = static_cast<int>(config_.limits.max_blocking_calls);
  const int connections = total / per_connection + 1;
  std::vector<UniqueFd> fds;
  for (int i = 0; i < connections; ++i) {
    fds.push_back(Connect());
    SendCalls(fds.back().get(), per_connection);
  }
  int refused = 0;
  for (UniqueFd& fd : fds) refused += Count(Responses(fd.get(), 500ms), Code::kResourceExhausted);
  EXPECT_EQ(refused, connections * per_connection - total);
  ExpectHealthPrompt();
}

class BlockingCallsDisconnectTest : public BlockingCallsTest,
                                    public ::testing::WithParamInterface<const char*> {};

TEST_P(BlockingCallsDisconnectTest, DisconnectingFreesTheSlotsOfItsBlockedCalls) {
  const int per_connection = static_cast<int>(config_.limits.max_blocking_calls_per_connection);
  const int total = static_cast<int>(config_.limits.max_blocking_calls);
  {
    const int connections = total / per_connection + 1;
    std::vector<UniqueFd> fds;
    for (int i = 0; i < connections; ++i) {
      fds.push_back(Connect());
      SendCalls(fds.back().get(), per_connection, GetParam());
    }
    int refused = 0;
    for (UniqueFd& fd : fds) refused += Count(Responses(fd.get(), 500ms), Code::kResourceExhausted);
    EXPECT_EQ(refused, connections * per_connection - total);  // every slot taken
  }                                                            // every client goes away
  // Their calls give up and free the slots: a new client gets a full connection's worth again.
  bool freed = false;
  for (int attempt = 0; attempt < 20 && !freed; ++attempt) {
    UniqueFd fd = Connect();
    SendCalls(fd.get(), per_connection + 1);
    freed = Count(Responses(fd.get(), 500ms), Code::kResourceExhausted) == 1;
  }
  EXPECT_TRUE(freed);
  ExpectHealthPrompt();
}

// The container's process neither exits nor writes: both calls would wait forever.
INSTANTIATE_TEST_SUITE_P(WaitAndRead, BlockingCallsDisconnectTest,
                         ::testing::Values("WaitProcess", "ReadStdout"));

class BlockingCallsDeadlineTest : public BlockingCallsTest,
                                  public ::testing::WithParamInterface<const char*> {};

TEST_P(BlockingCallsDeadlineTest, TheCallsDeadlineEndsTheWaitAndFreesItsSlot) {
  const int per_connection = static_cast<int>(config_.limits.max_blocking_calls_per_connection);
  UniqueFd fd = Connect();
  SendCalls(fd.get(), per_connection, GetParam(), 300ms);
  EXPECT_EQ(Count(Responses(fd.get(), 2s), Code::kDeadlineExceeded), per_connection);
  // The waits saw their deadline and returned: the same connection gets every slot back. (Each
  // attempt's calls have a deadline too, inside the time its answers are read, so an attempt
  // made too early frees its slots for the next.)
  bool freed = false;
  for (int attempt = 0; attempt < 20 && !freed; ++attempt) {
    const auto first_stream =
        static_cast<std::uint32_t>(2 * per_connection + 1 + 4 * per_connection * attempt);
    SendCalls(fd.get(), per_connection + 1, GetParam(), 1s, first_stream);
    freed = Count(Responses(fd.get(), 1500ms), Code::kResourceExhausted) == 1;
  }
  EXPECT_TRUE(freed);
  ExpectHealthPrompt();
}

INSTANTIATE_TEST_SUITE_P(WaitAndRead, BlockingCallsDeadlineTest,
                         ::testing::Values("WaitProcess", "ReadStdout"));

TEST_F(BlockingCallsTest, WaitProcessStillGetsTheExitStatus) {
  auto waiter = ttrpc::Client::Connect(config_.ttrpc[0]);
  ASSERT_TRUE(waiter.ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(200ms);
    auto client = ttrpc::Client::Connect(config_.ttrpc[0]);
    ASSERT_TRUE(client.ok());
    ::grpc::CloseStdinRequest close;
    close.set_container_id("c1");
    EXPECT_TRUE((*client)->Call("grpc.AgentService", "CloseStdin", close.SerializeAsString()).ok());
  });
  ::grpc::WaitProcessRequest wait;
  wait.set_container_id("c1");
  auto reply = (*waiter)->Call("grpc.AgentService", "WaitProcess", wait.SerializeAsString(), 20s);
  stopper.join();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ::grpc::WaitProcessResponse response;
  ASSERT_TRUE(response.ParseFromString(*reply));
  EXPECT_EQ(response.status(), 7);  // EchoProcess's exit status
}

}  // namespace
}  // namespace sealroot::agent
