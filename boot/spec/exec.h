// ExecProcess inside a running container's app enclave (design/boot.md "Exec"): the boot serves
// exec requests on a unix socket in the container's state directory; the host can reach that
// socket, so every request is authenticated with a key the agent and the boot share and the
// host does not: the container's own exec key, which the agent derives from a secret it never
// releases and hands only to this container's attested boot (in the key release).
//
// Wire (frames as in local-attest/channel.h: u32 BE length + bytes, 64 KiB cap):
//   boot -> agent   challenge (32 random bytes)
//   agent -> boot   HMAC-SHA256(exec key, "sealroot exec v1" || challenge || request) || request
//                   where request is a boot spec document with the process to run
//   agent -> boot   one byte with SCM_RIGHTS: the process's stdin, stdout, stderr
//   boot -> agent   "ok" or "error: <message>"
//   agent -> boot   any time: a signal number (u32 BE), or a terminal size (u32 BE height,
//                   u32 BE width; 8 bytes) for a process with process.terminal
//   boot -> agent   the exit code (u32 BE; 128+N for signal N), then the boot closes
// Control requests run no process: no stdio follows, the boot answers "ok" or "error: <message>"
// and closes.
//   {"terminalSize":{"height","width"}}  resizes the entrypoint's terminal
//   {"cgroupStats":{}}                   after "ok", one more frame: the container's cgroup
//                                        statistics (cgroup_stats.h's JSON form)
//   {"resources":{...}}                  `runc update` of the container's cgroup (linux.resources
//                                        form: memory, cpu, pids, blockIO)
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/crypto.h"
#include "base/secret.h"

namespace sealroot::boot {

inline constexpr std::size_t kExecChallengeSize = 32;
inline constexpr std::size_t kExecMaxFrame = 64 * 1024;

Sha256Digest ExecRequestMac(const SecretBytes& exec_key, std::span<const std::uint8_t> challenge,
                            std::string_view request);

}  // namespace sealroot::boot
