#include "boot/src/exec_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/log.h"
#include "base/socket.h"
#include "boot/container.h"
#include "boot/spec/cgroup_stats.h"
#include "boot/spec/exec.h"
#include "boot/spec/process_spec.h"
#include "boot/src/supervise.h"
#include "local-attest/channel.h"

namespace sealroot::boot {
namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(5);

local_attest::Deadline Soon() {
  return std::chrono::steady_clock::now() + kHandshakeTimeout;
}

std::array<std::uint8_t, 4> U32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

std::uint32_t FromU32(std::span<const std::uint8_t> bytes, std::size_t at) {
  return (std::uint32_t{bytes[at]} << 24) | (std::uint32_t{bytes[at + 1]} << 16) |
         (std::uint32_t{bytes[at + 2]} << 8) | bytes[at + 3];
}

// The three stdio descriptors sent with SCM_RIGHTS.
Result<std::array<UniqueFd, 3>> ReceiveStdio(int conn) {
  pollfd p{conn, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kHandshakeTimeout).count())) != 1) {
    return DeadlineExceeded("exec: no stdio descriptors");
  }
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) != 1) return ErrnoStatus("exec: receiving stdio", errno);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  std::array<UniqueFd, 3> out;
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(3 * sizeof(int)) ||
      (msg.msg_flags & MSG_CTRUNC)) {
    // Close whatever arrived before refusing.
    for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h != nullptr; h = CMSG_NXTHDR(&msg, h)) {
      if (h->cmsg_type != SCM_RIGHTS) continue;
      std::size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < n; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
        ::close(fd);
      }
    }
    return InvalidArgument("exec: expected exactly three stdio descriptors");
  }
  for (int i = 0; i < 3; ++i) {
    int fd;
    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
    out[i].Reset(fd);
  }
  return out;
}

// Reads one request and checks that the container's agent sent it: returns its text.
Result<std::string> Authenticate(int conn, const SecretBytes& key) {
  std::array<std::uint8_t, kExecChallengeSize> challenge;
  RandomBytes(challenge);
  SR_RETURN_IF_ERROR(local_attest::WriteFrame(conn, challenge, Soon()));
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> frame, local_attest::ReadFrame(conn, kExecMaxFrame, Soon()));
  if (frame.size() < 32) return InvalidArgument("exec: request too short");
  std::string request(frame.begin() + 32, frame.end());
  Sha256Digest mac = ExecRequestMac(key, challenge, request);
  if (!ConstantTimeEqual(std::span(frame).first(32), mac)) {
    return PermissionDenied("exec: request not authenticated (not from this container's agent)");
  }
  return request;
}

// A control request (no process): {"terminalSize":{"height","width"}} resizes the entrypoint's
// terminal, {"cgroupStats":{}} reads the container's cgroup, {"resources":{...}} updates it. The
// reply's second frame, if any: the stats document. nullopt for an exec request.
struct ControlReply {
  Status status;
  std::string document;
};

std::optional<ControlReply> ControlRequest(const std::string& request, ContainerInit& init) {
  const nlohmann::json doc = nlohmann::json::parse(request, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || doc.size() != 1) return std::nullopt;
  if (doc.contains("cgroupStats")) {
    Result<CgroupStats> stats = init.Stats();
    if (!stats.ok()) return ControlReply{std::move(stats).status(), ""};
    return ControlReply{OkStatus(), EncodeCgroupStats(*stats).dump()};
  }
  if (doc.contains("resources")) {
    if (!doc["resources"].is_object())
      return ControlReply{InvalidArgument("exec: resources must be an object"), ""};
    return ControlReply{init.UpdateResources(doc["resources"]), ""};
  }
  if (!doc.contains("terminalSize")) return std::nullopt;
  const nlohmann::json& size = doc["terminalSize"];
  if (!size.is_object() || !size.contains("height") || !size.contains("width") ||
      !size["height"].is_number_unsigned() || !size["width"].is_number_unsigned() ||
      size["height"].get<std::uint64_t>() > 0xffff || size["width"].get<std::uint64_t>() > 0xffff) {
    return ControlReply{InvalidArgument("exec: terminalSize needs height and width (0-65535)"), ""};
  }
  return ControlReply{init.ResizeTerminal(size["height"].get<unsigned>(), size["width"].get<unsigned>()), ""};
}

// Has init start the process of an authenticated request.
Result<std::unique_ptr<ContainerExec>> Launch(int conn, const std::string& request, ContainerInit& init) {
  using Stdio = std::array<UniqueFd, 3>;
  SR_ASSIGN_OR_RETURN(Stdio stdio, ReceiveStdio(conn));
  SR_ASSIGN_OR_RETURN(BootSpec spec, ParseBootSpec(request));
  if (spec.process.args.empty()) return InvalidArgument("exec: process.args is empty");
  SR_ASSIGN_OR_RETURN(ProcessSpec process, ResolveProcess(spec));
  return init.Spawn(process, {stdio[0].get(), stdio[1].get(), stdio[2].get()});
}

Result<std::unique_ptr<ContainerExec>> Accept(int conn, const SecretBytes& key, ContainerInit& init,
                                              std::optional<ControlReply>& control) {
  SR_ASSIGN_OR_RETURN(std::string request, Authenticate(conn, key));
  control = ControlRequest(request, init);
  if (control) return std::unique_ptr<ContainerExec>();
  return Launch(conn, request, init);
}

}  // namespace

Result<std::unique_ptr<ExecServer>> ExecServer::Start(const std::string& socket_path, SecretBytes exec_key,
                                                      std::shared_ptr<ContainerInit> init) {
  auto out = std::unique_ptr<ExecServer>(new ExecServer());
  out->socket_path_ = socket_path;
  out->key_ = std::move(exec_key);
  out->init_ = std::move(init);
  SR_ASSIGN_OR_RETURN(out->listen_, ListenUnix(socket_path, 8));
  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  out->stop_read_.Reset(stop[0]);
  out->stop_write_.Reset(stop[1]);
  out->acceptor_ = std::thread([server = out.get()] { server->AcceptLoop(); });
  return out;
}

ExecServer::~ExecServer() {
  if (stop_write_) (void)::write(stop_write_.get(), "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> sessions;
  {
    MutexLock lock(mu_);
    sessions.swap(sessions_);
  }
  for (std::thread& t : sessions) t.join();
  if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
}

void ExecServer::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    int conn = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    MutexLock lock(mu_);
    sessions_.emplace_back([this, conn] { Serve(conn); });
  }
}

void ExecServer::Serve(int raw_conn) {
  UniqueFd conn(raw_conn);
  std::optional<ControlReply> control;
  auto process = Accept(conn.get(), key_, *init_, control);
  if (process.ok() && control) {
    const std::string reply = control->status.ok() ? "ok" : "error: " + control->status.message();
    if (local_attest::WriteFrame(conn.get(), AsBytes(reply), Soon()).ok() && control->status.ok() &&
        !control->document.empty()) {
      (void)local_attest::WriteFrame(conn.get(), AsBytes(control->document), Soon());
    }
    return;
  }
  if (!process.ok()) {
    SR_LOG(kWarning) << process.status().message();
    (void)local_attest::WriteFrame(conn.get(), AsBytes("error: " + process.status().message()), Soon());
    return;
  }
  ContainerExec& exec = **process;
  if (!local_attest::WriteFrame(conn.get(), AsBytes("ok"), Soon()).ok()) exec.Signal(SIGKILL);
  // Until the process ends: signals from the agent go to it; the agent hanging up, or the
  // container ending (the stop pipe), kills it.
  while (true) {
    pollfd fds[3] = {{exec.exit_fd(), POLLIN, 0}, {conn.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) break;
    if (fds[2].revents != 0) {
      exec.Signal(SIGKILL);
      break;
    }
    if (fds[1].revents == 0) continue;
    auto frame = local_attest::ReadFrame(conn.get(), 8, Soon());
    if (!frame.ok() || (frame->size() != 4 && frame->size() != 8)) {
      exec.Signal(SIGKILL);
      break;
    }
    if (frame->size() == 4) {
      exec.Signal(static_cast<int>(FromU32(*frame, 0)));
      continue;
    }
    // A resize is answered once applied (1 byte, 0: applied), so that the agent returns only
    // then: the process reads what is written next at the new size.
    Status resized = exec.ResizeTerminal(FromU32(*frame, 0), FromU32(*frame, 4));
    if (!resized.ok()) {
      SR_LOG(kWarning) << "exec: " << resized.message();
    }
    const std::uint8_t answer = resized.ok() ? 0 : 1;
    if (!local_attest::WriteFrame(conn.get(), std::span(&answer, 1), Soon()).ok()) {
      exec.Signal(SIGKILL);
      break;
    }
  }
  pollfd exited{exec.exit_fd(), POLLIN, 0};
  (void)::poll(&exited, 1, -1);
  const int exit_code = exec.exit_code();
  process->reset();  // a terminal's output is relayed in full before the exit code is sent
  (void)local_attest::WriteFrame(conn.get(), U32(static_cast<std::uint32_t>(exit_code)), Soon());
}

}  // namespace sealroot::boot
