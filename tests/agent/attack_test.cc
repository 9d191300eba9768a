// Malformed traffic on the ttrpc socket: oversized frames, garbage bytes, half frames, even
// stream ids, undecodable requests, clients that vanish mid-call. Each gets an error (or the
// connection closed) and the agent keeps serving everyone else.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <thread>

#include "agent/server/agent.h"
#include "base/file.h"
#include "health.pb.h"
#include "rpc/ttrpc.h"
#include "tests/agent/fakes.h"
#include "tests/agent/ttrpc_harness.h"
#include "ttrpc.pb.h"

namespace sealroot::agent {
namespace {

namespace ttrpc = rpc::ttrpc;

using namespace std::chrono_literals;

class AttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::TestConfig(dir_.path(), 0);
    config_.limits.frame_timeout = 500ms;
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

  UniqueFd Connect() {
    auto fd = ttrpc::Dial(config_.ttrpc[0]);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }

  // Reads one response frame; nullopt if the connection closed or nothing came in time.
  std::optional<std::pair<ttrpc::FrameHeader, ::ttrpc::Response>> ReadResponse(
      int fd, std::chrono::seconds wait = 10s) {
    std::array<std::uint8_t, ttrpc::kHeaderSize> head{};
    if (!ttrpc::ReadFull(fd, head, std::chrono::steady_clock::now() + wait).ok()) return std::nullopt;
    ttrpc::FrameHeader header = ttrpc::DecodeHeader(head);
    std::string body(header.length, '\0');
    if (!ttrpc::ReadFull(fd, std::span(reinterpret_cast<std::uint8_t*>(body.data()), body.size()),
                         std::chrono::steady_clock::now() + wait)
             .ok()) {
      return std::nullopt;
    }
    ::ttrpc::Response response;
    if (!response.ParseFromString(body)) return std::nullopt;
    return std::make_pair(header, response);
  }

  static std::string HealthRequest() {
    ::ttrpc::Request request;
    request.set_service("grpc.Health");
    request.set_method("Check");
    return request.SerializeAsString();
  }

  // A fresh client still gets SERVING.
  void ExpectStillServing() {
    auto client = ttrpc::Client::Connect(config_.ttrpc[0]);
    ASSERT_TRUE(client.ok());
    auto reply = (*client)->Call("grpc.Health", "Check", "", 10s);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    ::grpc::HealthCheckResponse health;
    ASSERT_TRUE(health.ParseFromString(*reply));
    EXPECT_EQ(health.status(), ::grpc::HealthCheckResponse::SERVING);
  }

  static bool ClosedByPeer(int fd) {
    std::array<std::uint8_t, 1> byte{};
    Status s = ttrpc::ReadFull(fd, byte, std::chrono::steady_clock::now() + 10s);
    return s.code() == Code::kOutOfRange || s.code() == Code::kUnavailable || s.code() == Code::kUnknown;
  }

  sealroot::testing::TempDir dir_;
  AgentConfig config_;
  testing::FakePuller* puller_ = nullptr;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AttackTest, OversizedFrameGetsResourceExhaustedAndTheConnectionGoesOn) {
  UniqueFd fd = Connect();
  std::string big((4u << 20) + 1, 'x');
  ASSERT_TRUE(
      ttrpc::WriteFrame(fd.get(), {static_cast<std::uint32_t>(big.size()), 1, ttrpc::kTypeRequest, 0}, big)
          .ok());
  auto response = ReadResponse(fd.get());
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->first.stream_id, 1u);
  EXPECT_EQ(response->second.status().code(), static_cast<int>(Code::kResourceExhausted));
  // The same connection still works.
  std::string ok = HealthRequest();
  ASSERT_TRUE(
      ttrpc::WriteFrame(fd.get(), {static_cast<std::uint32_t>(ok.size()), 3, ttrpc::kTypeRequest, 0}, ok)
          .ok());
  auto health = ReadResponse(fd.get());
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->second.status().code(), 0);
}

TEST_F(AttackTest, GarbageBytesCloseOnlyThatConnection) {
  UniqueFd fd = Connect();
  std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(WriteAll(fd.get(), AsBytes(garbage)).ok());
  EXPECT_TRUE(ClosedByPeer(fd.get()));
  ExpectStillServing();
}

TEST_F(AttackTest, HalfFrameTimesOutWhileOthersAreServed) {
  UniqueFd fd = Connect();
  std::array<std::uint8_t, 5> half = {0, 0, 0, 20, 0};
  ASSERT_TRUE(WriteAll(fd.get(), half).ok());
  ExpectStillServing();                 // meanwhile
  EXPECT_TRUE(ClosedByPeer(fd.get()));  // after the 500 ms frame timeout
  ExpectStillServing();
}

TEST_F(AttackTest, HeaderWithMissingBodyThenDisconnectIsHarmless) {
  {
    UniqueFd fd = Connect();
    auto head = ttrpc::EncodeHeader({1000, 1, ttrpc::kTypeRequest, 0});
    ASSERT_TRUE(WriteAll(fd.get(), head).ok());
  }
  ExpectStillServing();
}

TEST_F(AttackTest, EvenStreamIdAndUndecodableRequestGetInvalidArgument) {
  UniqueFd fd = Connect();
  std::string ok = HealthRequest();
  ASSERT_TRUE(
      ttrpc::WriteFrame(fd.get(), {static_cast<std::uint32_t>(ok.size()), 2, ttrpc::kTypeRequest, 0}, ok)
          .ok());
  auto even = ReadResponse(fd.get());
  ASSERT_TRUE(even.has_value());
  EXPECT_EQ(even->second.status().code(), static_cast<int>(Code::kInvalidArgument));
  std::string junk = "\xff\xff\xff\xff\xff";
  ASSERT_TRUE(
      ttrpc::WriteFrame(fd.get(), {static_cast<std::uint32_t>(junk.size()), 5, ttrpc::kTypeRequest, 0}, junk)
          .ok());
  auto undecodable = ReadResponse(fd.get());
  ASSERT_TRUE(undecodable.has_value());
  EXPECT_EQ(undecodable->first.stream_id, 5u);
  EXPECT_EQ(undecodable->second.status().code(), static_cast<int>(Code::kInvalidArgument));
}

TEST_F(AttackTest, ResponseTypeFromClientClosesTheConnection) {
  UniqueFd fd = Connect();
  ASSERT_TRUE(ttrpc::WriteFrame(fd.get(), {0, 1, ttrpc::kTypeResponse, 0}, "").ok());
  EXPECT_TRUE(ClosedByPeer(fd.get()));
  ExpectStillServing();
}

TEST_F(AttackTest, ClientDisconnectingMidPullDoesNotStopThePullOrTheAgent) {
  puller_->Close();
  {
    UniqueFd fd = Connect();
    ::grpc::PullImageRequest pull;
    pull.set_image("registry/a:1");
    pull.set_container_id("c1");
    ::ttrpc::Request request;
    request.set_service("grpc.Image");
    request.set_method("PullImage");
    request.set_payload(pull.SerializeAsString());
    std::string bytes = request.SerializeAsString();
    ASSERT_TRUE(ttrpc::WriteFrame(
                    fd.get(), {static_cast<std::uint32_t>(bytes.size()), 1, ttrpc::kTypeRequest, 0}, bytes)
                    .ok());
    ASSERT_TRUE(puller_->WaitRunning(1));
  }  // the client goes away mid-call
  ExpectStillServing();
  puller_->Open();
  // The pull completed and was recorded: pulling again for another container reuses it.
  auto client = ttrpc::Client::Connect(config_.ttrpc[0]);
  ASSERT_TRUE(client.ok());
  ::grpc::PullImageRequest again;
  again.set_image("registry/a:1");
  again.set_container_id("c2");
  ASSERT_TRUE((*client)->Call("grpc.Image", "PullImage", again.SerializeAsString(), 20s).ok());
  EXPECT_EQ(puller_->pulls("registry/a:1"), 1);
}

TEST_F(AttackTest, ManyConnectionsBeyondTheLimitAreRefusedNotCrashed) {
  std::vector<UniqueFd> fds;
  for (std::size_t i = 0; i < config_.limits.max_connections + 8; ++i) fds.push_back(Connect());
  fds.clear();
  std::this_thread::sleep_for(200ms);
  ExpectStillServing();
}

}  // namespace
}  // namespace sealroot::agent
