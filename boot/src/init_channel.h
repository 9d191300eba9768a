// The channel between the boot and the container's init (a unix stream socket pair): messages
// of a u32 length and a JSON document, optionally carrying descriptors (SCM_RIGHTS). Only what
// init needs crosses it — the spec text, the resolved process, stdio — never a key.
//
//   boot -> init   {"type":"start","root","spec","process",<namespaces>}
//   init -> boot   {"type":"started"} | {"type":"error","code","message"}
//                  (a terminal process's pty master travels with "started" and "exec-started")
//   boot -> init   {"type":"exec","id","process"} + stdin, stdout, stderr
//   init -> boot   {"type":"exec-started","id"} | {"type":"exec-error","id","code","message"}
//   boot -> init   {"type":"signal","id","signal"}
//   init -> boot   {"type":"exit","id","code"}
//
// Thread-safety: pure functions; callers serialise sends on one socket.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "boot/spec/process_spec.h"

namespace sealroot::boot {

// Init's descriptors: the channel, and the container root's directory, opened in init's mount
// namespace by the clone child before it dropped the host's ids.
inline constexpr int kInitChannelFd = 3;
inline constexpr int kInitRootFd = 5;

struct InitMessage {
  nlohmann::json body;
  std::vector<UniqueFd> fds;
};

Status SendInitMessage(int socket, const nlohmann::json& body, std::span<const int> fds = {});
// kUnavailable at end of stream.
Result<InitMessage> ReceiveInitMessage(int socket);

nlohmann::json EncodeProcess(const ProcessSpec& process);
Result<ProcessSpec> DecodeProcess(const nlohmann::json& process);

}  // namespace sealroot::boot
