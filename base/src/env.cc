#include "base/env.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"

namespace sealroot {
namespace {

class PosixEnv final : public Env {
 public:
  Result<UniqueFd> OpenAt(int dir_fd, const std::string& path, int flags, mode_t mode) override {
    UniqueFd fd(::openat(dir_fd, path.c_str(), flags | O_CLOEXEC, mode));
    if (!fd) return ErrnoStatus("opening " + path, errno);
    return fd;
  }
  Result<std::size_t> Pwrite(int fd, std::span<const std::uint8_t> data, std::uint64_t offset) override {
    while (true) {
      ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return ErrnoStatus("writing", errno);
    }
  }
  Status Fsync(int fd) override { return ::fsync(fd) == 0 ? OkStatus() : ErrnoStatus("fsync", errno); }
  Status SyncFs(int fd) override { return ::syncfs(fd) == 0 ? OkStatus() : ErrnoStatus("syncfs", errno); }
  Status RenameAt(int dir_fd, const std::string& from, const std::string& to, bool no_replace) override {
    if (::renameat2(dir_fd, from.c_str(), dir_fd, to.c_str(), no_replace ? RENAME_NOREPLACE : 0) == 0) {
      return OkStatus();
    }
    return ErrnoStatus("renaming " + from + " to " + to, errno);
  }
  Status UnlinkAt(int dir_fd, const std::string& path, int flags) override {
    return ::unlinkat(dir_fd, path.c_str(), flags) == 0 ? OkStatus() : ErrnoStatus("removing " + path, errno);
  }
  Status MkdirAt(int dir_fd, const std::string& path, mode_t mode) override {
    return ::mkdirat(dir_fd, path.c_str(), mode) == 0 ? OkStatus() : ErrnoStatus("creating " + path, errno);
  }
};

}  // namespace

Env& Env::Default() {
  static PosixEnv env;
  return env;
}

Status PwriteAll(Env& env, int fd, std::span<const std::uint8_t> data, std::uint64_t offset) {
  while (!data.empty()) {
    SR_ASSIGN_OR_RETURN(std::size_t n, env.Pwrite(fd, data, offset));
    if (n == 0) return ErrnoStatus("writing", EIO);  // no progress
    data = data.subspan(n);
    offset += n;
  }
  return OkStatus();
}

Status WriteFileAtomic(Env& env, const std::string& path, std::span<const std::uint8_t> data, mode_t mode) {
  std::uint8_t nonce[8];
  RandomBytes(nonce);
  const std::string tmp = path + ".tmp-" + HexEncode(nonce);
  SR_ASSIGN_OR_RETURN(UniqueFd fd, env.OpenAt(AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_EXCL, mode));
  ScopeGuard remove_tmp([&] { (void)env.UnlinkAt(AT_FDCWD, tmp, 0); });
  SR_RETURN_IF_ERROR_CTX(PwriteAll(env, fd.get(), data, 0), tmp);
  if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus("chmod " + tmp, errno);
  SR_RETURN_IF_ERROR_CTX(env.Fsync(fd.get()), tmp);
  fd.Reset();
  SR_RETURN_IF_ERROR(env.RenameAt(AT_FDCWD, tmp, path, /*no_replace=*/false));
  remove_tmp.Dismiss();
  // Best effort: once renamed the new content is what every reader sees, so the call has
  // succeeded; a failed directory sync cannot be undone by reporting it.
  Result<UniqueFd> dir = env.OpenAt(AT_FDCWD, Dirname(path), O_RDONLY | O_DIRECTORY, 0);
  if (dir.ok()) (void)env.Fsync(dir->get());
  return OkStatus();
}

}  // namespace sealroot
