// The FUSE adapter over a SealedTree in this process: what the kernel sees (stat through
// lookup and readdirplus, reads, symlinks, xattrs, read-only refusal, EIO on tampering).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fusefs/fuse_mount.h"
#include "tests/fusefs/page_cache.h"
#include "tests/fusefs/sealfs_fixture.h"

namespace sealroot::fusefs::testing {
namespace {

class FuseAdapterTest : public SealfsTest {
 protected:
  void MountTree(const RootHash& root, bool prefetch_siblings = true, const std::string& dir_name = "mnt") {
    auto tree = OpenTree(root);
    ASSERT_TRUE(tree.ok()) << tree.status().ToString();
    tree_ = std::move(tree).value();
    mnt_ = tmp_ / dir_name;
    std::filesystem::create_directories(mnt_);
    auto mount = FuseMount::Create(*tree_, {.mountpoint = mnt_, .prefetch_siblings = prefetch_siblings});
    ASSERT_TRUE(mount.ok()) << mount.status().ToString();
    mount_ = std::move(mount).value();
    server_ = std::thread([this] { served_ = mount_->Serve(); });
  }
  void TearDown() override {
    if (server_.joinable()) {
      umount2(mnt_.c_str(), MNT_DETACH);
      server_.join();
      EXPECT_TRUE(served_.ok()) << served_.ToString();
    }
  }
  std::string Slurp(const std::string& rel) {
    std::ifstream in(mnt_ + "/" + rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void ExpectReadFailsWithEio(const std::string& rel) {
    int fd = open((mnt_ + "/" + rel).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << rel;
    char buf[4096];
    EXPECT_EQ(read(fd, buf, sizeof buf), -1) << rel;
    EXPECT_EQ(errno, EIO) << rel;
    close(fd);
  }
  bool Cached(const std::string& rel) { return IsPageCached(mnt_ + "/" + rel); }
  bool BecomesCached(const std::string& rel) { return BecomesPageCached(mnt_ + "/" + rel); }
  void List(const std::string& rel) {
    for (const auto& e : std::filesystem::directory_iterator(mnt_ + "/" + rel)) (void)e;
  }

  std::unique_ptr<SealedTree> tree_;
  std::unique_ptr<FuseMount> mount_;
  std::thread server_;
  Status served_;
  std::string mnt_;
};

TEST_F(FuseAdapterTest, KernelSeesTheSealedTree) {
  Item owned = File("dir/owned", Pattern(300000, 11), 0640);
  owned.entry.uid = 1234;
  owned.entry.gid = 5678;
  owned.entry.mtime_sec = 1600000000;
  owned.entry.xattrs = {{"user.k", "v"}};
  std::vector<Item> items{Dir("dir"), owned, Link(NodeType::kSymlink, "dir/sym", "owned"),
                          Link(NodeType::kHardLink, "hard", "dir/owned")};
  for (int i = 0; i < 500; ++i) items.push_back(File("many/f" + std::to_string(i), std::to_string(i)));
  MountTree(SealSingle("fuse", std::move(items)));

  // A listing with attributes (readdirplus) then stat of each entry, as ls -l does.
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(mnt_ + "/many")) {
    struct stat st {};
    ASSERT_EQ(lstat(e.path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(Slurp("many/" + e.path().filename().string()), e.path().filename().string().substr(1));
    ++files;
  }
  EXPECT_EQ(files, 500u);
  struct stat st {
  }, hard{};
  ASSERT_EQ(lstat((mnt_ + "/dir/owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, S_IFREG | 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_EQ(lstat((mnt_ + "/hard").c_str(), &hard), 0);
  EXPECT_EQ(st.st_ino, hard.st_ino);
  EXPECT_EQ(Slurp("dir/owned"), Pattern(300000, 11));
  EXPECT_EQ(std::filesystem::read_symlink(mnt_ + "/dir/sym"), "owned");
  char value[16] = {};
  EXPECT_EQ(lgetxattr((mnt_ + "/dir/owned").c_str(), "user.k", value, sizeof value), 1);
  EXPECT_EQ(value[0], 'v');
  EXPECT_FALSE(std::filesystem::exists(mnt_ + "/nothing"));
  int fd = open((mnt_ + "/dir/owned").c_str(), O_WRONLY);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(mkdir((mnt_ + "/new").c_str(), 0755), 0);
}

TEST_F(FuseAdapterTest, TamperedFileReadsAsEio) {
  RootHash root = SealSingle("eio", {File("good", Pattern(100000, 1)), File("bad", Pattern(100000, 2))});
  std::istringstream lines([&] {
    std::ifstream in(store_dir_ + "/layers/" + key_->LayerName(DiffIdOf("eio")) + "/objects");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }());
  std::string good_hex, bad_hex;
  lines >> good_hex >> bad_hex;
  FlipByte(ObjectPath(bad_hex), 64 + 10);
  MountTree(root);
  EXPECT_EQ(Slurp("good"), Pattern(100000, 1));
  ExpectReadFailsWithEio("bad");
}

// The kernel reads a large file ahead by 512 KiB (its default for FUSE is 128 KiB), found through
// /proc/self/mountinfo, which escapes a space or a backslash in the mount's path.
TEST_F(FuseAdapterTest, LargeFilesAreReadAheadFurtherThanTheKernelDefault) {
  const std::string content = Pattern(3 * 1024 * 1024 + 12345, 5);
  MountTree(SealSingle("large", {File("large", content)}), true, "mnt with space\\and backslash");
  struct stat st {};
  ASSERT_EQ(stat(mnt_.c_str(), &st), 0);
  std::ifstream knob("/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                     std::to_string(minor(st.st_dev)) + "/read_ahead_kb");
  unsigned kib = 0;
  ASSERT_TRUE(knob >> kib);
  EXPECT_EQ(kib, 512u);
  EXPECT_EQ(Slurp("large"), content);
  // Reads that start and end inside chunks, across request boundaries.
  int fd = open((mnt_ + "/large").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  for (std::size_t at : {std::size_t{1}, std::size_t{65535}, std::size_t{262143}, content.size() - 70000}) {
    std::string got(300000, '\0');
    ssize_t n = pread(fd, got.data(), got.size(), static_cast<off_t>(at));
    ASSERT_GT(n, 0);
    got.resize(static_cast<std::size_t>(n));
    EXPECT_EQ(got, content.substr(at, got.size())) << at;
  }
  close(fd);
}

std::vector<Item> PrefetchTree() {
  std::vector<Item> items{Dir("d"), File("d/big", Pattern(300000, 7)),
                          File("d/tampered", Pattern(120000, 8))};
  for (int i = 0; i < 30; ++i) items.push_back(File("d/f" + std::to_string(10 + i), Pattern(10000, i)));
  return items;
}

TEST_F(FuseAdapterTest, ReadingAListedDirectoryStoresItsSmallFilesInThePageCache) {
  const RootHash root = SealSingle("prefetch", PrefetchTree());
  // d/tampered: a sibling that fails its check must not reach the page cache.
  FlipByte(NthLargestObject("prefetch", 1), 64 + 10);
  MountTree(root);
  List("d");
  EXPECT_EQ(Slurp("d/f10"), Pattern(10000, 0));
  for (int i = 1; i < 30; ++i) {
    const std::string file = "d/f" + std::to_string(10 + i);
    EXPECT_TRUE(BecomesCached(file)) << file;
    EXPECT_EQ(Slurp(file), Pattern(10000, i)) << file;
  }
  EXPECT_FALSE(Cached("d/big"));  // larger than a prefetched file
  EXPECT_EQ(Slurp("d/big"), Pattern(300000, 7));
  EXPECT_FALSE(Cached("d/tampered"));
  ExpectReadFailsWithEio("d/tampered");
}

TEST_F(FuseAdapterTest, ListingAloneOrAMountWithoutPrefetchCachesNothing) {
  MountTree(SealSingle("listing", PrefetchTree()), /*prefetch_siblings=*/false);
  List("d");
  EXPECT_EQ(Slurp("d/f10"), Pattern(10000, 0));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(Cached("d/f11"));
  TearDown();
  mount_.reset();

  MountTree(SealSingle("listing2", PrefetchTree()));
  List("d");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 30; ++i) EXPECT_FALSE(Cached("d/f" + std::to_string(10 + i)));
}

}  // namespace
}  // namespace sealroot::fusefs::testing
