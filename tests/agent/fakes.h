// Test doubles for the agent's seams: a puller that writes a small store and counts pulls per
// image (optionally waiting on a gate, to hold pulls in flight), and a runtime whose processes
// echo stdin to stdout.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

#include "agent/server/puller.h"
#include "agent/server/runtime.h"
#include "base/file.h"

namespace sealroot::agent::testing {

class FakePuller final : public ImagePuller {
 public:
  Result<ResolvedRef> Resolve(const PullJob& job) override {
    std::lock_guard lock(mu_);
    ++resolved_;
    cv_.notify_all();
    return ResolvedRef{job.image, ""};
  }

  Result<PulledImage> Pull(const PullJob& job) override {
    {
      std::unique_lock lock(mu_);
      ++pulls_[job.image];
      ++running_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --running_;
    }
    SR_RETURN_IF_ERROR(MakeDirs(job.store_dir, 0700));
    SR_RETURN_IF_ERROR(WriteFileAtomic(job.store_dir + "/blob", std::string_view("sealed bytes")));
    if (job.image.find("fail") != std::string::npos) return DataLoss("layer 0: HMAC mismatch (wrong key)");
    if (job.image.find("unsigned") != std::string::npos) return PermissionDenied("policy: no signature");
    last_creds_ =
        std::string(reinterpret_cast<const char*>(job.source_creds.data()), job.source_creds.size());
    // The image's own process is what the service tests' requests ask for.
    fusefs::RootHash root;
    root.fill(0xbb);  // "bbbb..." in hex
    return PulledImage{job.image + "@sha256:" + std::string(64, 'a'), root,
                       R"({"config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}})"};
  }

  // Pulls block until Open().
  void Close() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool WaitRunning(int n, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return running_ >= n; });
  }
  // Waits until `n` PullImage calls have resolved their image (the step before joining a pull
  // in flight or leading one).
  bool WaitResolved(int n, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return resolved_ >= n; });
  }
  int pulls(const std::string& image) {
    std::lock_guard lock(mu_);
    return pulls_[image];
  }
  std::string last_creds() {
    std::lock_guard lock(mu_);
    return last_creds_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> pulls_;
  int running_ = 0;
  int resolved_ = 0;
  bool open_ = true;
  std::string last_creds_;
};

// A process that echoes stdin to stdout and exits with status 7 when stdin is closed.
class EchoProcess final : public Process {
 public:
  Result<std::int32_t> Wait() override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_; });
    return 7;
  }
  Status Signal(int) override {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
    return OkStatus();
  }
  Result<std::string> ReadStdout(std::size_t max_len) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !buffer_.empty(); });
    std::string out = buffer_.substr(0, max_len);
    buffer_.erase(0, out.size());
    return out;
  }
  Result<std::string> ReadStderr(std::size_t) override { return std::string(); }
  Result<std::size_t> WriteStdin(std::string_view data) override {
    std::lock_guard lock(mu_);
    buffer_.append(data);
    cv_.notify_all();
    return data.size();
  }
  Status CloseStdin() override { return Signal(0); }
  Status ResizeTerminal(unsigned, unsigned) override {
    return FailedPrecondition("the process has no terminal");
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  bool closed_ = false;
};

class EchoRuntime final : public ContainerRuntime {
 public:
  Result<std::unique_ptr<Process>> Start(const ContainerLaunch& launch) override {
    if (launch.key == nullptr || launch.key->size() != 32 || launch.root_hash == fusefs::RootHash{}) {
      return Internal("launch without key or root");
    }
    return std::unique_ptr<Process>(std::make_unique<EchoProcess>());
  }
  Result<std::unique_ptr<Process>> Exec(const std::string&, const std::string&) override {
    return std::unique_ptr<Process>(std::make_unique<EchoProcess>());
  }
};

}  // namespace sealroot::agent::testing
