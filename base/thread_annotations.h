// Clang thread-safety annotations (checked with -Wthread-safety in the clang build; no-ops on
// GCC). Use sealroot::Mutex / MutexLock so the analysis sees lock acquisition.
#pragma once

#include <mutex>

#if defined(__clang__)
#define SR_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SR_THREAD_ANNOTATION(x)
#endif

#define SR_CAPABILITY(x) SR_THREAD_ANNOTATION(capability(x))
#define SR_SCOPED_CAPABILITY SR_THREAD_ANNOTATION(scoped_lockable)
#define SR_GUARDED_BY(x) SR_THREAD_ANNOTATION(guarded_by(x))
#define SR_PT_GUARDED_BY(x) SR_THREAD_ANNOTATION(pt_guarded_by(x))
#define SR_REQUIRES(...) SR_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define SR_EXCLUDES(...) SR_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define SR_ACQUIRE(...) SR_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define SR_RELEASE(...) SR_THREAD_ANNOTATION(release_capability(__VA_ARGS__))

namespace sealroot {

class SR_CAPABILITY("mutex") Mutex {
 public:
  void Lock() SR_ACQUIRE() { mu_.lock(); }
  void Unlock() SR_RELEASE() { mu_.unlock(); }
  // For std::condition_variable_any.
  void lock() SR_ACQUIRE() { mu_.lock(); }
  void unlock() SR_RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class SR_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) SR_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() SR_RELEASE() { mu_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace sealroot
