#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include "agent/server/src/servers.h"
#include "base/file.h"

namespace sealroot::agent {
namespace {

constexpr int kBacklog = 128;

Result<UniqueFd> ListenUnix(const std::string& path) {
  SR_RETURN_IF_ERROR(PrepareSocketPath(path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus("socket", errno);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  // The socket is created 0600 from the start (umask), not chmod-ed after a window.
  mode_t old_mask = umask(0177);
  int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun));
  int err = errno;
  umask(old_mask);
  if (rc != 0) return ErrnoStatus("binding " + path, err);
  if (listen(fd.get(), kBacklog) != 0) return ErrnoStatus("listening on " + path, errno);
  return fd;
}

Result<UniqueFd> ListenTcp(const std::string& host, std::uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus("socket", errno);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) return InvalidArgument("bad address " + host);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    return ErrnoStatus("binding " + host + ":" + std::to_string(port), errno);
  }
  if (listen(fd.get(), kBacklog) != 0) return ErrnoStatus("listening on " + host, errno);
  return fd;
}

}  // namespace

Status PrepareSocketPath(const std::string& path) {
  SR_RETURN_IF_ERROR(MakeDirs(Dirname(path), 0700));
  // A socket file left by a previous agent (kill -9) would make bind fail; anything else at that
  // path is not ours to remove.
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return FailedPrecondition(path + " exists and is not a socket");
    if (unlink(path.c_str()) != 0) return ErrnoStatus("removing stale socket " + path, errno);
  }
  return OkStatus();
}

Result<UniqueFd> ListenOn(const ListenAddress& address) {
  if (address.kind == ListenAddress::Kind::kUnix) return ListenUnix(address.path);
  return ListenTcp(address.host, address.port);
}

}  // namespace sealroot::agent
