// Env: the file-system calls through which durable state is written (the sealed store, the
// agent's sealed state), so that a test can make the disk fail: ENOSPC, EIO, short writes,
// fsync failures (tests/support/fault_env.h). Env::Default() is the real file system; the
// helpers below (WriteFileAtomic, PwriteAll) are written once over any Env.
//
// Calls mirror their POSIX namesakes and report failures as ErrnoStatus naming `what` was being
// done; paths may be relative to a directory fd (AT_FDCWD: the current directory). Pwrite may be
// short, as pwrite(2) may: PwriteAll is the loop.
//
// Thread-safety: Default() may be used from any thread; fault-injecting Envs lock.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/status.h"

namespace sealroot {

class Env {
 public:
  virtual ~Env() = default;
  static Env& Default();

  virtual Result<UniqueFd> OpenAt(int dir_fd, const std::string& path, int flags, mode_t mode) = 0;
  virtual Result<std::size_t> Pwrite(int fd, std::span<const std::uint8_t> data, std::uint64_t offset) = 0;
  virtual Status Fsync(int fd) = 0;
  virtual Status SyncFs(int fd) = 0;
  // `no_replace`: fails with kAlreadyExists when `to` exists (renameat2 RENAME_NOREPLACE).
  virtual Status RenameAt(int dir_fd, const std::string& from, const std::string& to, bool no_replace) = 0;
  virtual Status UnlinkAt(int dir_fd, const std::string& path, int flags) = 0;
  virtual Status MkdirAt(int dir_fd, const std::string& path, mode_t mode) = 0;
};

// Writes all of `data` at `offset`, continuing after short writes.
Status PwriteAll(Env& env, int fd, std::span<const std::uint8_t> data, std::uint64_t offset);

// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename,
// fsync of the directory. Readers see the old or the new content, never a mix; on failure the
// temporary file is removed and whatever was at `path` is untouched.
Status WriteFileAtomic(Env& env, const std::string& path, std::span<const std::uint8_t> data, mode_t mode);

}  // namespace sealroot
