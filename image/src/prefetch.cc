#include "image/src/prefetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "base/file.h"
#include "base/log.h"
#include "image/stream.h"

namespace sealroot::image::internal {

Prefetcher::Prefetcher(ImageSource& source, std::vector<Descriptor> layers, std::vector<bool> ahead,
                       int workers, std::string spool_dir, std::uint64_t spool_cap)
    : source_(source), layers_(std::move(layers)), spool_dir_(std::move(spool_dir)), spool_cap_(spool_cap) {
  {
    MutexLock lock(mu_);
    for (std::size_t i = 0; i < layers_.size(); ++i)
      state_.push_back(ahead[i] ? State::kPending : State::kDirect);
  }
  for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { Work(); });
}

Prefetcher::~Prefetcher() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : threads_) t.join();
  (void)RemoveTree(spool_dir_);
}

std::string Prefetcher::SpoolPath(std::size_t i) const {
  // Named by position, not digest: the spool may be on the host's disk.
  return spool_dir_ + "/layer-" + std::to_string(i);
}

void Prefetcher::Work() {
  while (true) {
    std::size_t next = layers_.size();
    {
      MutexLock lock(mu_);
      while (true) {
        if (stopping_) return;
        bool pending = false;
        for (std::size_t i = 0; i < layers_.size(); ++i) {
          if (state_[i] != State::kPending) continue;
          pending = true;
          std::uint64_t size = static_cast<std::uint64_t>(layers_[i].size);
          if (spooled_bytes_ + size <= spool_cap_) {
            state_[i] = State::kFetching;
            spooled_bytes_ += size;
            next = i;
            break;
          }
        }
        if (next != layers_.size()) break;
        if (!pending) return;
        changed_.wait(mu_);  // the spool is full: wait until the pipeline reads a layer back
      }
    }
    Status s = Fetch(next, SpoolPath(next));
    MutexLock lock(mu_);
    if (!s.ok()) {
      // The pipeline streams it directly and reports the error if it persists.
      SR_LOG(kDebug) << "fetching ahead " << layers_[next].digest.str() << ": " << s.message();
      ::unlink(SpoolPath(next).c_str());
      spooled_bytes_ -= static_cast<std::uint64_t>(layers_[next].size);
      state_[next] = State::kDirect;
    } else {
      state_[next] = State::kSpooled;
    }
    changed_.notify_all();
  }
}

Status Prefetcher::Fetch(std::size_t i, const std::string& path) {
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, source_.OpenBlob(layers_[i]));
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus("creating spool file", errno);
  std::vector<std::uint8_t> buf(256 * 1024);
  while (true) {
    {
      MutexLock lock(mu_);
      if (stopping_) return Cancelled("stopping");
    }
    SR_ASSIGN_OR_RETURN(std::size_t n, blob->Read(buf));  // verified at the end
    if (n == 0) return OkStatus();
    SR_RETURN_IF_ERROR(WriteAll(fd.get(), std::span(buf).first(n)));
  }
}

Result<std::unique_ptr<Reader>> Prefetcher::Open(std::size_t i) {
  {
    MutexLock lock(mu_);
    if (state_[i] == State::kPending) state_[i] = State::kDirect;  // claim it: stream now
    while (state_[i] == State::kFetching) changed_.wait(mu_);
    if (state_[i] == State::kDirect) return source_.OpenBlob(layers_[i]);
  }
  UniqueFd fd(::open(SpoolPath(i).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening spooled layer " + layers_[i].digest.str(), errno);
  // Unlinked once open: the space returns to the budget, the data lives until the reader dies.
  ::unlink(SpoolPath(i).c_str());
  {
    MutexLock lock(mu_);
    spooled_bytes_ -= static_cast<std::uint64_t>(layers_[i].size);
  }
  changed_.notify_all();
  return MakeVerifyingReader(MakeFdReader(std::move(fd)), layers_[i].digest, layers_[i].size,
                             "spooled blob " + layers_[i].digest.str());
}

}  // namespace sealroot::image::internal
