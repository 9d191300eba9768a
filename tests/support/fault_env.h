// FaultEnv: an Env (base/env.h) over the real file system that fails on request, for the
// fault-injection suites: from the Nth call of an operation on, every such call fails with the
// given errno until Clear() (a full or failing disk stays so until it is fixed); a short write
// writes only part of what it is given, once.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <array>
#include <cerrno>
#include <mutex>

#include "base/env.h"

namespace sealroot::testing {

class FaultEnv final : public Env {
 public:
  enum class Op { kOpen, kWrite, kFsync, kRename, kUnlink, kMkdir, kCount };

  // The `nth` call of `op` from now (1: the next one) and every later one fail with `err`.
  void FailFrom(Op op, int nth, int err) {
    std::lock_guard lock(mu_);
    Slot& s = slots_[static_cast<int>(op)];
    s.fail_at = s.calls + nth;
    s.err = err;
  }
  // The `nth` write from now writes only half of its bytes (at least one).
  void ShortWrite(int nth) {
    std::lock_guard lock(mu_);
    short_at_ = slots_[static_cast<int>(Op::kWrite)].calls + nth;
  }
  void Clear() {
    std::lock_guard lock(mu_);
    for (Slot& s : slots_) s.fail_at = 0;
    short_at_ = 0;
  }
  int calls(Op op) const {
    std::lock_guard lock(mu_);
    return slots_[static_cast<int>(op)].calls;
  }
  int short_writes() const {
    std::lock_guard lock(mu_);
    return short_writes_;
  }

  Result<UniqueFd> OpenAt(int dir_fd, const std::string& path, int flags, mode_t mode) override {
    if (int err = Count(Op::kOpen)) return ErrnoStatus("opening " + path, err);
    return real_.OpenAt(dir_fd, path, flags, mode);
  }
  Result<std::size_t> Pwrite(int fd, std::span<const std::uint8_t> data, std::uint64_t offset) override {
    if (int err = Count(Op::kWrite)) return ErrnoStatus("writing", err);
    if (TakeShortWrite() && data.size() > 1) data = data.first(data.size() / 2);
    return real_.Pwrite(fd, data, offset);
  }
  Status Fsync(int fd) override {
    if (int err = Count(Op::kFsync)) return ErrnoStatus("fsync", err);
    return real_.Fsync(fd);
  }
  Status SyncFs(int fd) override {
    if (int err = Count(Op::kFsync)) return ErrnoStatus("syncfs", err);
    return real_.SyncFs(fd);
  }
  Status RenameAt(int dir_fd, const std::string& from, const std::string& to, bool no_replace) override {
    if (int err = Count(Op::kRename)) return ErrnoStatus("renaming " + from, err);
    return real_.RenameAt(dir_fd, from, to, no_replace);
  }
  Status UnlinkAt(int dir_fd, const std::string& path, int flags) override {
    if (int err = Count(Op::kUnlink)) return ErrnoStatus("removing " + path, err);
    return real_.UnlinkAt(dir_fd, path, flags);
  }
  Status MkdirAt(int dir_fd, const std::string& path, mode_t mode) override {
    if (int err = Count(Op::kMkdir)) return ErrnoStatus("creating " + path, err);
    return real_.MkdirAt(dir_fd, path, mode);
  }

 private:
  struct Slot {
    int calls = 0;
    int fail_at = 0;  // 0: no fault
    int err = 0;
  };
  // Counts a call of `op`; the errno it must fail with, or 0.
  int Count(Op op) {
    std::lock_guard lock(mu_);
    Slot& s = slots_[static_cast<int>(op)];
    ++s.calls;
    return s.fail_at != 0 && s.calls >= s.fail_at ? s.err : 0;
  }
  bool TakeShortWrite() {
    std::lock_guard lock(mu_);
    if (short_at_ == 0 || slots_[static_cast<int>(Op::kWrite)].calls != short_at_) return false;
    ++short_writes_;
    return true;
  }

  Env& real_ = Env::Default();
  mutable std::mutex mu_;
  std::array<Slot, static_cast<int>(Op::kCount)> slots_{};
  int short_at_ = 0;
  int short_writes_ = 0;
};

}  // namespace sealroot::testing
