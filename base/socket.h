// Stream sockets, with one policy for every server and client in the project.
//
// Listening on a unix socket path: the parent directory is created 0700 (an existing one is
// left as it is), the socket file is created 0600 from the start (no window in which it is
// wider), and a file already at the path is replaced only when it is a socket nobody listens on
// (left by a server that was killed); a live server's socket or any other file there fails with
// kAlreadyExists. A path starting with '@' names a Linux abstract socket: no file, no mode, and
// the kernel refuses a name in use. TCP addresses are IPv4 literals ("127.0.0.1").
//
// Connecting waits for the server until `deadline`: a unix socket that does not exist yet or
// refuses (ENOENT, ECONNREFUSED) is tried again, a TCP connect is bounded by it. The default
// deadline (already passed) makes one attempt. Failures are errno statuses naming the address.
//
// Thread-safety: free functions; nothing process-wide is changed (no umask).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "base/fd.h"
#include "base/status.h"

namespace sealroot {

using Deadline = std::chrono::steady_clock::time_point;

inline constexpr int kDefaultListenBacklog = 128;

Result<UniqueFd> ListenUnix(const std::string& path, int backlog = kDefaultListenBacklog);
Result<UniqueFd> ListenTcp(const std::string& host, std::uint16_t port, int backlog = kDefaultListenBacklog);
// For servers that create their socket themselves (gRPC): the parent directory and stale-file
// part of ListenUnix's policy. The caller still makes the socket 0600.
Status PrepareUnixSocketPath(const std::string& path);
// The port a TCP listener was bound to (port 0 picks a free one).
Result<std::uint16_t> LocalPort(int fd);

Result<UniqueFd> ConnectUnix(const std::string& path, Deadline deadline = {});
Result<UniqueFd> ConnectTcp(const std::string& host, std::uint16_t port, Deadline deadline = {});

}  // namespace sealroot
