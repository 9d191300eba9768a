// Logging to stderr with levels. Never log secrets: SecretBytes has no stream operator on
// purpose, and credentials/keys must not be formatted into messages.
//
//   SR_LOG(kWarning) << "layer " << digest << ": retrying";
//
// Thread-safety: each message is written with one write(2); the level is atomic.
#pragma once

#include <sstream>
#include <string_view>

#include "base/status.h"

namespace sealroot::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

void SetLevel(Level level);
Level GetLevel();
bool Enabled(Level level);
Result<Level> ParseLevel(std::string_view name);  // debug|info|warning|warn|error|off
// Prefix every line with this program name (default "sealroot").
void SetProgramName(std::string_view name);

class Message {
 public:
  explicit Message(Level level) : level_(level) {}
  ~Message();
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  std::ostream& stream() { return out_; }

 private:
  Level level_;
  std::ostringstream out_;
};

}  // namespace sealroot::log

#define SR_LOG(level)                                             \
  if (!::sealroot::log::Enabled(::sealroot::log::Level::level)) { \
  } else                                                          \
    ::sealroot::log::Message(::sealroot::log::Level::level).stream()
