// Executor: runs request handlers off the transport threads. Threads are started on demand up
// to `max_threads` (handlers block: a PullImage lasts as long as the pull, WaitProcess as long as
// the process), and a bounded queue takes the overflow; beyond that Submit refuses, so a flood
// of requests gets RESOURCE_EXHAUSTED instead of unbounded memory.
//
// Thread-safety: Submit may be called from any thread; Shutdown once, from the owner.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "base/thread_annotations.h"

namespace sealroot::rpc {

class Executor {
 public:
  Executor(std::size_t max_threads, std::size_t max_queue);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // False when the queue is full or the executor is shutting down.
  bool Submit(std::function<void()> task) SR_EXCLUDES(mu_);
  // Runs what is queued, then joins every thread.
  void Shutdown() SR_EXCLUDES(mu_);

 private:
  void Loop() SR_EXCLUDES(mu_);

  const std::size_t max_threads_;
  const std::size_t max_queue_;
  Mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::function<void()>> queue_ SR_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ SR_GUARDED_BY(mu_);
  std::size_t idle_ SR_GUARDED_BY(mu_) = 0;
  bool stopping_ SR_GUARDED_BY(mu_) = false;
};

}  // namespace sealroot::rpc
