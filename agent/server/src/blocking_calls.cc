#include "agent/server/src/blocking_calls.h"

#include <algorithm>
#include <array>

namespace sealroot::agent {
namespace {

// Calls that wait for a process, a stream, a pull or an app enclave's attestation.
constexpr std::array<std::string_view, 7> kBlockingAgentMethods = {
    "WaitProcess",     "ReadStdout",     "ReadStderr",  "WriteStdin",
    "CreateContainer", "StartContainer", "ExecProcess",
};

}  // namespace

bool BlockingCallLimit::IsBlocking(std::string_view service, std::string_view method) {
  if (service == "grpc.Image") return method == "PullImage";
  return service == "grpc.AgentService" &&
         std::find(kBlockingAgentMethods.begin(), kBlockingAgentMethods.end(), method) !=
             kBlockingAgentMethods.end();
}

bool BlockingCallLimit::TryIncrement(std::atomic<std::size_t>& count, std::size_t max) {
  std::size_t seen = count.load();
  do {
    if (seen >= max) return false;
  } while (!count.compare_exchange_weak(seen, seen + 1));
  return true;
}

std::unique_ptr<BlockingCallLimit::Slot> BlockingCallLimit::TryAcquire(
    std::shared_ptr<std::atomic<std::size_t>> connection) {
  if (connection != nullptr && !TryIncrement(*connection, max_per_connection_)) return nullptr;
  if (!TryIncrement(total_, max_total_)) {
    if (connection != nullptr) --*connection;
    return nullptr;
  }
  return std::make_unique<Slot>(total_, std::move(connection));
}

BlockingCallLimit::Slot::~Slot() {
  --total_;
  if (connection_ != nullptr) --*connection_;
}

}  // namespace sealroot::agent
