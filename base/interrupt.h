// Ctrl-C / SIGTERM handling for commands: the handler only sets a flag; long-running work polls
// Interrupted() between chunks and unwinds with kCancelled, so RAII removes staging on the way out.
#pragma once

namespace sealroot {

enum class RepeatedInterrupt {
  kExits,    // a second signal exits at once: a user who asks twice wants out now
  kIgnored,  // a supervisor that must outlive its child (sealroot enclave run): the child decides
};

// Installs SIGINT/SIGTERM/SIGHUP handlers that set the flag; installing again changes only what
// a repeated signal does.
void InstallInterruptHandler(RepeatedInterrupt repeated = RepeatedInterrupt::kExits);
bool Interrupted();

}  // namespace sealroot
