// The ttrpc server (rpc/server.h): one accept thread, one reader thread per connection,
// handlers on the Executor, responses written under a per-connection lock. A request's
// timeout_nano is its deadline, as in containerd/ttrpc: the reader thread answers
// DEADLINE_EXCEEDED for a call whose deadline passes before its handler answers, and the
// handler sees the deadline through CallStatus().
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <list>
#include <map>
#include <thread>

#include "base/log.h"
#include "base/socket.h"
#include "base/thread_annotations.h"
#include "rpc/call_context.h"
#include "rpc/server.h"
#include "rpc/ttrpc.h"
#include "ttrpc.pb.h"

namespace sealroot::rpc {
namespace {

using ttrpc::FrameHeader;
using Clock = std::chrono::steady_clock;

// A request in flight: answered exactly once, by its handler or by its deadline.
struct PendingCall {
  PendingCall(std::uint32_t stream, std::uint64_t seq, CallDeadline deadline)
      : stream(stream), seq(seq), deadline(deadline) {}
  const std::uint32_t stream;
  const std::uint64_t seq;  // orders calls with the same deadline
  const CallDeadline deadline;
  std::atomic<bool> answered{false};
};

// The deadline of a request received now: none for timeout_nano 0 (as containerd/ttrpc), and
// one already passed for a negative timeout.
CallDeadline DeadlineOf(std::int64_t timeout_nano) {
  if (timeout_nano == 0) return std::nullopt;
  const Clock::time_point now = Clock::now();
  if (timeout_nano < 0) return now;
  const auto timeout = std::chrono::nanoseconds(timeout_nano);
  if (timeout >= Clock::time_point::max() - now) return std::nullopt;  // never, in practice
  return now + std::chrono::duration_cast<Clock::duration>(timeout);
}

Status DeadlinePassed() {
  return DeadlineExceeded("the call's deadline (timeout_nano) passed before it was answered");
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(UniqueFd fd, const RpcHandler& handler, const Limits& limits, Executor& executor,
             BlockingCallLimit& blocking)
      : fd_(std::move(fd)), handler_(handler), limits_(limits), executor_(executor), blocking_(blocking) {}

  // Reads frames until EOF, a protocol error or Close().
  void Serve();
  void Close() { shutdown(fd_.get(), SHUT_RDWR); }
  bool finished() const { return finished_.load(); }

 private:
  Status ServeOneFrame();
  // Waits until a frame starts, answering the calls whose deadlines pass meanwhile.
  Status AwaitFrame();
  // Answers the calls whose deadline has passed; the next deadline still ahead, if any.
  CallDeadline ExpireDeadlines() SR_EXCLUDES(deadlines_mu_, write_mu_);
  // Replies for `call` unless it was answered already.
  void Answer(PendingCall& call, const Status& status, std::string payload)
      SR_EXCLUDES(deadlines_mu_, write_mu_);
  void Reply(std::uint32_t stream, const Status& status, std::string payload) SR_EXCLUDES(write_mu_);
  Status Discard(std::size_t length, std::chrono::steady_clock::time_point deadline);

  UniqueFd fd_;
  const RpcHandler& handler_;
  const Limits& limits_;
  Executor& executor_;
  BlockingCallLimit& blocking_;
  // This connection's blocking calls in flight, and the flag that cancels them when it closes.
  const std::shared_ptr<std::atomic<std::size_t>> blocking_in_flight_ =
      std::make_shared<std::atomic<std::size_t>>(0);
  const std::shared_ptr<std::atomic<bool>> gone_ = std::make_shared<std::atomic<bool>>(false);
  Mutex write_mu_;
  std::atomic<bool> finished_{false};
  std::uint64_t next_seq_ = 0;  // the reader thread's
  // Calls in flight that have a deadline, soonest first.
  Mutex deadlines_mu_;
  std::map<std::pair<Clock::time_point, std::uint64_t>, std::shared_ptr<PendingCall>> deadlines_
      SR_GUARDED_BY(deadlines_mu_);
};

void Connection::Serve() {
  while (true) {
    Status status = ServeOneFrame();
    if (!status.ok()) {
      if (status.code() != Code::kOutOfRange) {
        SR_LOG(kInfo) << "ttrpc connection closed: " << status.message();
      }
      break;
    }
  }
  // Tell the peer now; the fd itself stays open until in-flight handlers drop their reference,
  // so a late reply can never reach a new connection that reused the number. Blocking calls
  // still waiting for this client give up (CallStatus) and free their slots.
  shutdown(fd_.get(), SHUT_RDWR);
  *gone_ = true;
  finished_ = true;
}

Status Connection::AwaitFrame() {
  pollfd pfd{fd_.get(), POLLIN, 0};
  while (true) {
    CallDeadline next = ExpireDeadlines();
    int timeout_ms = -1;
    if (next) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
    }
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready > 0) return OkStatus();
    if (ready < 0 && errno != EINTR) return ErrnoStatus("poll", errno);
  }
}

CallDeadline Connection::ExpireDeadlines() {
  std::vector<std::shared_ptr<PendingCall>> due;
  CallDeadline next;
  {
    MutexLock lock(deadlines_mu_);
    const Clock::time_point now = Clock::now();
    while (!deadlines_.empty() && deadlines_.begin()->first.first <= now) {
      due.push_back(std::move(deadlines_.begin()->second));
      deadlines_.erase(deadlines_.begin());
    }
    if (!deadlines_.empty()) next = deadlines_.begin()->first.first;
  }
  for (const auto& call : due) {
    if (!call->answered.exchange(true)) {
      Reply(call->stream, DeadlinePassed(), {});
    }
  }
  return next;
}

void Connection::Answer(PendingCall& call, const Status& status, std::string payload) {
  if (call.answered.exchange(true)) return;  // its deadline answered first
  if (call.deadline) {
    MutexLock lock(deadlines_mu_);
    deadlines_.erase({*call.deadline, call.seq});
  }
  Reply(call.stream, status, std::move(payload));
}

Status Connection::ServeOneFrame() {
  // Wait as long as needed for a frame to start; once started it must complete in time, so a
  // half-sent frame cannot pin the connection forever.
  SR_RETURN_IF_ERROR(AwaitFrame());
  const auto deadline = std::chrono::steady_clock::now() + limits_.frame_timeout;
  std::array<std::uint8_t, ttrpc::kHeaderSize> head{};
  SR_RETURN_IF_ERROR(ttrpc::ReadFull(fd_.get(), head, deadline));
  FrameHeader header = ttrpc::DecodeHeader(head);
  if (header.type != ttrpc::kTypeRequest) {
    return InvalidArgument("unexpected ttrpc message type " + std::to_string(header.type));
  }
  if (header.length > limits_.max_message_size) {
    SR_RETURN_IF_ERROR(Discard(header.length, deadline));
    Reply(header.stream_id,
          ResourceExhausted("message length " + std::to_string(header.length) +
                            " exceeds maximum message size of " + std::to_string(limits_.max_message_size)),
          {});
    return OkStatus();
  }
  std::string body(header.length, '\0');
  SR_RETURN_IF_ERROR(ttrpc::ReadFull(
      fd_.get(), std::span(reinterpret_cast<std::uint8_t*>(body.data()), body.size()), deadline));
  if (header.stream_id % 2 != 1) {
    Reply(header.stream_id, InvalidArgument("stream id must be odd for client-initiated calls"), {});
    return OkStatus();
  }
  auto request = std::make_shared<::ttrpc::Request>();
  if (!request->ParseFromString(body)) {
    Reply(header.stream_id, InvalidArgument("malformed ttrpc request"), {});
    return OkStatus();
  }
  auto call =
      std::make_shared<PendingCall>(header.stream_id, next_seq_++, DeadlineOf(request->timeout_nano()));
  if (call->deadline && *call->deadline <= Clock::now()) {
    Answer(*call, DeadlinePassed(), {});
    return OkStatus();
  }
  std::shared_ptr<BlockingCallLimit::Slot> slot;
  if (handler_.IsBlocking(request->service(), request->method())) {
    slot = blocking_.TryAcquire(blocking_in_flight_);
    if (!slot) {
      Reply(header.stream_id, ResourceExhausted(kTooManyBlockingCalls), {});
      return OkStatus();
    }
  }
  if (call->deadline) {
    MutexLock lock(deadlines_mu_);
    deadlines_.emplace(std::make_pair(*call->deadline, call->seq), call);
  }
  auto self = shared_from_this();
  // The slot goes with the task, after the reply.
  bool queued = executor_.Submit([self, request, call, slot] {
    // Waited in the queue past its deadline (answered, or about to be): the handler never runs.
    if (call->answered.load() || (call->deadline && Clock::now() >= *call->deadline)) {
      self->Answer(*call, DeadlinePassed(), {});
      return;
    }
    RpcReply reply;
    {
      CallScope scope(self->gone_, call->deadline);
      reply = self->handler_.Call(request->service(), request->method(), request->payload());
    }
    self->Answer(*call, reply.status, std::move(reply.payload));
  });
  if (!queued) Answer(*call, ResourceExhausted("too many requests in flight"), {});
  return OkStatus();
}

Status Connection::Discard(std::size_t length, std::chrono::steady_clock::time_point deadline) {
  std::array<std::uint8_t, 16384> sink{};
  while (length > 0) {
    std::size_t n = std::min(length, sink.size());
    SR_RETURN_IF_ERROR(ttrpc::ReadFull(fd_.get(), std::span(sink.data(), n), deadline));
    length -= n;
  }
  return OkStatus();
}

void Connection::Reply(std::uint32_t stream, const Status& status, std::string payload) {
  ::ttrpc::Response response;
  response.mutable_status()->set_code(static_cast<int>(status.code()));
  response.mutable_status()->set_message(status.message());
  response.set_payload(std::move(payload));
  std::string bytes = response.SerializeAsString();
  if (bytes.size() > limits_.max_message_size) {
    response.clear_payload();
    response.mutable_status()->set_code(static_cast<int>(Code::kResourceExhausted));
    response.mutable_status()->set_message("response larger than the maximum message size");
    bytes = response.SerializeAsString();
  }
  MutexLock lock(write_mu_);
  // A client that went away mid-call just loses its answer.
  Status written = ttrpc::WriteFrame(
      fd_.get(), {static_cast<std::uint32_t>(bytes.size()), stream, ttrpc::kTypeResponse, 0}, bytes);
  if (!written.ok()) {
    SR_LOG(kDebug) << "ttrpc reply to stream " << stream << ": " << written.message();
  }
}

class TtrpcServer final : public Server {
 public:
  TtrpcServer(UniqueFd listener, UniqueFd wake, const ListenAddress& address, const RpcHandler& handler,
              const Limits& limits, Executor& executor, BlockingCallLimit& blocking)
      : listener_(std::move(listener)),
        wake_(std::move(wake)),
        name_(address.ToString()),
        socket_path_(address.kind == ListenAddress::Kind::kUnix ? address.path : ""),
        handler_(handler),
        limits_(limits),
        executor_(executor),
        blocking_(blocking) {
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TtrpcServer() override { Stop(); }

  void Stop() override {
    if (!accept_thread_.joinable()) return;
    std::uint64_t one = 1;
    (void)!write(wake_.get(), &one, sizeof(one));
    accept_thread_.join();
    MutexLock lock(mu_);
    for (Entry& e : connections_) e.connection->Close();
    for (Entry& e : connections_) e.thread.join();
    connections_.clear();
    if (!socket_path_.empty()) unlink(socket_path_.c_str());
  }

 private:
  struct Entry {
    std::shared_ptr<Connection> connection;
    std::thread thread;
  };

  void AcceptLoop();
  void ReapFinished() SR_REQUIRES(mu_);

  UniqueFd listener_;
  UniqueFd wake_;
  const std::string name_;
  const std::string socket_path_;  // removed on Stop
  const RpcHandler& handler_;
  const Limits& limits_;
  Executor& executor_;
  BlockingCallLimit& blocking_;
  std::thread accept_thread_;
  Mutex mu_;
  std::list<Entry> connections_ SR_GUARDED_BY(mu_);
};

void TtrpcServer::ReapFinished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (!it->connection->finished()) {
      ++it;
      continue;
    }
    it->thread.join();
    it = connections_.erase(it);
  }
}

void TtrpcServer::AcceptLoop() {
  SR_LOG(kInfo) << "ttrpc listening on " << name_;
  while (true) {
    pollfd pfds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (poll(pfds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      SR_LOG(kError) << "ttrpc " << name_ << ": poll: " << std::strerror(errno);
      return;
    }
    if (pfds[1].revents != 0) return;
    UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    MutexLock lock(mu_);
    ReapFinished();
    if (connections_.size() >= limits_.max_connections) {
      SR_LOG(kWarning) << "ttrpc " << name_ << ": connection limit reached, refusing a connection";
      continue;
    }
    auto connection = std::make_shared<Connection>(std::move(fd), handler_, limits_, executor_, blocking_);
    connections_.push_back({connection, std::thread([connection] { connection->Serve(); })});
  }
}

}  // namespace

Result<std::unique_ptr<Server>> ServeTtrpc(const ListenAddress& address, const RpcHandler& handler,
                                           const Limits& limits, Executor& executor,
                                           BlockingCallLimit& blocking) {
  UniqueFd listener;
  if (address.kind == ListenAddress::Kind::kUnix) {
    SR_ASSIGN_OR_RETURN(listener, ListenUnix(address.path));
  } else {
    SR_ASSIGN_OR_RETURN(listener, ListenTcp(address.host, address.port));
  }
  UniqueFd wake(eventfd(0, EFD_CLOEXEC));
  if (!wake) return ErrnoStatus("eventfd", errno);
  return std::unique_ptr<Server>(std::make_unique<TtrpcServer>(std::move(listener), std::move(wake), address,
                                                               handler, limits, executor, blocking));
}

}  // namespace sealroot::rpc
