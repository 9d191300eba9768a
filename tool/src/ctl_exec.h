// `sealroot ctl exec`: starts a process in a container and relays it like `ctr task exec` /
// `kubectl exec`: its stdout and stderr stream through as they come, stdin is forwarded with
// --interactive (else closed at once), and the result is the process's exit status.
#pragma once

#include "agent.pb.h"
#include "base/status.h"
#include "tool/src/agent_client.h"

namespace sealroot::tool {

// Runs `request` (ExecProcess) and relays its streams until both close; returns its exit status
// (WaitProcess). With `interactive`, ctl's stdin goes to the process (and, for a terminal, ctl's
// own terminal is put in raw mode while it runs).
Result<int> ExecAndRelay(const AgentEndpoint& endpoint, const ::grpc::ExecProcessRequest& request,
                         bool interactive);

}  // namespace sealroot::tool
