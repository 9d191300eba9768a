// Relays a terminal process's pty master to the stdio the boot was given (the agent's pipes):
// input to the master, the master's output (stdout and stderr, merged by the pty) to stdout.
//
// Thread-safety: Resize may be called from any thread; the destructor from one.
#pragma once

#include <thread>

#include "base/fd.h"
#include "base/status.h"

namespace sealroot::boot {

class PtyRelay {
 public:
  // Duplicates `in` and `out` (the caller keeps its own).
  static Result<std::unique_ptr<PtyRelay>> Start(UniqueFd master, int in, int out);
  // Drains what the process wrote before it ended, then stops both directions.
  ~PtyRelay();
  PtyRelay(const PtyRelay&) = delete;
  PtyRelay& operator=(const PtyRelay&) = delete;

  Status Resize(unsigned height, unsigned width);

 private:
  PtyRelay() = default;
  void CopyIn();
  void CopyOut();

  UniqueFd master_, in_, out_, stop_read_, stop_write_;
  std::thread in_thread_, out_thread_;
};

}  // namespace sealroot::boot
