#define FUSE_USE_VERSION 312
#include "fusefs/src/sibling_prefetch.h"

#include <fuse_lowlevel.h>

#include <algorithm>

namespace sealroot::fusefs {
namespace {

// Listings kept until a read of one of their files (a tree walk lists ahead of its reads by its
// depth, and ls-like walks never read).
constexpr std::size_t kMaxListings = 256;
// What one listing may cause to be read, and how many files may wait: the cost of a wrong guess
// stays small.
constexpr std::uint64_t kMaxListingBytes = 8u << 20;
constexpr std::size_t kMaxListingFiles = 4096;
constexpr std::size_t kMaxQueued = 4096;
// Threads that read ahead: a cold file costs a few dependent disk reads (the object's directory
// block, its inode, its data), so several files are fetched at once to keep the disk busy; they
// wait on the disk far more than they compute.
constexpr int kThreads = 4;

}  // namespace

SiblingPrefetch::SiblingPrefetch(Filesystem& fs, fuse_session* session) : fs_(fs), session_(session) {
  for (int i = 0; i < kThreads; ++i) threads_.emplace_back([this] { Run(); });
}

SiblingPrefetch::~SiblingPrefetch() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void SiblingPrefetch::Listed(std::uint64_t dir, std::span<const File> files) {
  if (files.empty()) return;
  MutexLock lock(mu_);
  auto [it, inserted] = listings_.try_emplace(dir);
  if (inserted) {
    listing_order_.push_back(dir);
    if (listing_order_.size() > kMaxListings) Forget(listing_order_.front());
  }
  Listing& listing = it->second;
  for (const File& f : files) {
    if (listing.bytes + f.size > kMaxListingBytes || listing.files.size() == kMaxListingFiles) break;
    listing.bytes += f.size;
    listing.files.push_back(f);
    listed_in_[f.ino] = dir;
  }
}

void SiblingPrefetch::Reading(std::uint64_t ino) {
  {
    MutexLock lock(mu_);
    pending_.erase(ino);
    auto in = listed_in_.find(ino);
    if (in == listed_in_.end()) return;
    const std::uint64_t dir = in->second;
    std::vector<File>& files = listings_.at(dir).files;
    auto after = std::find_if(files.begin(), files.end(), [&](const File& f) { return f.ino == ino; });
    if (after != files.end()) ++after;
    std::vector<File> next(after, files.end());
    Forget(dir);
    if (next.empty() || queue_.size() + next.size() > kMaxQueued) return;
    for (const File& f : next) {
      pending_.insert(f.ino);
      queue_.push_back(f);
    }
  }
  wake_.notify_all();
}

void SiblingPrefetch::Forget(std::uint64_t dir) {
  auto it = listings_.find(dir);
  if (it == listings_.end()) return;
  for (const File& f : it->second.files) {
    if (auto in = listed_in_.find(f.ino); in != listed_in_.end() && in->second == dir) listed_in_.erase(in);
  }
  listings_.erase(it);
  std::erase(listing_order_, dir);
}

void SiblingPrefetch::Run() {
  std::vector<std::uint8_t> buffer;
  for (;;) {
    File file{};
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) wake_.wait(mu_);
      if (stopping_) return;
      file = queue_.front();
      queue_.pop_front();
      if (pending_.erase(file.ino) == 0) continue;  // the kernel asked for it meanwhile
    }
    Store(file, buffer);
  }
}

// Reads and verifies a file as a read would, and stores it in the kernel's page cache. A file
// the kernel has forgotten since, one that fails its check (logged), or one a writer has opened
// is skipped: its reader asks for it and gets what a read gets.
void SiblingPrefetch::Store(const File& file, std::vector<std::uint8_t>& buffer) {
  {
    MutexLock lock(mu_);
    ++storing_[file.ino];
  }
  buffer.resize(file.size);
  (void)fs_.Prefetch(file.ino, buffer, [&](std::span<const std::uint8_t> bytes) {
    fuse_bufvec data = FUSE_BUFVEC_INIT(bytes.size());
    data.buf[0].mem = const_cast<std::uint8_t*>(bytes.data());  // libfuse only reads it
    (void)fuse_lowlevel_notify_store(session_, file.ino, 0, &data, fuse_buf_copy_flags{});
  });
  std::vector<std::function<void()>> waiting;
  {
    MutexLock lock(mu_);
    if (--storing_[file.ino] > 0) return;
    storing_.erase(file.ino);
    if (auto it = after_store_.find(file.ino); it != after_store_.end()) {
      waiting = std::move(it->second);
      after_store_.erase(it);
    }
  }
  for (const auto& then : waiting) then();
}

void SiblingPrefetch::AfterStore(std::uint64_t ino, std::function<void()> then) {
  {
    MutexLock lock(mu_);
    if (storing_.contains(ino)) {
      after_store_[ino].push_back(std::move(then));
      return;
    }
  }
  then();
}

}  // namespace sealroot::fusefs
