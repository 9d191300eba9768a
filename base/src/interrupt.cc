#include "base/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace sealroot {
namespace {
std::atomic<int> g_signal{0};

void OnSignal(int sig) {
  if (g_signal.exchange(sig) != 0) _exit(128 + sig);
}
}  // namespace

void InstallInterruptHandler() {
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &action, nullptr);
}

bool Interrupted() {
  return g_signal.load(std::memory_order_relaxed) != 0;
}

}  // namespace sealroot
