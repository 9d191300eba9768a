// The union over a sealed lower: copy-up, deletions and renames of lower entries, and the same
// view after a remount with the same upper.
#include <sys/stat.h>
#include <sys/xattr.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/fusefs-upper/posix_suite.h"
#include "tests/fusefs/page_cache.h"

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

// Reading the first file of a listed directory reads its small lower files ahead into the page
// cache, as on the read-only tree; a file already copied up is left alone (its lower bytes
// stored over it would be stale), and so is one the host tampered with (its reader gets EIO).
TEST_F(UpperTest, ReadingAListedDirectoryStoresItsSmallLowerFilesInThePageCache) {
  std::vector<Item> lower{Dir("d"), File("d/tampered", Pattern(120000, 99))};
  for (int i = 0; i < 30; ++i) lower.push_back(File("d/f" + std::to_string(10 + i), Pattern(10000, i)));
  const RootHash root = SealSingle("lower", lower);
  FlipByte(NthLargestObject("lower", 0), 64 + 10);
  ASSERT_TRUE(Mount(root, {}).ok());
  ASSERT_EQ(WriteFile(P("d/f39"), "new", O_WRONLY | O_TRUNC), 0);
  Names(P("d"));
  EXPECT_EQ(ReadFile(P("d/f10")), Pattern(10000, 0));
  for (int i = 1; i < 29; ++i) {
    const std::string file = P("d/f" + std::to_string(10 + i));
    EXPECT_TRUE(BecomesPageCached(file)) << file;
    EXPECT_EQ(ReadFile(file), Pattern(10000, i)) << file;
  }
  EXPECT_EQ(ReadFile(P("d/f39")), "new");
  EXPECT_FALSE(IsPageCached(P("d/tampered")));
  EXPECT_EQ(ReadFile(P("d/tampered")), "errno " + std::to_string(EIO));
}

// A prefetch stores what it read while the file cannot change: an open for writing and a
// truncate of that file wait until the store is done, and once they have copied the file up it
// is no longer prefetched.
TEST_F(UpperTest, WritersOfALowerFileWaitForItsPrefetchToBeStored) {
  const RootHash root = SealSingle(
      "lower", {Dir("d"), File("d/open", Pattern(10000, 1)), File("d/truncate", Pattern(10000, 2))});
  auto lower = OpenTree(root);
  ASSERT_TRUE(lower.ok());
  auto fs = UnionFs::Open(std::move(lower).value(), key_, root, {});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  Filesystem& union_fs = **fs;  // UnionFs::Open (the factory) hides Filesystem::Open
  auto dir = union_fs.LookupStat(kRootIno, "d");
  ASSERT_TRUE(dir.ok());
  const std::map<std::string, std::function<Status(std::uint64_t)>> writers = {
      {"open",
       [&](std::uint64_t ino) -> Status {
         SR_ASSIGN_OR_RETURN(std::uint64_t handle, union_fs.Open(ino, O_WRONLY));
         union_fs.Release(handle);
         return OkStatus();
       }},
      {"truncate", [&](std::uint64_t ino) { return union_fs.SetAttr(ino, {.size = 5}).status(); }},
  };
  for (const auto& writer_of : writers) {
    const std::string& name = writer_of.first;  // not a structured binding: the lambdas use it
    const auto& write = writer_of.second;
    auto file = union_fs.LookupStat(dir->attr.ino, name);
    ASSERT_TRUE(file.ok()) << name;
    const std::uint64_t ino = file->attr.ino;
    std::vector<std::uint8_t> buffer(10000);
    std::atomic<bool> written = false;
    std::thread writer;
    Status prefetched = union_fs.Prefetch(ino, buffer, [&](std::span<const std::uint8_t> bytes) {
      EXPECT_EQ(std::string(bytes.begin(), bytes.end()), Pattern(10000, name == "open" ? 1 : 2)) << name;
      writer = std::thread([&] { written = write(ino).ok(); });
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      EXPECT_FALSE(written) << name << ": the writer did not wait for the store";
    });
    EXPECT_TRUE(prefetched.ok()) << name << ": " << prefetched.ToString();
    ASSERT_TRUE(writer.joinable()) << name << ": nothing was stored";
    writer.join();
    EXPECT_TRUE(written) << name;
    bool stored_again = false;
    EXPECT_TRUE(
        union_fs.Prefetch(ino, buffer, [&](std::span<const std::uint8_t>) { stored_again = true; }).ok());
    EXPECT_FALSE(stored_again) << name;
  }
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
