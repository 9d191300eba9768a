// The stub's side of key release: a unix-socket server, one thread per session (bounded), every
// session's outcome reported with the check that failed.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "base/fd.h"
#include "base/log.h"
#include "base/socket.h"
#include "base/thread_annotations.h"
#include "local-attest/channel.h"
#include "local-attest/dh.h"
#include "local-attest/release.h"

namespace sealroot::local_attest {
namespace {

constexpr char kAck[] = "sealroot-release-ack";
constexpr std::string_view kRecorded = "recorded";
constexpr std::string_view kRefused = "refused: ";

class Server final : public KeyReleaseServer {
 public:
  Server(local_attest::sgx::Tee& tee, std::string path, UniqueFd listener, UniqueFd wake,
         IdentityPolicy policy, std::string container_id, SecretBytes release, ReleaseServerOptions options)
      : tee_(tee),
        path_(std::move(path)),
        listener_(std::move(listener)),
        wake_(std::move(wake)),
        policy_(std::move(policy)),
        container_id_(std::move(container_id)),
        release_(std::move(release)),
        options_(std::move(options)) {
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~Server() override { Stop(); }

  const std::string& socket_path() const override { return path_; }

  void Stop() override {
    {
      MutexLock lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      for (int fd : live_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
    acceptor_.join();
    std::map<std::uint64_t, std::thread> sessions;
    {
      MutexLock lock(mu_);
      sessions.swap(sessions_);
    }
    for (auto& [id, t] : sessions) t.join();
    ::unlink(path_.c_str());
  }

 private:
  void AcceptLoop() {
    for (;;) {
      ReapFinished();
      pollfd p[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 && errno != EINTR) {
        SR_LOG(kError) << "key release for container " << container_id_
                       << ": stopped serving: poll: " << std::strerror(errno);
        return;
      }
      if (p[1].revents) return;
      if (!(p[0].revents & POLLIN)) continue;
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      MutexLock lock(mu_);
      while (!stopped_ && sessions_.size() - finished_.size() >= options_.max_sessions) cv_.wait(mu_);
      if (stopped_) return;
      const std::uint64_t id = next_id_++;
      live_.insert(conn.get());
      sessions_[id] =
          std::thread([this, id, c = std::move(conn)]() mutable { RunSession(id, std::move(c)); });
    }
  }

  void ReapFinished() {
    std::vector<std::thread> done;
    {
      MutexLock lock(mu_);
      for (std::uint64_t id : finished_) {
        done.push_back(std::move(sessions_[id]));
        sessions_.erase(id);
      }
      finished_.clear();
    }
    for (std::thread& t : done) t.join();
  }

  void RunSession(std::uint64_t id, UniqueFd conn) {
    Result<SecureChannel> channel = Release(conn.get());
    // The peer's pid, for the operator's log only: it proves nothing (the report does).
    ucred peer{};
    socklen_t len = sizeof(peer);
    const std::string who = ::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0
                                ? " (peer pid " + std::to_string(peer.pid) + ")"
                                : "";
    if (channel.ok()) {
      SR_LOG(kInfo) << "key release for container " << container_id_ << who << ": delivered";
    } else {
      SR_LOG(kWarning) << "key release for container " << container_id_ << who
                       << ": refused: " << channel.status().message();
    }
    if (options_.on_session) options_.on_session(channel.status());
    if (channel.ok()) {
      if (Status reports = ServeReports(conn.get(), *channel); !reports.ok()) {
        SR_LOG(kWarning) << "container " << container_id_ << who
                         << ": upper commit reports ended: " << reports.message();
      }
    }
    MutexLock lock(mu_);
    live_.erase(conn.get());
    finished_.push_back(id);
    cv_.notify_all();
  }

  // The handshake and the release; returns the session's channel once the boot acknowledged.
  Result<SecureChannel> Release(int fd) {
    const Deadline deadline = std::chrono::steady_clock::now() + options_.io_timeout;
    SR_ASSIGN_OR_RETURN(DhResponder dh, DhResponder::Create(tee_));
    SR_RETURN_IF_ERROR_CTX(WriteFrame(fd, dh.msg1(), deadline), "sending msg1");
    SR_ASSIGN_OR_RETURN(auto msg2, ReadFrame(fd, kMaxFrameSize, deadline));
    SR_ASSIGN_OR_RETURN(local_attest::sgx::ReportBody app, dh.ProcessMsg2(msg2));
    SR_RETURN_IF_ERROR_CTX(CheckIdentity(app, policy_), "app enclave " + DescribeIdentity(app));
    SR_ASSIGN_OR_RETURN(auto msg3, dh.MakeMsg3());
    SR_RETURN_IF_ERROR_CTX(WriteFrame(fd, msg3, deadline), "sending msg3");
    SR_ASSIGN_OR_RETURN(SecureChannel channel, SecureChannel::Create(dh.TakeAek(), ChannelRole::kResponder));
    SR_ASSIGN_OR_RETURN(auto sealed, channel.Seal(release_.span()));
    SR_RETURN_IF_ERROR_CTX(WriteFrame(fd, sealed, deadline), "sending the release");
    SR_ASSIGN_OR_RETURN(auto ack_frame, ReadFrame(fd, kMaxFrameSize, deadline));
    Result<SecretBytes> ack = channel.Open(ack_frame);
    if (!ack.ok()) return std::move(ack).status().WithContext("the boot's acknowledgement");
    if (AsChars(ack->span()) != kAck) return DataLoss("the boot's acknowledgement is malformed");
    return channel;
  }

  // The attested boot's reports of committed upper states, each answered once recorded, until
  // the boot hangs up (or Stop shuts the connection down). No deadline between reports: a
  // container may run for months; Stop ends the wait.
  Status ServeReports(int fd, SecureChannel& channel) {
    for (;;) {
      Result<std::vector<std::uint8_t>> frame = ReadFrame(fd, kMaxFrameSize, Deadline::max());
      if (!frame.ok()) {
        return frame.status().code() == Code::kUnavailable ? OkStatus() : frame.status();
      }
      SR_ASSIGN_OR_RETURN(SecretBytes plain, channel.Open(*frame));
      Result<UpperCommit> commit = DecodeUpperCommit(plain.span());
      Status recorded = !commit.ok()               ? commit.status()
                        : options_.on_upper_commit ? options_.on_upper_commit(*commit)
                                                   : FailedPrecondition("this stub records no upper commits");
      const std::string answer =
          recorded.ok() ? std::string(kRecorded) : std::string(kRefused) + recorded.message();
      if (!recorded.ok()) {
        SR_LOG(kWarning) << "container " << container_id_ << ": upper commit refused: " << recorded.message();
      }
      SR_ASSIGN_OR_RETURN(auto sealed, channel.Seal(AsBytes(answer)));
      SR_RETURN_IF_ERROR(WriteFrame(fd, sealed, std::chrono::steady_clock::now() + options_.io_timeout));
    }
  }

  local_attest::sgx::Tee& tee_;
  const std::string path_;
  const UniqueFd listener_, wake_;
  const IdentityPolicy policy_;
  const std::string container_id_;
  const SecretBytes release_;  // the encoded release, sealed anew per session
  const ReleaseServerOptions options_;
  std::thread acceptor_;

  Mutex mu_;
  std::condition_variable_any cv_;
  bool stopped_ SR_GUARDED_BY(mu_) = false;
  std::uint64_t next_id_ SR_GUARDED_BY(mu_) = 0;
  std::map<std::uint64_t, std::thread> sessions_ SR_GUARDED_BY(mu_);
  std::vector<std::uint64_t> finished_ SR_GUARDED_BY(mu_);
  std::set<int> live_ SR_GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<KeyReleaseServer>> KeyReleaseServer::Start(local_attest::sgx::Tee& tee,
                                                                  std::string socket_path,
                                                                  IdentityPolicy app_policy,
                                                                  KeyRelease release,
                                                                  ReleaseServerOptions options) {
  SR_RETURN_IF_ERROR_CTX(app_policy.Validate(), "key release for container " + release.container_id);
  app_policy.config_id = ContainerConfigId(release.container_id, release.spec_digest);
  SR_ASSIGN_OR_RETURN(SecretBytes encoded, EncodeKeyRelease(release));
  if (options.max_sessions == 0) options.max_sessions = 1;
  SR_ASSIGN_OR_RETURN(UniqueFd listener, ListenUnix(socket_path, 16));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC));
  if (!wake) return ErrnoStatus("eventfd", errno);
  return std::unique_ptr<KeyReleaseServer>(std::make_unique<Server>(
      tee, std::move(socket_path), std::move(listener), std::move(wake), std::move(app_policy),
      release.container_id, std::move(encoded), std::move(options)));
}

}  // namespace sealroot::local_attest
