// The FUSE adapter over a SealedTree in this process: what the kernel sees (stat through
// lookup and readdirplus, reads, symlinks, xattrs, read-only refusal, EIO on tampering).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fusefs/fuse_mount.h"
#include "tests/fusefs/sealfs_fixture.h"

namespace sealroot::fusefs::testing {
namespace {

class FuseAdapterTest : public SealfsTest {
 protected:
  void MountTree(const RootHash& root) {
    auto tree = OpenTree(root);
    ASSERT_TRUE(tree.ok()) << tree.status().ToString();
    tree_ = std::move(tree).value();
    mnt_ = tmp_ / "mnt";
    std::filesystem::create_directories(mnt_);
    auto mount = FuseMount::Create(*tree_, {.mountpoint = mnt_});
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
  {
    std::fstream f(ObjectPath(bad_hex), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 10);
    f.put('\x42');
  }
  MountTree(root);
  EXPECT_EQ(Slurp("good"), Pattern(100000, 1));
  int fd = open((mnt_ + "/bad").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  EXPECT_EQ(read(fd, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EIO);
  close(fd);
}

}  // namespace
}  // namespace sealroot::fusefs::testing
