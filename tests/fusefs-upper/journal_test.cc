// What an fsync writes to a persistent upper's state: the record of what changed, not the upper
// again — the same few hundred bytes with 10 files as with 3000, where a whole state of 3000
// files is a hundred times larger. Asserts bytes written, never time.
#include <sys/stat.h>

#include <filesystem>

#include "base/file.h"
#include "tests/fusefs-upper/posix_suite.h"

namespace sealroot::fusefs::testing {
namespace {

namespace fsys = std::filesystem;

struct Cost {
  std::uint64_t snapshot = 0;        // bytes of the whole state
  std::uint64_t most_per_fsync = 0;  // the most one fsync wrote to the state
};

class UpperCommitCostTest : public UpperTest {
 protected:
  void SetUp() override {
    UpperTest::SetUp();
    root_ = SealDefaultLower();
  }

  std::uint64_t Size(const std::string& path) {
    std::error_code ec;
    auto n = fsys::file_size(path, ec);
    return ec ? 0 : n;
  }

  // Fills a fresh upper with `files` files in one directory, then measures fsyncs that each
  // change one file (rewritten), create one (in the full directory) or chmod one.
  Cost Measure(int files) {
    const std::string dir = upper_ + "-" + std::to_string(files);
    Cost cost;
    EXPECT_TRUE(Mount(root_, UpperOptions{.dir = dir, .expected_state = std::nullopt}).ok());
    EXPECT_EQ(mkdir(P("many").c_str(), 0755), 0);
    for (int i = 0; i < files; ++i) EXPECT_EQ(WriteFile(P("many/f" + std::to_string(i)), "0123456789"), 0);
    Sync("note", "first");  // the first commit writes the whole state
    cost.snapshot = Size(dir + "/state");
    const std::string snapshot = sealroot::ReadFile(dir + "/state").value();
    for (int round = 0; round < 5; ++round) {
      std::uint64_t before = Size(dir + "/journal");
      Sync("note", "round " + std::to_string(round));
      cost.most_per_fsync = std::max(cost.most_per_fsync, Size(dir + "/journal") - before);
      before = Size(dir + "/journal");
      Sync("many/new" + std::to_string(round), "new");
      cost.most_per_fsync = std::max(cost.most_per_fsync, Size(dir + "/journal") - before);
      before = Size(dir + "/journal");
      EXPECT_EQ(chmod(P("many/f" + std::to_string(round)).c_str(), 0600), 0);
      Sync("note", "chmod " + std::to_string(round));
      cost.most_per_fsync = std::max(cost.most_per_fsync, Size(dir + "/journal") - before);
    }
    EXPECT_EQ(sealroot::ReadFile(dir + "/state").value(), snapshot);  // never rewritten meanwhile
    const Hash32 committed = Unmount();
    // And it all comes back.
    EXPECT_TRUE(Mount(root_, UpperOptions{.dir = dir, .expected_state = committed}).ok());
    EXPECT_EQ(ReadFile(P("note")), "chmod 4");
    EXPECT_EQ(ReadFile(P("many/new4")), "new");
    struct stat st {};
    EXPECT_EQ(stat(P("many/f4").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(ReadFile(P("many/f" + std::to_string(files - 1))), "0123456789");
    Unmount();
    return cost;
  }

  void Sync(const std::string& rel, const std::string& content) {
    int fd = open(P(rel).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }

  RootHash root_{};
};

TEST_F(UpperCommitCostTest, BytesWrittenPerFsyncDoNotGrowWithTheUpper) {
  const Cost small = Measure(10);
  const Cost large = Measure(3000);
  EXPECT_GT(large.snapshot, 100u * 1024);  // what re-sealing the whole state would write
  EXPECT_LT(small.most_per_fsync, 2048u);
  EXPECT_LE(large.most_per_fsync, small.most_per_fsync + 64);
  RecordProperty("state_bytes_3000_files", std::to_string(large.snapshot));
  RecordProperty("max_bytes_per_fsync_10_files", std::to_string(small.most_per_fsync));
  RecordProperty("max_bytes_per_fsync_3000_files", std::to_string(large.most_per_fsync));
  std::printf("state: %llu bytes with 3000 files; one fsync: at most %llu bytes (10 files), %llu (3000)\n",
              static_cast<unsigned long long>(large.snapshot),
              static_cast<unsigned long long>(small.most_per_fsync),
              static_cast<unsigned long long>(large.most_per_fsync));
}

}  // namespace
}  // namespace sealroot::fusefs::testing
