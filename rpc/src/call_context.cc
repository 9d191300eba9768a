#include "rpc/call_context.h"

#include <utility>

namespace sealroot::rpc {
namespace {

thread_local CancelFlag current_call;

}  // namespace

CallScope::CallScope(CancelFlag cancelled) : previous_(std::exchange(current_call, std::move(cancelled))) {}

CallScope::~CallScope() {
  current_call = std::move(previous_);
}

bool CallCancelled() {
  return current_call && current_call->load();
}

}  // namespace sealroot::rpc
