// What `sealroot unpack` and `pull` show while they work, on stderr.
//
// On a terminal, one line redrawn at most every 100 ms (and whenever a layer changes state):
//   layers 1/3 done  #2 4.2/12.6 MB  #3 1.0/8.0 MB  2.9 MB/s
// Each fetching layer shows the compressed bytes received so far, which only grow; the rate is
// the bytes received over the time since the first one. Whether or not stderr is a terminal,
// one summary line ends a successful run:
//   sealroot: 3 layers (1 from the blob cache), 20.6 MB fetched in 7.1 s (2.9 MB/s)
// --quiet shows neither; --json only the summary's absence (stdout stays JSON).
//
// Thread-safety: the callback may be called from several threads at once.
#pragma once

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "base/thread_annotations.h"
#include "image/pull.h"

namespace sealroot::tool {

class ProgressDisplay {
 public:
  // `live`: draw the redrawn line (stderr is a terminal); `summary`: print the last line.
  ProgressDisplay(bool live, bool summary);
  ~ProgressDisplay();  // clears the live line
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  // nullptr when nothing is shown.
  image::ProgressCallback Callback();
  // Clears the live line; prints the summary when the run succeeded.
  void Finish(bool ok);

 private:
  enum class State { kWaiting, kFetching, kFetched, kCached, kSkipped, kDone };
  struct Layer {
    State state = State::kWaiting;
    std::uint64_t bytes = 0, total = 0;
  };
  void Update(const image::ProgressEvent& e);
  void Draw() SR_REQUIRES(mu_);
  void Clear() SR_REQUIRES(mu_);

  const bool live_, summary_;
  const std::chrono::steady_clock::time_point start_;
  Mutex mu_;
  std::vector<Layer> layers_ SR_GUARDED_BY(mu_);
  std::uint64_t received_ SR_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point first_byte_ SR_GUARDED_BY(mu_), last_byte_ SR_GUARDED_BY(mu_),
      last_draw_ SR_GUARDED_BY(mu_);
  bool drawn_ SR_GUARDED_BY(mu_) = false;
};

}  // namespace sealroot::tool
