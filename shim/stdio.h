// ProcessIo: a container process's stdio between containerd's FIFOs and the agent. containerd
// creates the FIFOs and holds their other ends; the agent serves the process's streams as
// ReadStdout/ReadStderr/WriteStdin/CloseStdin. One thread per stream copies: output until the
// agent reports the end of the stream, input until CloseIO (or Close) — containerd's clients
// send CloseIO when their own stdin ends.
//
// Thread-safety: CloseStdin and WaitOutput may be called from any thread; Close once, by the owner.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "base/fd.h"
#include "base/status.h"
#include "shim/agent_client.h"

namespace sealroot::shim {

struct StdioPaths {
  std::string stdin;   // empty: no stdin
  std::string stdout;  // empty: output is read and discarded (the process must not block on it)
  std::string stderr;
  bool terminal = false;
};

class ProcessIo {
 public:
  // Opens the FIFOs (never blocking: containerd holds the other ends, or nobody will).
  static Result<std::unique_ptr<ProcessIo>> Open(const StdioPaths& paths);
  ~ProcessIo();  // Close()
  ProcessIo(const ProcessIo&) = delete;
  ProcessIo& operator=(const ProcessIo&) = delete;

  // Starts copying for the process (container_id, exec_id) once the agent runs it.
  void Start(AgentClient agent, const std::string& container_id, const std::string& exec_id);
  // Waits until both output streams ended and closes containerd's output FIFOs (the reader
  // sees EOF, so it has everything before the exit is reported).
  void WaitOutput();
  // Stops forwarding stdin; the agent closes the process's stdin.
  void CloseStdin();
  void Close();

 private:
  ProcessIo() = default;
  void CopyOutput(bool stderr_stream);
  void CopyInput();

  std::optional<AgentClient> agent_;
  std::string container_id_, exec_id_;
  bool terminal_ = false;
  UniqueFd stdin_, stdout_, stderr_;
  UniqueFd stop_stdin_;  // eventfd: CloseStdin
  std::thread out_thread_, err_thread_, in_thread_;
};

}  // namespace sealroot::shim
