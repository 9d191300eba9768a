#include "base/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace sealroot {
namespace {
std::atomic<int> g_signal{0};
std::atomic<bool> g_repeat_exits{true};

void OnSignal(int sig) {
  if (g_signal.exchange(sig) != 0 && g_repeat_exits.load()) _exit(128 + sig);
}
}  // namespace

void InstallInterruptHandler(RepeatedInterrupt repeated) {
  g_repeat_exits.store(repeated == RepeatedInterrupt::kExits);
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &action, nullptr);
}

bool Interrupted() {
  return g_signal.load(std::memory_order_relaxed) != 0;
}

}  // namespace sealroot
