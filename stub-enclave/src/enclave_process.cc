// EnclaveProcess's streams, and the exec client.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "base/file.h"
#include "base/socket.h"
#include "boot/spec/exec.h"
#include "local-attest/channel.h"
#include "stub-enclave/app_enclave.h"
#include "stub-enclave/src/exec_client.h"

namespace sealroot::stub_enclave {
namespace {

constexpr std::size_t kMaxRead = 1u << 20;

Result<std::string> ReadStream(int fd, std::size_t max_len) {
  if (fd < 0) return FailedPrecondition("stream already closed");
  std::string buffer(std::min(max_len == 0 ? kMaxRead : max_len, kMaxRead), '\0');
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading the process's output", errno);
    buffer.resize(static_cast<std::size_t>(n));
    return buffer;
  }
}

// A write to a pipe whose reader is gone raises SIGPIPE, which would end the agent: block it in
// this thread for the write and consume the one the write may have raised.
Status WriteWithoutSigpipe(int fd, std::string_view data) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  Status written = WriteAll(fd, AsBytes(data));
  if (!written.ok()) {
    timespec zero{};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return written;
}

Status SendStdio(int conn, const std::array<UniqueFd, 3>& fds) {
  char byte = 's';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(3 * sizeof(int));
  for (int i = 0; i < 3; ++i) {
    int fd = fds[i].get();
    std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof fd);
  }
  if (::sendmsg(conn, &msg, MSG_NOSIGNAL) != 1) return ErrnoStatus("sending the exec's stdio", errno);
  return OkStatus();
}

// Connects to the exec socket and sends `request`, authenticated with the container's exec key.
Result<UniqueFd> ConnectAndSend(const std::string& socket_path, const SecretBytes& key,
                                std::string_view request, local_attest::Deadline deadline) {
  // The boot opens the socket once the container runs, which may be a moment after StartContainer.
  Result<UniqueFd> connected = ConnectUnix(socket_path, deadline);
  if (!connected.ok()) return std::move(connected).status().WithContext("the boot's exec socket");
  UniqueFd conn = std::move(*connected);
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> challenge,
                      local_attest::ReadFrame(conn.get(), boot::kExecMaxFrame, deadline));
  Sha256Digest mac = boot::ExecRequestMac(key, challenge, request);
  std::vector<std::uint8_t> frame(mac.begin(), mac.end());
  frame.insert(frame.end(), request.begin(), request.end());
  SR_RETURN_IF_ERROR(local_attest::WriteFrame(conn.get(), frame, deadline));
  return conn;
}

std::array<std::uint8_t, 4> U32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

// A process the boot runs for us; the connection carries signals to it and its exit code back.
class ExecProcess final : public EnclaveProcess {
 public:
  static Result<std::unique_ptr<ExecProcess>> Start(const std::string& socket_path, const SecretBytes& key,
                                                    std::string_view boot_spec,
                                                    local_attest::Deadline deadline) {
    auto out = std::unique_ptr<ExecProcess>(new ExecProcess());
    SR_ASSIGN_OR_RETURN(out->conn_, ConnectAndSend(socket_path, key, boot_spec, deadline));
    int conn = out->conn_.get();
    using Stdio = std::array<UniqueFd, 3>;
    SR_ASSIGN_OR_RETURN(Stdio stdio, out->MakePipes());
    SR_RETURN_IF_ERROR(SendStdio(conn, stdio));
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> reply,
                        local_attest::ReadFrame(conn, boot::kExecMaxFrame, deadline));
    std::string text(reply.begin(), reply.end());
    if (text != "ok") return FailedPrecondition("the app enclave refused the exec: " + text);
    return out;
  }

  ~ExecProcess() override {
    // Hanging up makes the boot kill the process.
    conn_.Reset();
  }

  Result<int> Wait() override {
    MutexLock lock(mu_);
    ReadUntil([&]() SR_REQUIRES(mu_) { return exit_.has_value(); });
    return *exit_;
  }

  Status Signal(int sig) override {
    MutexLock lock(write_mu_);
    return Send(U32(static_cast<std::uint32_t>(sig)));
  }

  // Returns once the boot applied the size (its answer), so what the process reads next is
  // read at the new size.
  Status ResizeTerminal(unsigned height, unsigned width) override {
    std::array<std::uint8_t, 8> frame;
    std::ranges::copy(U32(height), frame.begin());
    std::ranges::copy(U32(width), frame.begin() + 4);
    std::size_t ticket;
    {
      MutexLock lock(write_mu_);
      SR_RETURN_IF_ERROR(Send(frame));
      ticket = resizes_sent_++;
    }
    MutexLock lock(mu_);
    ReadUntil([&]() SR_REQUIRES(mu_) { return resizes_applied_.size() > ticket || exit_.has_value(); });
    if (resizes_applied_.size() <= ticket) return NotFound("the exec'd process has exited");
    if (!resizes_applied_[ticket]) return FailedPrecondition("the exec'd process has no terminal to resize");
    return OkStatus();
  }

 private:
  ExecProcess() = default;

  Status Send(std::span<const std::uint8_t> frame) SR_REQUIRES(write_mu_) {
    Status sent = local_attest::WriteFrame(conn_.get(), frame,
                                           std::chrono::steady_clock::now() + std::chrono::seconds(5));
    if (!sent.ok()) return NotFound("the exec'd process has exited");
    return OkStatus();
  }

  // Reads the boot's frames until `done`: one waiter at a time reads, the others wait for what
  // it read. A resize's answer is one byte (0: applied), in the order of the resizes; the exit
  // code, four bytes, is the last frame.
  void ReadUntil(const std::function<bool()>& done) SR_REQUIRES(mu_) {
    while (!done()) {
      if (reading_) {
        read_cv_.wait(mu_);
        continue;
      }
      reading_ = true;
      mu_.Unlock();
      auto frame = local_attest::ReadFrame(conn_.get(), 4, std::chrono::steady_clock::time_point::max());
      mu_.Lock();
      reading_ = false;
      if (!frame.ok()) {
        exit_ = std::move(frame).status().WithContext("waiting for the exec");
      } else if (frame->size() == 1) {
        resizes_applied_.push_back((*frame)[0] == 0);
      } else if (frame->size() == 4) {
        const auto& f = *frame;
        exit_ = static_cast<int>((f[0] << 24) | (f[1] << 16) | (f[2] << 8) | f[3]);
      } else {
        exit_ = DataLoss("waiting for the exec: malformed frame");
      }
      read_cv_.notify_all();
    }
  }

  UniqueFd conn_;
  Mutex write_mu_;  // frames out, in order
  std::size_t resizes_sent_ SR_GUARDED_BY(write_mu_) = 0;
  Mutex mu_;  // what was read
  std::condition_variable_any read_cv_;
  bool reading_ SR_GUARDED_BY(mu_) = false;
  std::vector<bool> resizes_applied_ SR_GUARDED_BY(mu_);
  std::optional<Result<int>> exit_ SR_GUARDED_BY(mu_);
};

}  // namespace

Result<std::array<UniqueFd, 3>> EnclaveProcess::MakePipes() {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return ErrnoStatus("creating a stdio pipe", errno);
  UniqueFd in_read(in[0]), in_write(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus("creating a stdio pipe", errno);
  UniqueFd out_read(out[0]), out_write(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return ErrnoStatus("creating a stdio pipe", errno);
  UniqueFd err_read(err[0]), err_write(err[1]);
  {
    MutexLock a(in_mu_), b(out_mu_), c(err_mu_);
    stdin_ = std::move(in_write);
    stdout_ = std::move(out_read);
    stderr_ = std::move(err_read);
  }
  return std::array<UniqueFd, 3>{std::move(in_read), std::move(out_write), std::move(err_write)};
}

Result<std::string> EnclaveProcess::ReadStdout(std::size_t max_len) {
  MutexLock lock(out_mu_);
  return ReadStream(stdout_.get(), max_len);
}

Result<std::string> EnclaveProcess::ReadStderr(std::size_t max_len) {
  MutexLock lock(err_mu_);
  return ReadStream(stderr_.get(), max_len);
}

Result<std::size_t> EnclaveProcess::WriteStdin(std::string_view data) {
  MutexLock lock(in_mu_);
  if (!stdin_) return FailedPrecondition("the process's stdin is closed");
  SR_RETURN_IF_ERROR_CTX(WriteWithoutSigpipe(stdin_.get(), data), "writing the process's stdin");
  return data.size();
}

Status EnclaveProcess::CloseStdin() {
  MutexLock lock(in_mu_);
  stdin_.Reset();
  return OkStatus();
}

Result<std::string> SendControlRequest(const std::string& socket_path, const SecretBytes& exec_key,
                                       std::string_view request, bool with_document,
                                       local_attest::Deadline deadline) {
  SR_ASSIGN_OR_RETURN(UniqueFd conn, ConnectAndSend(socket_path, exec_key, request, deadline));
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> reply,
                      local_attest::ReadFrame(conn.get(), boot::kExecMaxFrame, deadline));
  std::string text(reply.begin(), reply.end());
  if (text != "ok") return FailedPrecondition("the app enclave refused the request: " + text);
  if (!with_document) return std::string();
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> document,
                      local_attest::ReadFrame(conn.get(), boot::kExecMaxFrame, deadline));
  return std::string(document.begin(), document.end());
}

Status ResizeEntrypointTerminal(const std::string& socket_path, const SecretBytes& exec_key, unsigned height,
                                unsigned width, local_attest::Deadline deadline) {
  const std::string request = nlohmann::json{{"terminalSize", {{"height", height}, {"width", width}}}}.dump();
  return SendControlRequest(socket_path, exec_key, request, /*with_document=*/false, deadline).status();
}

Result<std::unique_ptr<EnclaveProcess>> StartExec(const std::string& socket_path, const SecretBytes& exec_key,
                                                  std::string_view boot_spec,
                                                  std::chrono::steady_clock::time_point deadline) {
  SR_ASSIGN_OR_RETURN(std::unique_ptr<ExecProcess> process,
                      ExecProcess::Start(socket_path, exec_key, boot_spec, deadline));
  return std::unique_ptr<EnclaveProcess>(std::move(process));
}

}  // namespace sealroot::stub_enclave
