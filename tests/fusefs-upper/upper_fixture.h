// Test fixture for the writable union: seals a lower image with the sealfs fixture, then mounts
// UnionFs through the real FUSE adapter in this process (Serve on a thread), so tests use plain
// syscalls on the mountpoint. Remount() unmounts, commits and mounts again with the same upper.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fusefs/fuse_mount.h"
#include "fusefs/upper.h"
#include "tests/fusefs/sealfs_fixture.h"

namespace sealroot::fusefs::testing {

class UpperTest : public SealfsTest {
 protected:
  void SetUp() override {
    SealfsTest::SetUp();
    // The nobody user must reach the mountpoint.
    ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
    mnt_ = tmp_ / "mnt";
    upper_ = tmp_ / "upper";
    ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0);
  }
  void TearDown() override { Unmount(); }

  // The default lower: a few directories, files (inline and object-backed), links, a symlink.
  RootHash SealDefaultLower() {
    Item big = File("data/big", Pattern(300000, 7), 0644);
    Item hard = Link(NodeType::kHardLink, "data/big-link", "data/big");
    return SealSingle("lower",
                      {Dir("etc"), File("etc/passwd", "root:x:0:0\n"), File("etc/motd", "hello\n", 0600),
                       Dir("data"), big, hard, Dir("data/sub"), File("data/sub/x", "x\n"),
                       Link(NodeType::kSymlink, "etc/link", "passwd"), Dir("empty")});
  }

  Status Mount(const RootHash& root, UpperOptions options) {
    SR_ASSIGN_OR_RETURN(auto lower, OpenTree(root));
    SR_ASSIGN_OR_RETURN(fs_, UnionFs::Open(std::move(lower), key_, root, options));
    FuseMountOptions mo;
    mo.mountpoint = mnt_;
    mo.read_only = false;
    SR_ASSIGN_OR_RETURN(mount_, FuseMount::Create(*fs_, mo));
    server_ = std::thread([this] { (void)mount_->Serve(); });
    return OkStatus();
  }
  Status MountPersistent(const RootHash& root) {
    return Mount(root, UpperOptions{.dir = upper_, .expected_state = std::nullopt});
  }

  // Unmounts, then commits a persistent upper; returns its root hash (zeros if in memory).
  Hash32 Unmount() {
    if (!mount_) return {};
    umount2(mnt_.c_str(), MNT_DETACH);
    server_.join();
    mount_.reset();
    Hash32 state{};
    if (auto committed = fs_->Commit(); committed.ok()) state = *committed;
    fs_.reset();
    return state;
  }

  Status Remount(const RootHash& root) {
    Unmount();
    return MountPersistent(root);
  }

  std::string P(const std::string& rel) const { return mnt_ + "/" + rel; }

  std::string mnt_;
  std::string upper_;
  std::unique_ptr<UnionFs> fs_;
  std::unique_ptr<FuseMount> mount_;
  std::thread server_;
};

// File helpers on real paths; failures come back as errno values for the assertions.
inline int WriteFile(const std::string& path, const std::string& data,
                     int flags = O_CREAT | O_TRUNC | O_WRONLY, mode_t mode = 0644) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  ssize_t n = write(fd, data.data(), data.size());
  int err = n == static_cast<ssize_t>(data.size()) ? 0 : (n < 0 ? errno : EIO);
  close(fd);
  return err;
}

// Returns the content, or "errno N" on failure.
inline std::string ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "errno " + std::to_string(errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      out = "errno " + std::to_string(errno);
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

// errno of a -1/0 returning call, 0 on success.
inline int Err(int rc) {
  return rc < 0 ? errno : 0;
}

// Runs `body` as uid/gid on a thread of its own. Credentials are per thread in the kernel, so raw
// set*id calls (not glibc's, which change every thread) drop them for that thread only while the
// FUSE threads keep serving as root. A thread, not fork(): a forked child of this multithreaded
// process can inherit the allocator's lock held by another thread and hang on its first malloc.
inline std::vector<std::string> RunAs(uid_t uid, gid_t gid,
                                      const std::function<std::vector<std::string>()>& body) {
  std::vector<std::string> failures;
  std::thread([&] {
    if (::syscall(SYS_setgroups, 0, nullptr) != 0 || ::syscall(SYS_setresgid, gid, gid, gid) != 0 ||
        ::syscall(SYS_setresuid, uid, uid, uid) != 0) {
      failures.push_back("dropping privileges failed");
      return;
    }
    failures = body();
  }).join();
  return failures;
}

}  // namespace sealroot::fusefs::testing
