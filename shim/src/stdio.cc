#include "shim/stdio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include "base/file.h"
#include "base/log.h"

namespace sealroot::shim {
namespace {

constexpr std::uint32_t kChunk = 64u << 10;

// O_RDWR never blocks on a FIFO and keeps it open whatever the other side does; the other side
// sees EOF when we close it.
Result<UniqueFd> OpenFifo(const std::string& path) {
  if (path.empty()) return UniqueFd();
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening " + path, errno);
  return fd;
}

}  // namespace

Result<std::unique_ptr<ProcessIo>> ProcessIo::Open(const StdioPaths& paths) {
  std::unique_ptr<ProcessIo> io(new ProcessIo());
  io->terminal_ = paths.terminal;
  SR_ASSIGN_OR_RETURN(io->stdin_, OpenFifo(paths.stdin));
  SR_ASSIGN_OR_RETURN(io->stdout_, OpenFifo(paths.stdout));
  SR_ASSIGN_OR_RETURN(io->stderr_, OpenFifo(paths.stderr));
  io->stop_stdin_ = UniqueFd(eventfd(0, EFD_CLOEXEC));
  if (!io->stop_stdin_) return ErrnoStatus("eventfd", errno);
  return io;
}

ProcessIo::~ProcessIo() {
  Close();
}

void ProcessIo::Start(AgentClient agent, const std::string& container_id, const std::string& exec_id) {
  agent_.emplace(std::move(agent));
  container_id_ = container_id;
  exec_id_ = exec_id;
  out_thread_ = std::thread([this] { CopyOutput(false); });
  // With a terminal the process has one output stream.
  if (!terminal_) err_thread_ = std::thread([this] { CopyOutput(true); });
  if (stdin_) in_thread_ = std::thread([this] { CopyInput(); });
}

void ProcessIo::CopyOutput(bool stderr_stream) {
  const int fd = stderr_stream ? stderr_.get() : stdout_.get();
  while (true) {
    Result<std::string> chunk = agent_->Read(container_id_, exec_id_, stderr_stream, kChunk);
    if (!chunk.ok()) {
      SR_LOG(kDebug) << container_id_ << ": " << (stderr_stream ? "stderr" : "stdout") << ": "
                     << chunk.status().message();
      return;
    }
    if (chunk->empty()) return;
    if (fd < 0) continue;
    Status written = WriteAll(fd, {reinterpret_cast<const std::uint8_t*>(chunk->data()), chunk->size()});
    if (!written.ok()) {
      SR_LOG(kWarning) << container_id_ << ": output lost: " << written.message();
    }
  }
}

void ProcessIo::CopyInput() {
  std::string buffer(kChunk, '\0');
  while (true) {
    pollfd fds[2] = {{stdin_.get(), POLLIN, 0}, {stop_stdin_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    // Forward what is readable first, so data written before CloseIO is not lost.
    if (fds[0].revents & POLLIN) {
      ssize_t n = ::read(stdin_.get(), buffer.data(), buffer.size());
      if (n > 0) {
        std::string_view data(buffer.data(), static_cast<std::size_t>(n));
        while (!data.empty()) {
          Result<std::uint32_t> sent = agent_->WriteStdin(container_id_, exec_id_, data);
          if (!sent.ok() || *sent == 0) {
            SR_LOG(kDebug) << container_id_
                           << ": stdin: " << (sent.ok() ? "closed" : sent.status().message());
            data = {};
            break;
          }
          data.remove_prefix(std::min<std::size_t>(*sent, data.size()));
        }
        continue;
      }
    }
    if (fds[1].revents & POLLIN) break;
  }
  Status closed = agent_->CloseStdin(container_id_, exec_id_);
  if (!closed.ok()) {
    SR_LOG(kDebug) << container_id_ << ": CloseStdin: " << closed.message();
  }
}

void ProcessIo::WaitOutput() {
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
  stdout_.Reset();
  stderr_.Reset();
}

void ProcessIo::CloseStdin() {
  std::uint64_t one = 1;
  (void)!::write(stop_stdin_.get(), &one, sizeof(one));
}

void ProcessIo::Close() {
  CloseStdin();
  if (in_thread_.joinable()) in_thread_.join();
  WaitOutput();
  stdin_.Reset();
}

}  // namespace sealroot::shim
