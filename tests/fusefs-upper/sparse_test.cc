// Sparse upper files through the real FUSE mount: a file truncated to hundreds of TiB costs its
// written blocks only (on the host's disk and in the block table), reads zeros in its holes,
// takes writes far out, and keeps all of it across a remount. A size the upper cannot hold is
// EFBIG with the size unchanged — never ENOSPC.
#include <sys/stat.h>

#include <filesystem>

#include "tests/fusefs-upper/posix_suite.h"

namespace sealroot::fusefs::testing {
namespace {

namespace fsys = std::filesystem;

constexpr std::uint64_t kTiB = std::uint64_t{1} << 40;
constexpr off_t kHuge = static_cast<off_t>(200 * kTiB);

// Bytes the files under `dir` take on the host's disk (du).
std::uint64_t DiskUsage(const std::string& dir) {
  std::uint64_t total = 0;
  for (const auto& e : fsys::recursive_directory_iterator(dir)) {
    struct stat st {};
    if (lstat(e.path().c_str(), &st) == 0) total += static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

class UpperSparseTest : public UpperTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    UpperTest::SetUp();
    root_ = SealDefaultLower();
    ASSERT_TRUE(Mount(root_, Options()).ok());
  }
  bool persistent() const { return GetParam(); }
  UpperOptions Options() const {
    return UpperOptions{.dir = persistent() ? upper_ : "", .expected_state = {}};
  }

  // pread of `size` bytes at `offset`, or "errno N".
  std::string ReadAt(const std::string& rel, off_t offset, std::size_t size) {
    int fd = open(P(rel).c_str(), O_RDONLY);
    if (fd < 0) return "errno " + std::to_string(errno);
    std::string out(size, '?');
    ssize_t n = pread(fd, out.data(), size, offset);
    int err = errno;
    close(fd);
    if (n < 0) return "errno " + std::to_string(err);
    out.resize(static_cast<std::size_t>(n));
    return out;
  }

  RootHash root_{};
};

TEST_P(UpperSparseTest, TruncatingTo200TiBCostsNothingAndHolesReadZeros) {
  ASSERT_EQ(WriteFile(P("sparse"), "head"), 0);
  ASSERT_EQ(Err(truncate(P("sparse").c_str(), kHuge)), 0);
  struct stat st {};
  ASSERT_EQ(stat(P("sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kHuge);
  EXPECT_LE(static_cast<std::uint64_t>(st.st_blocks) * 512, 64u * 1024);
  EXPECT_EQ(ReadAt("sparse", 0, 8), std::string("head") + std::string(4, '\0'));
  EXPECT_EQ(ReadAt("sparse", static_cast<off_t>(100 * kTiB), 70000), std::string(70000, '\0'));
  EXPECT_EQ(ReadAt("sparse", kHuge - 3, 10), std::string(3, '\0'));
}

TEST_P(UpperSparseTest, WritesFarOutTakeOnlyTheirBlocks) {
  ASSERT_EQ(WriteFile(P("sparse"), ""), 0);
  ASSERT_EQ(Err(truncate(P("sparse").c_str(), kHuge)), 0);
  const std::string far = Pattern(200000, 9);
  const off_t at = kHuge - static_cast<off_t>(far.size()) - 12345;
  const off_t middle = static_cast<off_t>(37 * kTiB) + 4097;
  int fd = open(P("sparse").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, far.data(), far.size(), at), static_cast<ssize_t>(far.size()));
  ASSERT_EQ(pwrite(fd, "middle", 6, middle), 6);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  // Past the old end: the size grows, the hole before it stays free.
  fd = open(P("sparse").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "tail", 4, kHuge + static_cast<off_t>(kTiB)), 4);
  close(fd);
  struct stat st {};
  ASSERT_EQ(stat(P("sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kHuge + static_cast<off_t>(kTiB) + 4);
  EXPECT_LE(static_cast<std::uint64_t>(st.st_blocks) * 512, 8u << 20);
  EXPECT_EQ(ReadAt("sparse", at, far.size()), far);
  EXPECT_EQ(ReadAt("sparse", middle - 2, 10), std::string(2, '\0') + "middle" + std::string(2, '\0'));
  EXPECT_EQ(ReadAt("sparse", kHuge + static_cast<off_t>(kTiB), 4), "tail");
  EXPECT_EQ(ReadAt("sparse", static_cast<off_t>(150 * kTiB), 4096), std::string(4096, '\0'));
  if (!persistent()) return;
  EXPECT_LT(DiskUsage(upper_), 16u << 20);
  const Hash32 committed = Unmount();
  EXPECT_LT(DiskUsage(upper_), 16u << 20);
  ASSERT_TRUE(Mount(root_, UpperOptions{.dir = upper_, .expected_state = committed}).ok());
  EXPECT_EQ(ReadAt("sparse", at, far.size()), far);
  EXPECT_EQ(ReadAt("sparse", middle, 6), "middle");
  EXPECT_EQ(ReadAt("sparse", 1, 4), std::string(4, '\0'));
  ASSERT_EQ(stat(P("sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kHuge + static_cast<off_t>(kTiB) + 4);
}

TEST_P(UpperSparseTest, ShrinkingASparseFileFreesItsFarBlocks) {
  ASSERT_EQ(WriteFile(P("sparse"), "keep"), 0);
  int fd = open(P("sparse").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::string far = Pattern(1 << 20, 3);
  ASSERT_EQ(pwrite(fd, far.data(), far.size(), kHuge), static_cast<ssize_t>(far.size()));
  ASSERT_EQ(fsync(fd), 0);
  ASSERT_EQ(ftruncate(fd, 2), 0);
  ASSERT_EQ(ftruncate(fd, kHuge + 10), 0);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  // Growing again shows zeros where the far bytes were, never the old bytes.
  EXPECT_EQ(ReadAt("sparse", 0, 4), std::string("ke") + std::string(2, '\0'));
  EXPECT_EQ(ReadAt("sparse", kHuge, 10), std::string(10, '\0'));
  if (persistent()) {
    EXPECT_LT(DiskUsage(upper_ + "/data"), 1u << 20);
  }
}

// The lower's content survives the copy-up a huge truncate makes.
TEST_P(UpperSparseTest, TruncatingALowerFileTo200TiBKeepsItsContent) {
  ASSERT_EQ(Err(truncate(P("etc/passwd").c_str(), kHuge)), 0);
  EXPECT_EQ(ReadAt("etc/passwd", 0, 12), std::string("root:x:0:0\n") + '\0');
  EXPECT_EQ(ReadAt("etc/passwd", kHuge - 1, 1), std::string(1, '\0'));
}

TEST_P(UpperSparseTest, ASizeBeyondTheLimitIsEfbigAndChangesNothing) {
  ASSERT_EQ(WriteFile(P("f"), "content"), 0);
  const off_t too_big = static_cast<off_t>(std::uint64_t{1} << 60);
  EXPECT_EQ(Err(truncate(P("f").c_str(), too_big)), EFBIG);
  struct stat st {};
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 7);
  EXPECT_EQ(ReadFile(P("f")), "content");
}

INSTANTIATE_TEST_SUITE_P(Uppers, UpperSparseTest, ::testing::Values(false, true),
                         [](const auto& param_info) { return param_info.param ? "Persistent" : "InMemory"; });

}  // namespace
}  // namespace sealroot::fusefs::testing
