// Directory read-ahead for an immutable tree: once a program starts reading the files of a
// directory it has listed (tar, cp -r, an interpreter importing its modules), the small files
// listed after the one it reads are read and verified on a thread of their own and stored in the
// kernel's page cache (FUSE notify_store), so the program's reads of them cost no request and no
// wait for the store.
//
// What is stored in the page cache is never stale: the filesystem stores a file only while its
// content cannot change (Filesystem::Prefetch: a tree that never changes, or a union's file
// that only its lower holds and that no writer has opened), and every byte was verified like a
// read's. Listing alone prefetches nothing (ls -l, find), and a listing is prefetched once; the
// bytes a listing can cause to be read are bounded.
//
// Thread-safety: Listed and Reading from any thread; the Filesystem must be thread-safe and
// outlive the prefetcher; the destructor stops its threads (before the session goes away).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/thread_annotations.h"
#include "fusefs/filesystem.h"

struct fuse_session;

namespace sealroot::fusefs {

class SiblingPrefetch {
 public:
  // A file worth prefetching: small enough that its reader would wait on a round trip per file
  // rather than on the transfer.
  static constexpr std::uint64_t kMaxFileSize = 128 * 1024;

  SiblingPrefetch(Filesystem& fs, fuse_session* session);
  ~SiblingPrefetch();
  SiblingPrefetch(const SiblingPrefetch&) = delete;
  SiblingPrefetch& operator=(const SiblingPrefetch&) = delete;

  struct File {
    std::uint64_t ino;
    std::uint64_t size;
  };
  // The regular files (of at most kMaxFileSize bytes) one listing reply of `dir` gave the kernel,
  // in listing order.
  void Listed(std::uint64_t dir, std::span<const File> files);
  // The kernel reads `ino` from its start: if a kept listing holds it, the files listed after it
  // are prefetched, and the listing is dropped.
  void Reading(std::uint64_t ino);
  // Runs `then` once no prefetch is storing `ino` (Filesystem::Prefetch returned kAborted to a
  // change of it): on the prefetching thread after its store, or now, on the caller's.
  void AfterStore(std::uint64_t ino, std::function<void()> then);

 private:
  struct Listing {
    std::vector<File> files;
    std::uint64_t bytes = 0;
  };
  void Run();
  void Store(const File& file, std::vector<std::uint8_t>& buffer);
  void Forget(std::uint64_t dir) SR_REQUIRES(mu_);

  Filesystem& fs_;
  fuse_session* const session_;
  Mutex mu_;
  std::condition_variable_any wake_;
  bool stopping_ SR_GUARDED_BY(mu_) = false;
  std::unordered_map<std::uint64_t, Listing> listings_ SR_GUARDED_BY(mu_);         // by directory
  std::deque<std::uint64_t> listing_order_ SR_GUARDED_BY(mu_);                     // oldest first
  std::unordered_map<std::uint64_t, std::uint64_t> listed_in_ SR_GUARDED_BY(mu_);  // file -> directory
  std::deque<File> queue_ SR_GUARDED_BY(mu_);
  // Queued files the kernel has not asked for yet: one it reads itself is skipped.
  std::unordered_set<std::uint64_t> pending_ SR_GUARDED_BY(mu_);
  // Files in Store (how many threads each), and what waits for them to be stored.
  std::unordered_map<std::uint64_t, int> storing_ SR_GUARDED_BY(mu_);
  std::unordered_map<std::uint64_t, std::vector<std::function<void()>>> after_store_ SR_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace sealroot::fusefs
