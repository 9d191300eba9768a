// Ctrl-C / SIGTERM handling for commands: the handler only sets a flag; long-running work polls
// Interrupted() between chunks and unwinds with kCancelled, so RAII removes staging on the way out.
#pragma once

namespace sealroot {

// Installs SIGINT/SIGTERM/SIGHUP handlers that set the flag (a second signal exits at once).
void InstallInterruptHandler();
bool Interrupted();

}  // namespace sealroot
