// Fetching layers ahead: while layer i streams through the pipeline, up to N-1 workers
// download later layers into a size-capped spool on disk, each verified against its digest on
// the way in and again when it is read back (the spool is untrusted storage too). A layer that
// does not fit the cap, or that the pipeline reaches before a worker claimed it, streams
// directly from the source. Private to image/.
//
// Thread-safety: Open() may be called from several pipeline threads (a layer each); workers are
// internal.
#pragma once

#include <condition_variable>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/reader.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "image/digest.h"
#include "image/source.h"

namespace sealroot::image::internal {

class Prefetcher {
 public:
  // Starts `workers` threads fetching the layers with ahead[i] set (never one the pipeline
  // starts at once, nor one the sink already holds).
  Prefetcher(ImageSource& source, std::vector<Descriptor> layers, std::vector<bool> ahead, int workers,
             std::string spool_dir, std::uint64_t spool_cap);
  ~Prefetcher();  // stops the workers and removes every spool file
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The verified blob reader for layer i: from the spool when fetched ahead, else from the source.
  Result<std::unique_ptr<Reader>> Open(std::size_t i);

 private:
  enum class State { kPending, kFetching, kSpooled, kDirect };
  void Work();
  Status Fetch(std::size_t i, const std::string& path);
  std::string SpoolPath(std::size_t i) const;

  ImageSource& source_;
  const std::vector<Descriptor> layers_;
  const std::string spool_dir_;  // a private mkdtemp directory, removed at the end
  const std::uint64_t spool_cap_;
  Mutex mu_;
  std::condition_variable_any changed_;
  std::vector<State> state_ SR_GUARDED_BY(mu_);
  std::uint64_t spooled_bytes_ SR_GUARDED_BY(mu_) = 0;
  bool stopping_ SR_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace sealroot::image::internal
