// The boot's side of ExecProcess (boot/spec/exec.h): accepts authenticated exec requests on a unix
// socket and has the container's init run each process (ContainerInit::Spawn), one thread per
// request.
//
// Thread-safety: Start and the destructor from one thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/secret.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "boot/container.h"

namespace sealroot::boot {

class ExecServer {
 public:
  // Binds `socket_path` (mode 0600) and serves requests for the container whose init is `init`.
  static Result<std::unique_ptr<ExecServer>> Start(const std::string& socket_path, SecretBytes exec_key,
                                                   std::shared_ptr<ContainerInit> init);
  // Stops accepting, ends the connections (their processes are killed), joins every thread and
  // removes the socket.
  ~ExecServer();
  ExecServer(const ExecServer&) = delete;
  ExecServer& operator=(const ExecServer&) = delete;

 private:
  ExecServer() = default;
  void AcceptLoop();
  void Serve(int conn);

  std::string socket_path_;
  SecretBytes key_;
  std::shared_ptr<ContainerInit> init_;
  UniqueFd listen_;
  UniqueFd stop_read_, stop_write_;  // a byte on this pipe wakes every poll
  std::thread acceptor_;
  Mutex mu_;
  std::vector<std::thread> sessions_ SR_GUARDED_BY(mu_);
};

}  // namespace sealroot::boot
