// The union over a sealed lower: copy-up, deletions and renames of lower entries, and the same
// view after a remount with the same upper.
#include <sys/stat.h>
#include <sys/xattr.h>

#include "tests/fusefs-upper/posix_suite.h"

namespace sealroot::fusefs::testing {
namespace {

TEST_F(UpperTest, LowerIsVisibleAndUnchangedWithoutWrites) {
  ASSERT_TRUE(Mount(SealDefaultLower(), {}).ok());
  EXPECT_EQ(ReadFile(P("etc/passwd")), "root:x:0:0\n");
  EXPECT_EQ(ReadFile(P("data/big")), Pattern(300000, 7));
  EXPECT_EQ(Lstat(P("data/big")).st_ino, Lstat(P("data/big-link")).st_ino);
  EXPECT_EQ(Lstat(P("data/big")).st_nlink, nlink_t{2});
  EXPECT_EQ(Names(P("data")), (std::set<std::string>{".", "..", "big", "big-link", "sub"}));
}

// Changes every kind of lower entry, checks, remounts with the same upper and checks again.
TEST_F(UpperTest, ModifiedAndDeletedLowerFilesSurviveRemount) {
  const RootHash root = SealDefaultLower();
  ASSERT_TRUE(MountPersistent(root).ok());
  ASSERT_EQ(WriteFile(P("etc/passwd"), "user:x:1000:1000\n", O_WRONLY | O_APPEND), 0);
  ASSERT_EQ(chmod(P("etc/motd").c_str(), 0644), 0);
  ASSERT_EQ(chown(P("etc/motd").c_str(), 7, 8), 0);
  ASSERT_EQ(setxattr(P("etc/motd").c_str(), "user.tag", "t", 1, 0), 0);
  ASSERT_EQ(unlink(P("data/sub/x").c_str()), 0);
  ASSERT_EQ(rmdir(P("data/sub").c_str()), 0);
  ASSERT_EQ(mkdir(P("moved").c_str(), 0700), 0);
  ASSERT_EQ(rename(P("data/big").c_str(), P("moved/big").c_str()), 0);  // lower file, not copied up
  ASSERT_EQ(rename(P("empty").c_str(), P("moved/empty").c_str()), 0);   // lower directory
  ASSERT_EQ(unlink(P("etc/link").c_str()), 0);
  ASSERT_EQ(symlink("motd", P("etc/link").c_str()), 0);  // a name deleted and re-created
  {
    int fd = open(P("data/big-link").c_str(), O_WRONLY);  // copy-up through the other name
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "PATCH", 5, 150000), 5);
    close(fd);
  }
  std::string big = Pattern(300000, 7);
  big.replace(150000, 5, "PATCH");

  std::set<std::string> moved = {".", "..", "big", "empty"};
  auto check = [&] {
    EXPECT_EQ(ReadFile(P("etc/passwd")), "root:x:0:0\nuser:x:1000:1000\n");
    struct stat st = Lstat(P("etc/motd"));
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(st.st_uid, 7u);
    EXPECT_EQ(st.st_gid, 8u);
    char v[4] = {};
    EXPECT_EQ(getxattr(P("etc/motd").c_str(), "user.tag", v, sizeof v), 1);
    EXPECT_EQ(ReadFile(P("etc/motd")), "hello\n");
    EXPECT_EQ(Err(access(P("data/sub").c_str(), F_OK)), ENOENT);
    EXPECT_EQ(Err(access(P("data/big").c_str(), F_OK)), ENOENT);
    EXPECT_EQ(Names(P("data")), (std::set<std::string>{".", "..", "big-link"}));
    EXPECT_EQ(Names(P("moved")), moved);
    EXPECT_EQ(ReadFile(P("moved/big")), big);
    EXPECT_EQ(ReadFile(P("data/big-link")), big);
    EXPECT_EQ(Lstat(P("moved/big")).st_ino, Lstat(P("data/big-link")).st_ino);
    EXPECT_TRUE(S_ISDIR(Lstat(P("moved/empty")).st_mode));
    char target[16] = {};
    EXPECT_EQ(readlink(P("etc/link").c_str(), target, sizeof target), 4);
    EXPECT_EQ(std::string(target), "motd");
  };
  check();
  ASSERT_TRUE(Remount(root).ok());
  check();
  // And once more, after changes made on top of the restored state.
  ASSERT_EQ(WriteFile(P("moved/new"), "n"), 0);
  moved.insert("new");
  ASSERT_TRUE(Remount(root).ok());
  check();
  EXPECT_EQ(ReadFile(P("moved/new")), "n");
}

TEST_F(UpperTest, TruncatingALowerFileDoesNotCopyItsBytes) {
  ASSERT_TRUE(Mount(SealDefaultLower(), {}).ok());
  ASSERT_EQ(WriteFile(P("data/big"), "short"), 0);  // O_TRUNC
  EXPECT_EQ(ReadFile(P("data/big")), "short");
  EXPECT_EQ(ReadFile(P("data/big-link")), "short");
  ASSERT_EQ(truncate(P("etc/passwd").c_str(), 4), 0);
  EXPECT_EQ(ReadFile(P("etc/passwd")), "root");
}

TEST_F(UpperTest, UpperOfAnotherLowerIsRefused) {
  const RootHash root = SealDefaultLower();
  ASSERT_TRUE(MountPersistent(root).ok());
  ASSERT_EQ(WriteFile(P("f"), "x"), 0);
  Unmount();
  const RootHash other = SealSingle("other", {File("a", "a")});
  auto lower = OpenTree(other);
  ASSERT_TRUE(lower.ok());
  auto fs =
      UnionFs::Open(std::move(lower).value(), key_, other, {.dir = upper_, .expected_state = std::nullopt});
  ASSERT_FALSE(fs.ok());
  EXPECT_NE(fs.status().message().find("another lower root"), std::string::npos) << fs.status().ToString();
}

TEST_F(UpperTest, UpperInUseIsRefused) {
  const RootHash root = SealDefaultLower();
  ASSERT_TRUE(MountPersistent(root).ok());
  auto lower = OpenTree(root);
  ASSERT_TRUE(lower.ok());
  auto second =
      UnionFs::Open(std::move(lower).value(), key_, root, {.dir = upper_, .expected_state = std::nullopt});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace sealroot::fusefs::testing
