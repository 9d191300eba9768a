// Attacks on the upper's stored bytes, while mounted and between mounts: each must end in EIO
// or a refused mount, never in wrong data.
#include <dirent.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/fusefs-upper/posix_suite.h"

namespace sealroot::fusefs::testing {
namespace {

namespace fsys = std::filesystem;

class UpperTamperTest : public UpperTest {
 protected:
  void SetUp() override {
    UpperTest::SetUp();
    root_ = SealDefaultLower();
    ASSERT_TRUE(MountPersistent(root_).ok());
  }

  // Writes a file through the mount and makes it durable; returns its host data file.
  std::string WriteDurable(const std::string& rel, const std::string& content) {
    auto before = DataFiles();
    int fd = open(P(rel).c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    EXPECT_EQ(fsync(fd), 0);
    close(fd);
    for (const std::string& f : DataFiles()) {
      if (!before.contains(f)) return f;
    }
    return *before.begin();  // rewritten in place
  }

  std::set<std::string> DataFiles() const {
    std::set<std::string> files;
    for (const auto& e : fsys::directory_iterator(upper_ + "/data")) files.insert(e.path().string());
    return files;
  }

  // Reads through the mount with the page cache dropped first: returns content or "errno N".
  std::string ReadUncached(const std::string& rel) {
    int fd = open(P(rel).c_str(), O_RDONLY);
    if (fd < 0) return "errno " + std::to_string(errno);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return ReadFile(P(rel));
  }

  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void Put(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
  }

  Result<std::unique_ptr<UnionFs>> OpenUpper(UpperOptions options, std::shared_ptr<StoreKey> key = nullptr) {
    SR_ASSIGN_OR_RETURN(auto lower, OpenTree(root_));
    options.dir = upper_;
    return UnionFs::Open(std::move(lower), key ? key : key_, root_, options);
  }

  RootHash root_{};
};

const std::string kErrIo = "errno " + std::to_string(EIO);

TEST_F(UpperTamperTest, FlippedByteInAnUpperBlockIsEio) {
  const std::string host = WriteDurable("f", Pattern(200000, 1));
  FlipByte(host, 70000);
  EXPECT_EQ(ReadUncached("f"), kErrIo);
}

TEST_F(UpperTamperTest, BlockReplayedFromAnEarlierWriteIsEio) {
  const std::string host = WriteDurable("f", std::string(100000, 'A'));
  const std::string old_bytes = Slurp(host);
  int fd = open(P("f").c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(fd, "BBBB", 4, 10), 4);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  Put(host, old_bytes);  // the host rolls the file back to its previous, validly sealed bytes
  EXPECT_EQ(ReadUncached("f"), kErrIo);
}

TEST_F(UpperTamperTest, SwappedDataFilesOfTwoFilesAreEio) {
  const std::string a = WriteDurable("a", std::string(70000, 'a'));
  const std::string b = WriteDurable("b", std::string(70000, 'b'));
  ASSERT_NE(a, b);
  const std::string da = Slurp(a), db = Slurp(b);
  Put(a, db);
  Put(b, da);
  EXPECT_EQ(ReadUncached("a"), kErrIo);
  EXPECT_EQ(ReadUncached("b"), kErrIo);
}

TEST_F(UpperTamperTest, TruncatedHostFileIsEio) {
  const std::string host = WriteDurable("f", Pattern(150000, 2));
  ASSERT_EQ(truncate(host.c_str(), 100000), 0);
  EXPECT_EQ(ReadUncached("f"), kErrIo);
}

TEST_F(UpperTamperTest, ZeroedBlockIsNotAHole) {
  const std::string host = WriteDurable("f", Pattern(65536, 3));
  Put(host, std::string(65536, '\0'));
  EXPECT_EQ(ReadUncached("f"), kErrIo);
}

TEST_F(UpperTamperTest, TamperedBlockBetweenMountsIsEio) {
  const std::string host = WriteDurable("f", Pattern(100000, 4));
  Unmount();
  FlipByte(host, 5);
  ASSERT_TRUE(MountPersistent(root_).ok());
  EXPECT_EQ(ReadUncached("f"), kErrIo);
}

TEST_F(UpperTamperTest, TamperedStateRefusesTheMount) {
  WriteDurable("f", "x");
  Unmount();
  FlipByte(upper_ + "/state", 60);
  auto fs = OpenUpper({});
  ASSERT_FALSE(fs.ok());
  EXPECT_EQ(fs.status().code(), Code::kDataLoss);
}

TEST_F(UpperTamperTest, StateUnderAnotherKeyRefusesTheMount) {
  WriteDurable("f", "x");
  Unmount();
  auto other = StoreKey::Create(SecretBytes::Random(32));
  ASSERT_TRUE(other.ok());
  auto fs = OpenUpper({}, std::make_shared<StoreKey>(std::move(other).value()));
  ASSERT_FALSE(fs.ok());
  EXPECT_EQ(fs.status().code(), Code::kDataLoss);
}

TEST_F(UpperTamperTest, RolledBackStateIsRefusedWhenTheRootIsPinned) {
  WriteDurable("f", "old");
  const Hash32 old_root = Unmount();
  const std::string old_state = Slurp(upper_ + "/state");
  const std::string old_journal = Slurp(upper_ + "/journal");
  ASSERT_TRUE(MountPersistent(root_).ok());
  WriteDurable("f", "new");
  const Hash32 new_root = Unmount();
  ASSERT_NE(old_root, new_root);
  Put(upper_ + "/state", old_state);
  Put(upper_ + "/journal", old_journal);
  auto refused = OpenUpper({.dir = "", .expected_state = new_root});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kDataLoss);
  EXPECT_NE(refused.status().message().find("not the expected one"), std::string::npos);
  // The pin is what decides: the old root pinned opens the old state.
  auto old = OpenUpper({.dir = "", .expected_state = old_root});
  EXPECT_TRUE(old.ok()) << old.status().ToString();
}

TEST_F(UpperTamperTest, DeletedStateIsRefusedWhenTheRootIsPinned) {
  WriteDurable("f", "x");
  const Hash32 pinned = Unmount();
  ASSERT_EQ(unlink((upper_ + "/state").c_str()), 0);
  auto fs = OpenUpper({.dir = "", .expected_state = pinned});
  ASSERT_FALSE(fs.ok());
  EXPECT_EQ(fs.status().code(), Code::kDataLoss);
}

TEST_F(UpperTamperTest, DeletedDataFileRefusesTheMount) {
  const std::string host = WriteDurable("f", "x");
  Unmount();
  ASSERT_EQ(unlink(host.c_str()), 0);
  auto fs = OpenUpper({});
  ASSERT_FALSE(fs.ok());
  EXPECT_NE(fs.status().message().find("damaged"), std::string::npos) << fs.status().ToString();
}

// The host file of an upper file shows its size only to the 64 KiB block: a 28-byte file and a
// 60000-byte file leave host files of the same length, and the padding is not zeros (zeros
// would mark where the ciphertext ends).
TEST_F(UpperTamperTest, SmallFilesLeavePaddedHostFiles) {
  const std::string tiny = WriteDurable("tiny", std::string(28, 't'));
  const std::string mid = WriteDurable("mid", std::string(60000, 'm'));
  const std::string two = WriteDurable("two", std::string(65537, 'w'));
  EXPECT_EQ(fsys::file_size(tiny), 65536u);
  EXPECT_EQ(fsys::file_size(mid), 65536u);
  EXPECT_EQ(fsys::file_size(two), 131072u);
  const std::string bytes = Slurp(tiny);
  EXPECT_NE(bytes.substr(28).find_first_not_of('\0'), std::string::npos);
  // Shrinking keeps whole blocks; the content stays exact through the mount.
  ASSERT_EQ(truncate(P("two").c_str(), 70000), 0);
  int fd = open(P("two").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  EXPECT_EQ(fsys::file_size(two), 131072u);
  ASSERT_EQ(truncate(P("two").c_str(), 100), 0);
  fd = open(P("two").c_str(), O_RDWR);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  EXPECT_EQ(fsys::file_size(two), 65536u);
  EXPECT_EQ(ReadUncached("tiny"), std::string(28, 't'));
  EXPECT_EQ(ReadUncached("two"), std::string(100, 'w'));
  Unmount();
  ASSERT_TRUE(MountPersistent(root_).ok());
  EXPECT_EQ(ReadUncached("mid"), std::string(60000, 'm'));
  EXPECT_EQ(ReadUncached("two"), std::string(100, 'w'));
}

TEST_F(UpperTamperTest, UpperHoldsNoPlaintextNamesOrContent) {
  const std::string secret = "TOP-SECRET-CONTENT-0123456789";
  std::string content;
  for (int i = 0; i < 1000; ++i) content += secret;
  WriteDurable("secret-file-name", content);
  ASSERT_EQ(setxattr(P("secret-file-name").c_str(), "user.secret-xattr", "v", 1, 0), 0);
  Unmount();
  for (const auto& e : fsys::recursive_directory_iterator(upper_)) {
    if (!e.is_regular_file()) continue;
    const std::string bytes = Slurp(e.path().string());
    EXPECT_EQ(bytes.find("TOP-SECRET"), std::string::npos) << e.path();
    EXPECT_EQ(bytes.find("secret-file-name"), std::string::npos) << e.path();
    EXPECT_EQ(bytes.find("secret-xattr"), std::string::npos) << e.path();
  }
}

// The journal: records appended by each commit after the snapshot, each bound to the root before
// it. Three commits after the snapshot leave three records.
class UpperJournalTamperTest : public UpperTamperTest {
 protected:
  void SetUp() override {
    UpperTamperTest::SetUp();
    WriteDurable("f", "one");    // the first commit: a snapshot
    WriteDurable("f", "two");    // record 1
    WriteDurable("g", "three");  // record 2
    pinned_ = Unmount();         // record 3
    journal_ = Slurp(upper_ + "/journal");
    records_ = Records(journal_);
    ASSERT_EQ(records_.size(), 3u);
  }

  // Each record's bytes (after the 40-byte header: a 4-byte length, then that many bytes).
  static std::vector<std::string> Records(const std::string& journal) {
    std::vector<std::string> out;
    std::size_t pos = 40;
    while (pos + 4 <= journal.size()) {
      std::size_t n = 0;
      for (int i = 0; i < 4; ++i) n |= std::size_t{static_cast<unsigned char>(journal[pos + i])} << (8 * i);
      out.push_back(journal.substr(pos, 4 + n));
      pos += 4 + n;
    }
    return out;
  }
  void PutJournal(const std::vector<std::string>& records) {
    std::string j = journal_.substr(0, 40);
    for (const std::string& r : records) j += r;
    Put(upper_ + "/journal", j);
  }
  void ExpectRefused(UpperOptions options, const std::string& why) {
    auto fs = OpenUpper(options);
    ASSERT_FALSE(fs.ok());
    EXPECT_EQ(fs.status().code(), Code::kDataLoss);
    EXPECT_NE(fs.status().message().find(why), std::string::npos) << fs.status().ToString();
  }
  std::string ReadAfterMount(const UpperOptions& options, const std::string& rel) {
    EXPECT_TRUE(Mount(root_, options).ok());
    std::string content = ReadFile(P(rel));
    Unmount();
    return content;
  }

  Hash32 pinned_{};
  std::string journal_;
  std::vector<std::string> records_;
};

TEST_F(UpperJournalTamperTest, UntouchedJournalOpensAtThePinnedRoot) {
  auto root = StoredUpperRoot(upper_);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(*root, pinned_);
  EXPECT_EQ(ReadAfterMount({.dir = upper_, .expected_state = pinned_}, "g"), "three");
}

TEST_F(UpperJournalTamperTest, TruncatedJournalIsRefusedWhenTheRootIsPinned) {
  PutJournal({records_[0], records_[1]});  // a whole record dropped
  ExpectRefused({.expected_state = pinned_}, "not the expected one");
  PutJournal({records_[0], records_[1], records_[2].substr(0, records_[2].size() / 2)});  // cut inside one
  ExpectRefused({.expected_state = pinned_}, "not the expected one");
  Put(upper_ + "/journal", "");  // emptied
  ExpectRefused({.expected_state = pinned_}, "not the expected one");
}

TEST_F(UpperJournalTamperTest, ReorderedJournalRecordsRefuseTheMount) {
  PutJournal({records_[1], records_[0], records_[2]});
  ExpectRefused({}, "journal fails authentication at record 1");
  ExpectRefused({.expected_state = pinned_}, "not the expected one");
}

TEST_F(UpperJournalTamperTest, ReplayedJournalRecordRefusesTheMount) {
  PutJournal({records_[0], records_[1], records_[1]});
  ExpectRefused({}, "journal fails authentication at record 3");
  ExpectRefused({.expected_state = pinned_}, "not the expected one");
  // Replayed after the last: without a pin, refused; with it, a tail that was never reported.
  PutJournal({records_[0], records_[1], records_[2], records_[0]});
  ExpectRefused({}, "journal fails authentication at record 4");
  {
    auto fs = OpenUpper({.expected_state = pinned_});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  }
  EXPECT_EQ(Records(Slurp(upper_ + "/journal")), records_);  // the tail was cut
  EXPECT_EQ(ReadAfterMount({.dir = upper_, .expected_state = pinned_}, "g"), "three");
}

TEST_F(UpperJournalTamperTest, FlippedByteInAJournalRecordRefusesTheMount) {
  FlipByte(upper_ + "/journal", 40 + records_[0].size() + 50);
  ExpectRefused({}, "journal fails authentication at record 2");
}

TEST_F(UpperJournalTamperTest, JournalOfAnotherSnapshotIsNotApplied) {
  // The journal names the snapshot it extends: over another snapshot it is ignored, and the
  // pin refuses the older state this leaves.
  FlipByte(upper_ + "/journal", 20);
  ExpectRefused({.expected_state = pinned_}, "not the expected one");
}

// A crash in the middle of an append leaves a torn record: without a pin the mount opens the
// state before it (the record was never reported); with the pin of the last report it opens.
TEST_F(UpperJournalTamperTest, TornLastRecordIsACrashNotATamper) {
  PutJournal({records_[0], records_[1], records_[2].substr(0, 30)});
  EXPECT_EQ(ReadAfterMount({.dir = upper_, .expected_state = std::nullopt}, "g"), "three");
  EXPECT_EQ(Records(Slurp(upper_ + "/journal")).size(), 3u);  // committed again at unmount
}

}  // namespace
}  // namespace sealroot::fusefs::testing
