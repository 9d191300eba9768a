// A ttrpc request's timeout_nano is its deadline, as in containerd/ttrpc: a call whose deadline
// passes before its handler answers gets DEADLINE_EXCEEDED (whether the handler is running,
// still queued, or ignores the deadline), the handler sees the deadline through CallStatus(),
// 0 means no deadline, and the server keeps serving the connection and others afterwards.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "rpc/call_context.h"
#include "rpc/server.h"
#include "rpc/ttrpc.h"
#include "tests/support/process.h"
#include "ttrpc.pb.h"

namespace sealroot::rpc {
namespace {

using namespace std::chrono_literals;

// "test.Echo/Echo" answers its payload at once. "test.Slow/Hold" waits until released,
// ignoring its deadline. "test.Slow/Poll" waits, polling CallStatus() as the agent's blocking
// calls do, until released or told to give up.
class TestHandler final : public RpcHandler {
 public:
  RpcReply Call(std::string_view service, std::string_view method, std::string_view payload) const override {
    std::unique_lock lock(mu_);
    ++started_[std::string(payload)];
    cv_.notify_all();
    if (service == "test.Echo") return {OkStatus(), std::string(payload)};
    while (!released_) {
      if (method == "Poll") {
        if (Status call = CallStatus("Poll"); !call.ok()) {
          seen_[std::string(payload)] = call.code();
          cv_.notify_all();
          return {call, {}};
        }
      }
      cv_.wait_for(lock, 10ms);
    }
    return {OkStatus(), "done " + std::string(payload)};
  }
  bool IsBlocking(std::string_view, std::string_view) const override { return false; }

  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int started(const std::string& payload) const {
    std::lock_guard lock(mu_);
    auto it = started_.find(payload);
    return it == started_.end() ? 0 : it->second;
  }
  void AwaitStarted(const std::string& payload) const {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return started_.contains(payload); });
  }
  // What CallStatus() told the Poll call with `payload` when it gave up.
  Code AwaitSeen(const std::string& payload) const {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return seen_.contains(payload); });
    return seen_.at(payload);
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool released_ = false;
  mutable std::map<std::string, int> started_;
  mutable std::map<std::string, Code> seen_;
};

struct Answer {
  std::uint32_t stream = 0;
  int code = -1;
  std::string payload;
};

class TtrpcDeadlineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServeTtrpc(address_, handler_, limits_, executor_, blocking_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    fd_ = Connect();
  }
  void TearDown() override {
    handler_.Release();
    server_->Stop();
    executor_.Shutdown();
  }

  UniqueFd Connect() {
    auto fd = ttrpc::Dial(address_);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }
  static void Send(int fd, std::uint32_t stream, const std::string& service, const std::string& method,
                   const std::string& payload, std::chrono::nanoseconds timeout) {
    ::ttrpc::Request request;
    request.set_service(service);
    request.set_method(method);
    request.set_payload(payload);
    request.set_timeout_nano(timeout.count());
    const std::string bytes = request.SerializeAsString();
    ASSERT_TRUE(ttrpc::WriteFrame(
                    fd, {static_cast<std::uint32_t>(bytes.size()), stream, ttrpc::kTypeRequest, 0}, bytes)
                    .ok());
  }
  // The next response on `fd` (waiting as long as a test may take: the client sets no deadline).
  static Answer Receive(int fd) {
    const auto deadline = std::chrono::steady_clock::now() + 5min;
    std::array<std::uint8_t, ttrpc::kHeaderSize> head{};
    Status read = ttrpc::ReadFull(fd, head, deadline);
    EXPECT_TRUE(read.ok()) << read.ToString();
    if (!read.ok()) return {};
    ttrpc::FrameHeader header = ttrpc::DecodeHeader(head);
    std::string body(header.length, '\0');
    read =
        ttrpc::ReadFull(fd, std::span(reinterpret_cast<std::uint8_t*>(body.data()), body.size()), deadline);
    EXPECT_TRUE(read.ok()) << read.ToString();
    ::ttrpc::Response response;
    EXPECT_TRUE(response.ParseFromString(body));
    return {header.stream_id, response.status().code(), response.payload()};
  }
  // A quick call on `fd` is answered.
  void ExpectHealthy(int fd, std::uint32_t stream) {
    Send(fd, stream, "test.Echo", "Echo", "ping " + std::to_string(stream), 0ns);
    Answer a = Receive(fd);
    EXPECT_EQ(a.stream, stream);
    EXPECT_EQ(a.code, 0);
    EXPECT_EQ(a.payload, "ping " + std::to_string(stream));
  }

  sealroot::testing::TempDir dir_;
  const ListenAddress address_ = ListenAddress::Unix(dir_ / "ttrpc.sock");
  TestHandler handler_;
  Limits limits_;
  Executor executor_{4, 16};
  BlockingCallLimit blocking_{8, 8};
  std::unique_ptr<Server> server_;
  UniqueFd fd_;
};

TEST_F(TtrpcDeadlineTest, AHandlerThatIgnoresTheDeadlineStillLeavesTheCallerADeadlineExceeded) {
  Send(fd_.get(), 1, "test.Slow", "Hold", "held", 100ms);
  Answer a = Receive(fd_.get());
  EXPECT_EQ(a.stream, 1u);
  EXPECT_EQ(a.code, static_cast<int>(Code::kDeadlineExceeded));
  EXPECT_EQ(handler_.started("held"), 1);
  // The handler's late answer is dropped: the next answer on the connection is the next call's.
  handler_.Release();
  ExpectHealthy(fd_.get(), 3);
  UniqueFd other = Connect();
  ExpectHealthy(other.get(), 1);
}

TEST_F(TtrpcDeadlineTest, TheHandlerSeesTheDeadlineThroughCallStatus) {
  Send(fd_.get(), 1, "test.Slow", "Poll", "polled", 100ms);
  Answer a = Receive(fd_.get());
  EXPECT_EQ(a.code, static_cast<int>(Code::kDeadlineExceeded));
  EXPECT_EQ(handler_.AwaitSeen("polled"), Code::kDeadlineExceeded);
  ExpectHealthy(fd_.get(), 3);
}

TEST_F(TtrpcDeadlineTest, ZeroMeansNoDeadline) {
  Send(fd_.get(), 1, "test.Slow", "Poll", "patient", 0ns);
  handler_.AwaitStarted("patient");
  // A later call with a deadline is answered DEADLINE_EXCEEDED while the first still waits...
  Send(fd_.get(), 3, "test.Slow", "Hold", "hasty", 50ms);
  Answer hasty = Receive(fd_.get());
  EXPECT_EQ(hasty.stream, 3u);
  EXPECT_EQ(hasty.code, static_cast<int>(Code::kDeadlineExceeded));
  // ...and the one without a deadline gets its handler's answer once the handler gives it.
  handler_.Release();
  Answer patient = Receive(fd_.get());
  EXPECT_EQ(patient.stream, 1u);
  EXPECT_EQ(patient.code, 0);
  EXPECT_EQ(patient.payload, "done patient");
}

TEST_F(TtrpcDeadlineTest, ACallQueuedPastItsDeadlineNeverRuns) {
  // Every request thread busy with a call without a deadline: the next call waits in the queue.
  for (std::uint32_t i = 0; i < 4; ++i) Send(fd_.get(), 2 * i + 1, "test.Slow", "Hold", "busy", 0ns);
  Send(fd_.get(), 9, "test.Slow", "Hold", "queued", 50ms);
  Answer queued = Receive(fd_.get());
  EXPECT_EQ(queued.stream, 9u);
  EXPECT_EQ(queued.code, static_cast<int>(Code::kDeadlineExceeded));
  handler_.Release();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Receive(fd_.get()).code, 0);
  ExpectHealthy(fd_.get(), 11);
  EXPECT_EQ(handler_.started("queued"), 0);
}

TEST_F(TtrpcDeadlineTest, ANegativeTimeoutHasAlreadyPassed) {
  Send(fd_.get(), 1, "test.Echo", "Echo", "late", -1ns);
  Answer a = Receive(fd_.get());
  EXPECT_EQ(a.code, static_cast<int>(Code::kDeadlineExceeded));
  EXPECT_EQ(handler_.started("late"), 0);
  ExpectHealthy(fd_.get(), 3);
}

TEST_F(TtrpcDeadlineTest, ACallAnsweredInTimeIsAnsweredOnce) {
  Send(fd_.get(), 1, "test.Echo", "Echo", "quick", 200ms);
  Answer a = Receive(fd_.get());
  EXPECT_EQ(a.code, 0);
  EXPECT_EQ(a.payload, "quick");
  // Past the deadline nothing more arrives for stream 1: the next answer is stream 3's.
  Send(fd_.get(), 3, "test.Slow", "Hold", "after", 300ms);
  Answer after = Receive(fd_.get());
  EXPECT_EQ(after.stream, 3u);
  EXPECT_EQ(after.code, static_cast<int>(Code::kDeadlineExceeded));
  ExpectHealthy(fd_.get(), 5);
}

}  // namespace
}  // namespace sealroot::rpc
