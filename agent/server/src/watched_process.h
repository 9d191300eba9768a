// WatchProcess: a Process whose blocking calls can be abandoned by a client that went away.
// One thread, started with the process, waits for the exit and keeps the status (so ExitStatus
// knows an exit no one waited for), and one per output stream reads ahead into a bounded buffer
// (1 MiB), started by the first call that needs it; every Wait,
// ReadStdout and ReadStderr waits on those and gives up with kCancelled once its call is
// cancelled (rpc/call_context.h), which frees its request thread and its blocking-call slot. Any
// number of WaitProcess calls for one process cost one thread. WriteStdin and CloseStdin go
// straight through. Destroying it kills a process still running (as a removed container's
// processes are) and joins its threads.
//
// Thread-safety: as Process.
#pragma once

#include <memory>

#include "agent/server/runtime.h"

namespace sealroot::agent {

std::shared_ptr<Process> WatchProcess(std::unique_ptr<Process> process);

}  // namespace sealroot::agent
