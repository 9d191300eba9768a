#include "agent/server/src/watched_process.h"

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <functional>
#include <optional>
#include <thread>

#include "base/thread_annotations.h"
#include "rpc/call_context.h"

namespace sealroot::agent {
namespace {

// How often a waiting call checks whether its client is still there and its deadline ahead.
constexpr std::chrono::milliseconds kCancelPoll{50};
// Output read ahead of the callers, per stream (one ReadStdout answers at most 1 MiB).
constexpr std::size_t kOutputBuffer = 1u << 20;
constexpr std::size_t kOutputChunk = 64u << 10;

// One output stream, read by its own thread into a bounded buffer that callers take from.
class OutputPump {
 public:
  using ReadFn = std::function<Result<std::string>(std::size_t)>;
  explicit OutputPump(ReadFn read) : read_(std::move(read)) {}
  ~OutputPump() { Stop(); }
  OutputPump(const OutputPump&) = delete;
  OutputPump& operator=(const OutputPump&) = delete;

  // Up to max_len bytes, "" at EOF; kCancelled / kDeadlineExceeded once the current call is.
  Result<std::string> Read(std::size_t max_len) SR_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (!thread_.joinable() && !stopping_) thread_ = std::thread([this] { Run(); });
    while (buffer_.empty() && !eof_ && !error_) {
      if (Status call = rpc::CallStatus("read"); !call.ok()) return call;
      cv_.wait_for(mu_, kCancelPoll);
    }
    if (buffer_.empty()) {
      if (error_) return *error_;
      return std::string();  // EOF
    }
    std::string out = buffer_.substr(0, max_len);
    buffer_.erase(0, out.size());
    cv_.notify_all();
    return out;
  }

  // Returns once the pump thread is gone; its read must end by itself (the process killed).
  void Stop() SR_EXCLUDES(mu_) {
    std::thread thread;
    {
      MutexLock lock(mu_);
      stopping_ = true;
      thread = std::move(thread_);
    }
    cv_.notify_all();
    if (thread.joinable()) thread.join();
  }

 private:
  void Run() SR_EXCLUDES(mu_) {
    while (true) {
      {
        MutexLock lock(mu_);
        while (buffer_.size() >= kOutputBuffer && !stopping_) cv_.wait(mu_);
        if (stopping_) return;
      }
      Result<std::string> chunk = read_(kOutputChunk);
      MutexLock lock(mu_);
      if (!chunk.ok()) {
        error_ = chunk.status();
      } else if (chunk->empty()) {
        eof_ = true;
      } else {
        buffer_ += *chunk;
      }
      cv_.notify_all();
      if (error_ || eof_) return;
    }
  }

  const ReadFn read_;
  Mutex mu_;
  std::condition_variable_any cv_;
  std::thread thread_ SR_GUARDED_BY(mu_);
  std::string buffer_ SR_GUARDED_BY(mu_);
  bool eof_ SR_GUARDED_BY(mu_) = false;
  std::optional<Status> error_ SR_GUARDED_BY(mu_);
  bool stopping_ SR_GUARDED_BY(mu_) = false;
};

class WatchedProcess final : public Process {
 public:
  explicit WatchedProcess(std::unique_ptr<Process> inner)
      : inner_(std::move(inner)),
        stdout_([this](std::size_t n) { return inner_->ReadStdout(n); }),
        stderr_([this](std::size_t n) { return inner_->ReadStderr(n); }) {
    // Started with the process, so an exit no one waited for still shows (ExitStatus, ctl ps).
    MutexLock lock(mu_);
    waiter_ = std::thread([this] {
      Result<std::int32_t> status = inner_->Wait();
      MutexLock done(mu_);
      status_ = std::move(status);
      cv_.notify_all();
    });
  }

  ~WatchedProcess() override {
    std::thread waiter;
    {
      MutexLock lock(mu_);
      waiter = std::move(waiter_);
    }
    // Whatever waits on the process (the exit waiter, the output pumps) returns once it is gone.
    (void)inner_->Signal(SIGKILL);
    stdout_.Stop();
    stderr_.Stop();
    if (waiter.joinable()) waiter.join();
  }

  Result<std::int32_t> Wait() override {
    MutexLock lock(mu_);
    while (!status_) {
      if (Status call = rpc::CallStatus("WaitProcess"); !call.ok()) return call;
      cv_.wait_for(mu_, kCancelPoll);
    }
    return *status_;
  }

  Status Signal(int signal) override { return inner_->Signal(signal); }
  Result<std::string> ReadStdout(std::size_t max_len) override { return stdout_.Read(max_len); }
  Result<std::string> ReadStderr(std::size_t max_len) override { return stderr_.Read(max_len); }
  Result<std::size_t> WriteStdin(std::string_view data) override { return inner_->WriteStdin(data); }
  Status CloseStdin() override { return inner_->CloseStdin(); }
  Status ResizeTerminal(unsigned rows, unsigned columns) override {
    return inner_->ResizeTerminal(rows, columns);
  }
  std::optional<std::int32_t> ExitStatus() override {
    MutexLock lock(mu_);
    if (status_ && status_->ok()) return **status_;
    return std::nullopt;
  }

 private:
  const std::unique_ptr<Process> inner_;
  OutputPump stdout_;
  OutputPump stderr_;
  Mutex mu_;
  std::condition_variable_any cv_;
  std::thread waiter_ SR_GUARDED_BY(mu_);
  std::optional<Result<std::int32_t>> status_ SR_GUARDED_BY(mu_);
};

}  // namespace

std::shared_ptr<Process> WatchProcess(std::unique_ptr<Process> process) {
  return std::make_shared<WatchedProcess>(std::move(process));
}

}  // namespace sealroot::agent
