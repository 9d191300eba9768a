#include "base/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <thread>

#include "base/file.h"

namespace sealroot {
namespace {

struct UnixAddress {
  sockaddr_un addr{};
  socklen_t len = 0;
  bool abstract = false;
};

Result<UnixAddress> MakeUnixAddress(const std::string& path) {
  UnixAddress out;
  out.addr.sun_family = AF_UNIX;
  if (path.empty()) return InvalidArgument("empty unix socket path");
  if (path.size() >= sizeof(out.addr.sun_path)) return InvalidArgument("socket path too long: " + path);
  out.abstract = path[0] == '@';
  if (out.abstract) {
    std::memcpy(out.addr.sun_path + 1, path.data() + 1, path.size() - 1);  // sun_path[0] == 0
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    std::memcpy(out.addr.sun_path, path.c_str(), path.size() + 1);
    out.len = sizeof(out.addr);
  }
  return out;
}

Result<sockaddr_in> MakeTcpAddress(const std::string& host, std::uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1)
    return InvalidArgument("not an IPv4 address: " + host);
  return sin;
}

Result<UniqueFd> NewSocket(int domain) {
  UniqueFd fd(::socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus("creating a socket", errno);
  return fd;
}

int ConnectOnce(int fd, const UnixAddress& where) {
  return ::connect(fd, reinterpret_cast<const sockaddr*>(&where.addr), where.len) == 0 ? 0 : errno;
}

// Removes a socket file left by a server that is gone; refuses to touch anything else.
Status RemoveStaleSocket(const std::string& path, const UnixAddress& where) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? OkStatus() : ErrnoStatus("inspecting " + path, errno);
  }
  if (!S_ISSOCK(st.st_mode)) return AlreadyExists(path + " exists and is not a socket");
  SR_ASSIGN_OR_RETURN(UniqueFd probe, NewSocket(AF_UNIX));
  int err = ConnectOnce(probe.get(), where);
  if (err == 0) return AlreadyExists(path + ": another server is listening there");
  if (err != ECONNREFUSED) return ErrnoStatus("probing the socket at " + path, err);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoStatus("removing stale socket " + path, errno);
  return OkStatus();
}

// Creates `dir` and any missing parent 0700; existing directories are left as they are.
Status MakePrivateDirs(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? OkStatus() : FailedPrecondition(dir + " is not a directory");
  }
  if (errno != ENOENT) return ErrnoStatus("inspecting " + dir, errno);
  const std::string parent = Dirname(dir);
  if (parent != dir) SR_RETURN_IF_ERROR(MakePrivateDirs(parent));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("creating " + dir, errno);
  return OkStatus();
}

// bind's errno; an address in use is another server's.
Status BindError(const std::string& name) {
  if (errno == EADDRINUSE) return AlreadyExists(name + ": another server is listening there");
  return ErrnoStatus("binding " + name, errno);
}

}  // namespace

Status PrepareUnixSocketPath(const std::string& path) {
  SR_ASSIGN_OR_RETURN(UnixAddress where, MakeUnixAddress(path));
  if (where.abstract) return OkStatus();
  SR_RETURN_IF_ERROR(MakePrivateDirs(Dirname(path)));
  return RemoveStaleSocket(path, where);
}

Result<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  SR_ASSIGN_OR_RETURN(UnixAddress where, MakeUnixAddress(path));
  SR_RETURN_IF_ERROR(PrepareUnixSocketPath(path));
  SR_ASSIGN_OR_RETURN(UniqueFd fd, NewSocket(AF_UNIX));
  // Linux creates the socket file with the socket inode's mode (less the umask): 0600 from the
  // start, without touching the process-wide umask.
  if (!where.abstract && ::fchmod(fd.get(), 0600) != 0) return ErrnoStatus("fchmod of a socket", errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&where.addr), where.len) != 0)
    return BindError(path);
  if (::listen(fd.get(), backlog) != 0) return ErrnoStatus("listening on " + path, errno);
  return fd;
}

Result<UniqueFd> ListenTcp(const std::string& host, std::uint16_t port, int backlog) {
  SR_ASSIGN_OR_RETURN(sockaddr_in sin, MakeTcpAddress(host, port));
  SR_ASSIGN_OR_RETURN(UniqueFd fd, NewSocket(AF_INET));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const std::string name = host + ":" + std::to_string(port);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof(sin)) != 0) return BindError(name);
  if (::listen(fd.get(), backlog) != 0) return ErrnoStatus("listening on " + name, errno);
  return fd;
}

Result<std::uint16_t> LocalPort(int fd) {
  sockaddr_in sin{};
  socklen_t len = sizeof(sin);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0)
    return ErrnoStatus("getsockname", errno);
  return ntohs(sin.sin_port);
}

Result<UniqueFd> ConnectUnix(const std::string& path, Deadline deadline) {
  SR_ASSIGN_OR_RETURN(UnixAddress where, MakeUnixAddress(path));
  while (true) {
    SR_ASSIGN_OR_RETURN(UniqueFd fd, NewSocket(AF_UNIX));
    int err = ConnectOnce(fd.get(), where);
    if (err == 0) return fd;
    if (err == EINTR) continue;
    // A server that has not started listening yet: try again until the deadline.
    if ((err != ENOENT && err != ECONNREFUSED) || std::chrono::steady_clock::now() >= deadline) {
      return ErrnoStatus("connecting to " + path, err);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<UniqueFd> ConnectTcp(const std::string& host, std::uint16_t port, Deadline deadline) {
  SR_ASSIGN_OR_RETURN(sockaddr_in sin, MakeTcpAddress(host, port));
  SR_ASSIGN_OR_RETURN(UniqueFd fd, NewSocket(AF_INET));
  const std::string name = host + ":" + std::to_string(port);
  const bool bounded = deadline != Deadline{};
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (bounded) ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof(sin)) != 0) {
    if (!bounded || errno != EINPROGRESS) return ErrnoStatus("connecting to " + name, errno);
    pollfd pfd{fd.get(), POLLOUT, 0};
    while (true) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return DeadlineExceeded("connecting to " + name + ": timed out");
      int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 60'000)));
      if (ready < 0 && errno != EINTR) return ErrnoStatus("connecting to " + name, errno);
      if (ready > 0) break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return ErrnoStatus("connecting to " + name, err);
  }
  if (bounded) ::fcntl(fd.get(), F_SETFL, flags);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace sealroot
