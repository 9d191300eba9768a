// The key holder's pin on a persistent upper: the owner sealed into its state, a fresh upper
// expected, each commit reported before it replaces the current state, and the reported state
// adopted after a crash between the report and the replacement.
#include <sys/stat.h>

#include <filesystem>

#include "base/file.h"
#include "tests/fusefs-upper/posix_suite.h"

namespace sealroot::fusefs::testing {
namespace {

namespace fsys = std::filesystem;

class UpperPinTest : public UpperTest {
 protected:
  void SetUp() override {
    UpperTest::SetUp();
    root_ = SealDefaultLower();
  }

  UpperOptions Options(std::string owner) {
    UpperOptions options;
    options.dir = upper_;
    options.owner = std::move(owner);
    return options;
  }

  // Writes `content` to `rel` and fsyncs it (a commit); returns fsync's result (0 or errno).
  int WriteAndSync(const std::string& rel, const std::string& content) {
    int fd = open(P(rel).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    int result = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return result;
  }

  Result<std::unique_ptr<UnionFs>> OpenUpper(const UpperOptions& options) {
    SR_ASSIGN_OR_RETURN(auto lower, OpenTree(root_));
    return UnionFs::Open(std::move(lower), key_, root_, options);
  }

  // The root the upper's stored state has (its snapshot chained through its journal).
  Hash32 StateHash() {
    auto root = StoredUpperRoot(upper_);
    EXPECT_TRUE(root.ok()) << root.status().ToString();
    return root.ok() ? *root : Hash32{};
  }

  RootHash root_{};
};

TEST_F(UpperPinTest, AStateOfAnotherOwnerIsRefused) {
  ASSERT_TRUE(Mount(root_, Options("container-a")).ok());
  ASSERT_EQ(WriteAndSync("note", "a's"), 0);
  Unmount();
  auto other = OpenUpper(Options("container-b"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("another owner"), std::string::npos) << other.status().ToString();
  EXPECT_TRUE(OpenUpper(Options("container-a")).ok());
}

TEST_F(UpperPinTest, AFreshUpperExpectedRefusesAnyState) {
  ASSERT_TRUE(Mount(root_, Options("c")).ok());
  ASSERT_EQ(WriteAndSync("note", "x"), 0);
  Unmount();
  UpperOptions fresh = Options("c");
  fresh.expect_fresh = true;
  auto refused = OpenUpper(fresh);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kDataLoss);
  EXPECT_NE(refused.status().message().find("fresh upper was expected"), std::string::npos);
}

TEST_F(UpperPinTest, EachCommitIsReportedWithTheStateItReplaces) {
  std::vector<std::pair<std::optional<Hash32>, Hash32>> reports;
  UpperOptions options = Options("c");
  options.on_commit = [&](const std::optional<Hash32>& previous, const Hash32& root) {
    reports.emplace_back(previous, root);
    return OkStatus();
  };
  ASSERT_TRUE(Mount(root_, options).ok());
  ASSERT_EQ(WriteAndSync("note", "one"), 0);
  ASSERT_EQ(WriteAndSync("note", "two"), 0);
  const Hash32 last = Unmount();
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_FALSE(reports[0].first.has_value());
  EXPECT_EQ(reports[1].first, reports[0].second);
  EXPECT_EQ(reports[2].first, reports[1].second);
  EXPECT_EQ(reports[2].second, last);
  EXPECT_EQ(StateHash(), last);
}

TEST_F(UpperPinTest, ARefusedReportFailsTheCommitAndKeepsThePreviousState) {
  bool refuse = false;
  UpperOptions options = Options("c");
  options.on_commit = [&](const std::optional<Hash32>&, const Hash32&) {
    return refuse ? FailedPrecondition("the key holder is gone") : OkStatus();
  };
  ASSERT_TRUE(Mount(root_, options).ok());
  ASSERT_EQ(WriteAndSync("note", "kept"), 0);
  const Hash32 kept = StateHash();
  refuse = true;
  EXPECT_EQ(WriteAndSync("other", "not recorded"), EIO);
  EXPECT_EQ(StateHash(), kept);
  EXPECT_FALSE(fsys::exists(upper_ + "/state.tmp"));
  refuse = false;
  Unmount();  // while the callback's captures live
}

TEST_F(UpperPinTest, AfterACrashBetweenReportAndReplacementTheReportedStateWins) {
  // The report reaches the key holder, then the process "dies": the new state is left in
  // state.tmp and the old one is still current. (Every commit a snapshot here.)
  std::optional<Hash32> reported;
  std::string pending;
  UpperOptions options = Options("c");
  options.compact_after = 0;
  options.on_commit = [&](const std::optional<Hash32>& previous, const Hash32& root) {
    if (!previous) return OkStatus();
    reported = root;
    pending = sealroot::ReadFile(upper_ + "/state.tmp").value();
    return Unavailable("crash");
  };
  ASSERT_TRUE(Mount(root_, options).ok());
  ASSERT_EQ(WriteAndSync("note", "first"), 0);
  const Hash32 first = StateHash();
  EXPECT_EQ(WriteAndSync("note", "second"), EIO);
  ASSERT_TRUE(reported.has_value());
  umount2(mnt_.c_str(), MNT_DETACH);
  server_.join();
  mount_.reset();
  fs_.reset();
  ASSERT_TRUE(WriteFileAtomic(upper_ + "/state.tmp", pending, 0600).ok());
  ASSERT_EQ(StateHash(), first);

  UpperOptions pinned = Options("c");
  pinned.expected_state = *reported;
  ASSERT_TRUE(Mount(root_, pinned).ok());
  EXPECT_EQ(StateHash(), *reported);
  EXPECT_EQ(ReadFile(P("note")), "second");
}

// A journal record is durable before its report: a crash after the report leaves it in place
// (the reported root opens it), a crash before it leaves a record the key holder never saw
// (the previous root opens, and the record goes).
TEST_F(UpperPinTest, AJournalRecordCountsOnceReported) {
  std::optional<Hash32> reported;
  std::optional<Hash32> before;
  std::string journal;
  UpperOptions options = Options("c");
  options.on_commit = [&](const std::optional<Hash32>& previous, const Hash32& root) {
    if (!previous) return OkStatus();
    before = previous;
    reported = root;
    journal = sealroot::ReadFile(upper_ + "/journal").value();
    return Unavailable("crash");
  };
  ASSERT_TRUE(Mount(root_, options).ok());
  ASSERT_EQ(WriteAndSync("note", "first"), 0);  // a snapshot
  const Hash32 first = StateHash();
  EXPECT_EQ(WriteAndSync("note", "second"), EIO);  // a record, refused: cut from the journal
  ASSERT_TRUE(reported.has_value());
  EXPECT_EQ(*before, first);
  EXPECT_EQ(StateHash(), first);
  umount2(mnt_.c_str(), MNT_DETACH);
  server_.join();
  mount_.reset();
  fs_.reset();
  ASSERT_TRUE(WriteFileAtomic(upper_ + "/journal", journal, 0600).ok());  // as left by the crash
  ASSERT_EQ(StateHash(), *reported);

  UpperOptions unreported = Options("c");
  unreported.expected_state = first;
  {
    auto fs = OpenUpper(unreported);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  }
  EXPECT_EQ(StateHash(), first);  // the unreported record went
  ASSERT_TRUE(WriteFileAtomic(upper_ + "/journal", journal, 0600).ok());
  UpperOptions pinned = Options("c");
  pinned.expected_state = *reported;
  ASSERT_TRUE(Mount(root_, pinned).ok());
  EXPECT_EQ(ReadFile(P("note")), "second");
  EXPECT_EQ(StateHash(), *reported);
}

}  // namespace
}  // namespace sealroot::fusefs::testing
