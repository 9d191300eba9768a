// Probe tells a serving ttrpc server from one that is gone, where a bare connect cannot: a
// server killed while its listening socket is still open takes connections into its backlog and
// never answers them. A server that answers with an error still serves; one that says nothing
// in time may be only slow, and Probe says so apart.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <future>
#include <thread>

#include "base/log.h"
#include "base/socket.h"
#include "rpc/server.h"
#include "rpc/ttrpc.h"
#include "tests/support/process.h"

namespace sealroot::rpc {
namespace {

using namespace std::chrono_literals;

class RefusingHandler final : public RpcHandler {
 public:
  RpcReply Call(std::string_view service, std::string_view, std::string_view) const override {
    return {Unimplemented("no service " + std::string(service)), {}};
  }
  bool IsBlocking(std::string_view, std::string_view) const override { return false; }
};

class TtrpcProbeTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  ListenAddress address_{.kind = ListenAddress::Kind::kUnix, .path = dir_ / "server.sock"};
};

TEST_F(TtrpcProbeTest, AServerThatAnswersWithAnErrorStillServes) {
  RefusingHandler handler;
  auto service = TtrpcService::Start(address_, handler);
  ASSERT_TRUE(service.ok()) << service.status().message();
  const log::Level level = log::GetLevel();
  log::SetLevel(log::Level::kInfo);
  ::testing::internal::CaptureStderr();
  Status probed = ttrpc::Probe(address_, 5s);
  std::this_thread::sleep_for(100ms);  // for the server to read past the probe's last frame
  (*service)->Stop();
  const std::string logged = ::testing::internal::GetCapturedStderr();
  log::SetLevel(level);
  EXPECT_TRUE(probed.ok()) << probed.message();
  // A probe reads its answer whole: closing a unix socket with unread data resets the peer.
  EXPECT_EQ(logged.find("connection closed"), std::string::npos) << logged;
}

TEST_F(TtrpcProbeTest, NothingListeningIsUnavailable) {
  EXPECT_EQ(ttrpc::Probe(address_, 5s).code(), Code::kUnavailable);
  RefusingHandler handler;
  auto service = TtrpcService::Start(address_, handler);
  ASSERT_TRUE(service.ok());
  (*service)->Stop();
  EXPECT_EQ(ttrpc::Probe(address_, 5s).code(), Code::kUnavailable);
}

TEST_F(TtrpcProbeTest, AListenerClosedWithTheProbeInItsBacklogIsUnavailable) {
  auto listener = ListenUnix(address_.path);
  ASSERT_TRUE(listener.ok()) << listener.status().message();
  // What a bare connect sees of a listener whose owner is going: success.
  ASSERT_TRUE(ConnectUnix(address_.path).ok());
  pollfd drained{listener->get(), POLLIN, 0};
  while (::poll(&drained, 1, 0) == 1) {
    UniqueFd(::accept(listener->get(), nullptr, nullptr));
  }
  auto probed = std::async(std::launch::async, [&] { return ttrpc::Probe(address_, 30s); });
  pollfd pending{listener->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pending, 1, 10'000), 1) << "the probe's connection waits in the backlog";
  listener->Reset();
  ASSERT_EQ(probed.wait_for(10s), std::future_status::ready) << "the probe saw the listener go";
  Status status = probed.get();
  EXPECT_EQ(status.code(), Code::kUnavailable) << status.message();
}

TEST_F(TtrpcProbeTest, AServerThatNeverAnswersIsDeadlineExceededNotGone) {
  auto listener = ListenUnix(address_.path);
  ASSERT_TRUE(listener.ok());
  auto probed = std::async(std::launch::async, [&] { return ttrpc::Probe(address_, 300ms); });
  UniqueFd accepted(::accept(listener->get(), nullptr, nullptr));
  ASSERT_TRUE(accepted);
  EXPECT_EQ(probed.get().code(), Code::kDeadlineExceeded);
}

}  // namespace
}  // namespace sealroot::rpc
