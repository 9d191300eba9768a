#include "rpc/executor.h"

namespace sealroot::rpc {

Executor::Executor(std::size_t max_threads, std::size_t max_queue)
    : max_threads_(max_threads), max_queue_(max_queue) {}

Executor::~Executor() {
  Shutdown();
}

bool Executor::Submit(std::function<void()> task) {
  {
    MutexLock lock(mu_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(std::move(task));
    if (idle_ < queue_.size() && threads_.size() < max_threads_) {
      threads_.emplace_back([this] { Loop(); });
      return true;
    }
  }
  cv_.notify_one();
  return true;
}

void Executor::Loop() {
  while (true) {
    std::function<void()> task;
    {
      MutexLock lock(mu_);
      ++idle_;
      while (queue_.empty() && !stopping_) cv_.wait(mu_);
      --idle_;
      if (queue_.empty()) return;  // stopping, nothing left to run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

void Executor::Shutdown() {
  std::vector<std::thread> threads;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) t.join();
}

}  // namespace sealroot::rpc
