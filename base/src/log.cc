#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>

namespace sealroot::log {
namespace {
std::atomic<Level> g_level{Level::kWarning};
std::mutex g_name_mutex;
std::string g_program_name = "sealroot";  // guarded by g_name_mutex

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "?";
}
}  // namespace

void SetLevel(Level level) {
  g_level.store(level, std::memory_order_relaxed);
}
Level GetLevel() {
  return g_level.load(std::memory_order_relaxed);
}
bool Enabled(Level level) {
  return level >= GetLevel() && level != Level::kOff;
}

Result<Level> ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warning" || name == "warn") return Level::kWarning;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  return InvalidArgument("unknown log level '" + std::string(name) +
                         "' (expected debug, info, warning, error or off)");
}

void SetProgramName(std::string_view name) {
  std::lock_guard lock(g_name_mutex);
  g_program_name = name;
}

Message::~Message() {
  std::string line;
  {
    std::lock_guard lock(g_name_mutex);
    line = g_program_name;
  }
  line += ": ";
  line += LevelName(level_);
  line += ": ";
  line += out_.str();
  line += '\n';
  // One write per line keeps concurrent messages whole; a failed log write is not actionable.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace sealroot::log
