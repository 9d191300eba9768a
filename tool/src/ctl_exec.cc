#include "tool/src/ctl_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <mutex>
#include <optional>
#include <thread>

#include "base/crypto.h"
#include "base/fd.h"
#include "base/file.h"

namespace sealroot::tool {
namespace {

constexpr char kAgentService[] = "grpc.AgentService";
constexpr std::uint32_t kReadChunk = 64u << 10;

// ctl's terminal in raw mode (keys go to the container's terminal as typed), restored on exit.
class RawTerminal {
 public:
  RawTerminal() {
    if (::isatty(STDIN_FILENO) == 0 || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

// The first error any relay thread met.
class FirstError {
 public:
  void Set(Status status) {
    std::lock_guard lock(mu_);
    if (status_.ok()) status_ = std::move(status);
  }
  Status Get() {
    std::lock_guard lock(mu_);
    return status_;
  }

 private:
  std::mutex mu_;
  Status status_;
};

Status CallEmpty(AgentClient& client, std::string_view method, const google::protobuf::Message& request) {
  return client.Call(kAgentService, method, request.SerializeAsString()).status();
}

// Copies one output stream (ReadStdout or ReadStderr) to `fd` until it closes.
Status RelayOutput(const AgentEndpoint& endpoint, const ::grpc::ExecProcessRequest& exec, const char* method,
                   int fd) {
  SR_ASSIGN_OR_RETURN(std::unique_ptr<AgentClient> client, ConnectAgent(endpoint));
  ::grpc::ReadStreamRequest read;
  read.set_container_id(exec.container_id());
  read.set_exec_id(exec.exec_id());
  read.set_len(kReadChunk);
  while (true) {
    SR_ASSIGN_OR_RETURN(std::string bytes, client->Call(kAgentService, method, read.SerializeAsString()));
    ::grpc::ReadStreamResponse chunk;
    if (!chunk.ParseFromString(bytes))
      return Internal(std::string(method) + ": malformed response from the agent");
    if (chunk.data().empty()) return OkStatus();
    SR_RETURN_IF_ERROR(WriteAll(fd, AsBytes(chunk.data())));
  }
}

// Forwards ctl's stdin until it ends (then closes the process's stdin) or `stop` is readable.
Status RelayInput(const AgentEndpoint& endpoint, const ::grpc::ExecProcessRequest& exec, int stop) {
  SR_ASSIGN_OR_RETURN(std::unique_ptr<AgentClient> client, ConnectAgent(endpoint));
  ::grpc::WriteStreamRequest write;
  write.set_container_id(exec.container_id());
  write.set_exec_id(exec.exec_id());
  std::string buffer(kReadChunk, '\0');
  while (true) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {stop, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("waiting for stdin", errno);
    }
    if (fds[1].revents != 0) return OkStatus();  // the process is done
    ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    write.set_data(std::string(buffer.data(), static_cast<std::size_t>(n)));
    Result<std::string> written = client->Call(kAgentService, "WriteStdin", write.SerializeAsString());
    if (!written.ok()) return written.status().code() == Code::kNotFound ? OkStatus() : written.status();
  }
  ::grpc::CloseStdinRequest close;
  close.set_container_id(exec.container_id());
  close.set_exec_id(exec.exec_id());
  return CallEmpty(*client, "CloseStdin", close);
}

}  // namespace

Result<int> ExecAndRelay(const AgentEndpoint& endpoint, const ::grpc::ExecProcessRequest& request,
                         bool interactive) {
  SR_ASSIGN_OR_RETURN(std::unique_ptr<AgentClient> client, ConnectAgent(endpoint));
  SR_RETURN_IF_ERROR(CallEmpty(*client, "ExecProcess", request));
  const bool tty = request.process().terminal();
  if (!interactive) {
    // As `ctr task exec` without --interactive: the process reads EOF, never ctl's stdin.
    ::grpc::CloseStdinRequest close;
    close.set_container_id(request.container_id());
    close.set_exec_id(request.exec_id());
    (void)CallEmpty(*client, "CloseStdin", close);
  }
  std::optional<RawTerminal> raw;
  if (interactive && tty) raw.emplace();

  FirstError error;
  int stop_pipe[2];
  if (::pipe2(stop_pipe, O_CLOEXEC) != 0) return ErrnoStatus("creating a pipe", errno);
  UniqueFd stop_read(stop_pipe[0]), stop_write(stop_pipe[1]);
  std::thread input;
  if (interactive) {
    input = std::thread([&] { error.Set(RelayInput(endpoint, request, stop_read.get())); });
  }
  // A terminal carries stderr in its one stream: only stdout is read then.
  std::thread errors;
  if (!tty)
    errors = std::thread([&] { error.Set(RelayOutput(endpoint, request, "ReadStderr", STDERR_FILENO)); });
  error.Set(RelayOutput(endpoint, request, "ReadStdout", STDOUT_FILENO));
  if (errors.joinable()) errors.join();

  ::grpc::WaitProcessRequest wait;
  wait.set_container_id(request.container_id());
  wait.set_exec_id(request.exec_id());
  Result<std::string> waited = client->Call(kAgentService, "WaitProcess", wait.SerializeAsString());
  if (input.joinable()) {
    (void)::write(stop_write.get(), "x", 1);
    input.join();
  }
  raw.reset();
  SR_RETURN_IF_ERROR(error.Get());
  if (!waited.ok()) return std::move(waited).status();
  ::grpc::WaitProcessResponse response;
  if (!response.ParseFromString(*waited)) return Internal("WaitProcess: malformed response from the agent");
  return response.status();
}

}  // namespace sealroot::tool
