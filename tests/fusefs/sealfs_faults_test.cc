// The sealed store and the writable upper on a failing disk (base/env.h,
// tests/support/fault_env.h). For each fault — ENOSPC or EIO on a write, a short write, a failing
// fsync/syncfs, a failing open, rename or mkdir — sealing a layer fails with a clear error,
// leaves no layer, object or staged file of it behind, loses nothing committed before (an
// earlier image still reads back), and the same layer seals once the disk is fine again; and
// creating a new store or a new upper fails cleanly and succeeds on the next attempt.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/file.h"
#include "fusefs/upper.h"
#include "tests/fusefs/sealfs_fixture.h"
#include "tests/support/fault_env.h"

namespace sealroot::fusefs::testing {
namespace {

// The content of `path`, or the error's text (so a failure shows in the comparison).
std::string ContentOf(Filesystem& fs, const std::string& path) {
  Result<std::string> content = ReadAll(fs, path);
  return content.ok() ? *content : content.status().ToString();
}

using Op = sealroot::testing::FaultEnv::Op;

struct Fault {
  const char* name;
  Op op;
  int nth;  // the first failing call of `op` while the layer is sealed
  int err;
};

const Fault kFaults[] = {
    {"enospc_on_first_write", Op::kWrite, 1, ENOSPC},
    {"enospc_on_a_later_write", Op::kWrite, 3, ENOSPC},
    {"eio_on_write", Op::kWrite, 2, EIO},
    {"eio_on_a_small_objects_write", Op::kWrite, 5, EIO},  // written at its name, not staged
    {"eio_on_sync", Op::kFsync, 1, EIO},
    {"enospc_on_open", Op::kOpen, 2, ENOSPC},
    {"eio_on_rename", Op::kRename, 1, EIO},
    {"eio_on_a_later_rename", Op::kRename, 3, EIO},
    {"enospc_on_mkdir", Op::kMkdir, 1, ENOSPC},
};

std::size_t CountFiles(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

class SealfsFaultsTest : public SealfsTest, public ::testing::WithParamInterface<Fault> {
 protected:
  void SetUp() override {
    SealfsTest::SetUp();
    auto store = Store::Open(store_dir_, false, StoreLock::kShared, env_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  // Several objects, each larger than one write, so that a fault can land in the middle.
  static std::vector<Item> NewLayer() {
    return {Dir("d"), File("d/big", Pattern(3 << 20, 7)), File("d/small", "small"),
            File("e", Pattern(70000, 8))};
  }

  sealroot::testing::FaultEnv env_;
};

TEST_P(SealfsFaultsTest, AFailedSealLeavesNothingAndLosesNothing) {
  const std::string old_content = Pattern(200000, 1);
  RootHash old_root = SealSingle("old", {File("f", old_content)});
  const std::size_t objects_before = CountFiles(store_dir_ + "/objects");

  env_.FailFrom(GetParam().op, GetParam().nth, GetParam().err);
  Status failed = SealLayer(DiffIdOf("new"), NewLayer());
  ASSERT_FALSE(failed.ok()) << "the fault was never hit";
  EXPECT_EQ(failed.code(), ErrnoStatus("", GetParam().err).code()) << failed.ToString();
  EXPECT_NE(failed.message().find(std::strerror(GetParam().err)), std::string::npos) << failed.ToString();
  env_.Clear();

  EXPECT_FALSE(store_->HasLayer(*key_, DiffIdOf("new")));
  EXPECT_EQ(CountFiles(store_dir_ + "/objects"), objects_before) << "objects of the failed layer were left";
  EXPECT_EQ(CountFiles(store_dir_ + "/staging"), 0u) << "staged files were left";
  auto tree = OpenTree(old_root);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(ContentOf(**tree, "f"), old_content);

  ASSERT_TRUE(SealLayer(DiffIdOf("new"), NewLayer()).ok());
  auto new_root = SealImage({DiffIdOf("old"), DiffIdOf("new")});
  ASSERT_TRUE(new_root.ok()) << new_root.status().ToString();
  auto new_tree = OpenTree(*new_root);
  ASSERT_TRUE(new_tree.ok()) << new_tree.status().ToString();
  EXPECT_EQ(ContentOf(**new_tree, "d/big"), Pattern(3 << 20, 7));
  EXPECT_EQ(ContentOf(**new_tree, "f"), old_content);
}

INSTANTIATE_TEST_SUITE_P(Faults, SealfsFaultsTest, ::testing::ValuesIn(kFaults),
                         [](const ::testing::TestParamInfo<Fault>& param_info) {
                           return std::string(param_info.param.name);
                         });

class SealfsShortWriteTest : public SealfsFaultsTest {};

TEST_F(SealfsShortWriteTest, ShortWritesAreCompleted) {
  env_.ShortWrite(1);
  ASSERT_TRUE(SealLayer(DiffIdOf("new"), NewLayer()).ok());
  EXPECT_EQ(env_.short_writes(), 1);
  auto root = SealImage({DiffIdOf("new")});
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  auto tree = OpenTree(*root);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(ContentOf(**tree, "d/big"), Pattern(3 << 20, 7));
}

// Creating a new store or a new upper on a failing disk: each fault is a clear error naming
// the errno, leaves nothing that later passes for a store or an upper (no version file, or a
// whole one; no temporary), and the same creation succeeds once the disk is fine again.
struct CreationFault {
  const char* name;
  Op op;
  int nth;  // the first failing call of `op` during the creation
  int err;
};

// A directory's entries.
std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) out.insert(e.path().filename());
  return out;
}

bool HasTemporary(const std::string& dir) {
  for (const std::string& name : Entries(dir)) {
    if (name.find(".tmp-") != std::string::npos) return true;
  }
  return false;
}

// The calls a new store makes: mkdir (the directory, then its layout: 5 + 256 directories), open
// (the lock, the version file's temporary, the directory to sync), fsync (a syncfs of the
// layout, the version file), write and rename (the version file).
const CreationFault kStoreFaults[] = {
    {"enospc_creating_the_directory", Op::kMkdir, 1, ENOSPC},
    {"enospc_on_a_layout_mkdir", Op::kMkdir, 100, ENOSPC},
    {"eio_opening_the_lock", Op::kOpen, 1, EIO},
    {"enospc_opening_the_version_file", Op::kOpen, 2, ENOSPC},
    {"enospc_writing_the_version_file", Op::kWrite, 1, ENOSPC},
    {"eio_writing_the_version_file", Op::kWrite, 1, EIO},
    {"eio_syncing_the_layout", Op::kFsync, 1, EIO},
    {"eio_syncing_the_version_file", Op::kFsync, 2, EIO},
    {"eio_renaming_the_version_file", Op::kRename, 1, EIO},
};

class StoreCreationFaultsTest : public SealfsTest, public ::testing::WithParamInterface<CreationFault> {
 protected:
  sealroot::testing::FaultEnv env_;
};

TEST_P(StoreCreationFaultsTest, AFailedCreationLeavesNoStoreAndTheNextOneSucceeds) {
  const std::string dir = tmp_ / "new-store";
  env_.FailFrom(GetParam().op, GetParam().nth, GetParam().err);
  auto failed = Store::Open(dir, true, StoreLock::kShared, env_);
  ASSERT_FALSE(failed.ok()) << "the fault was never hit";
  EXPECT_EQ(failed.status().code(), ErrnoStatus("", GetParam().err).code()) << failed.status().ToString();
  EXPECT_NE(failed.status().message().find(std::strerror(GetParam().err)), std::string::npos)
      << failed.status().ToString();
  env_.Clear();

  EXPECT_FALSE(std::filesystem::exists(dir + "/sealfs-store"));
  EXPECT_FALSE(HasTemporary(dir));
  auto reader = Store::Open(dir, false, StoreLock::kNone);
  EXPECT_FALSE(reader.ok()) << "a store whose creation failed must not open as one";

  auto store = Store::Open(dir, true, StoreLock::kShared, env_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  store_ = std::move(store).value();
  store_dir_ = dir;
  ASSERT_TRUE(store_->CheckKey(*key_, true).ok());
  RootHash root = SealSingle("first", {File("f", Pattern(100000, 3))});
  auto tree = OpenTree(root);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(ContentOf(**tree, "f"), Pattern(100000, 3));
}

TEST_F(StoreCreationFaultsTest, ShortWritesAreCompleted) {
  const std::string dir = tmp_ / "new-store";
  env_.ShortWrite(1);
  auto store = Store::Open(dir, true, StoreLock::kShared, env_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(env_.short_writes(), 1);
  EXPECT_EQ(ReadFile(dir + "/sealfs-store").value(), kStoreVersion);
}

INSTANTIATE_TEST_SUITE_P(Faults, StoreCreationFaultsTest, ::testing::ValuesIn(kStoreFaults),
                         [](const ::testing::TestParamInfo<CreationFault>& param_info) {
                           return std::string(param_info.param.name);
                         });

// The calls a new upper makes: mkdir (the directory, data/), open (the version file's temporary,
// the directory to sync, the lock, the journal), write and rename (the version file), fsync (the
// version file, the directory, the directory again once the journal exists).
const CreationFault kUpperFaults[] = {
    {"enospc_creating_the_directory", Op::kMkdir, 1, ENOSPC},
    {"enospc_creating_data", Op::kMkdir, 2, ENOSPC},
    {"enospc_opening_the_version_file", Op::kOpen, 1, ENOSPC},
    {"enospc_writing_the_version_file", Op::kWrite, 1, ENOSPC},
    {"eio_writing_the_version_file", Op::kWrite, 1, EIO},
    {"eio_syncing_the_version_file", Op::kFsync, 1, EIO},
    {"eio_renaming_the_version_file", Op::kRename, 1, EIO},
    {"eio_opening_the_lock", Op::kOpen, 3, EIO},
    {"enospc_creating_the_journal", Op::kOpen, 4, ENOSPC},
    {"eio_syncing_the_journal_entry", Op::kFsync, 3, EIO},
};

class UpperCreationFaultsTest : public SealfsTest {
 protected:
  void SetUp() override {
    SealfsTest::SetUp();
    lower_root_ = SealSingle("lower", {File("old", "lower content\n")});
  }
  Result<std::unique_ptr<UnionFs>> OpenUpper(UpperOptions options) {
    SR_ASSIGN_OR_RETURN(auto lower, OpenTree(lower_root_));
    options.dir = upper_dir_;
    return UnionFs::Open(std::move(lower), key_, lower_root_, options);
  }
  // Commits `fs`, closes it and opens the upper again at the committed state.
  Result<std::unique_ptr<UnionFs>> CommitAndReopen(std::unique_ptr<UnionFs>& fs) {
    SR_ASSIGN_OR_RETURN(auto state, fs->Commit());
    fs.reset();
    return OpenUpper({.expected_state = state});
  }

  const std::string upper_dir_ = tmp_ / "upper";
  RootHash lower_root_{};
  sealroot::testing::FaultEnv env_;
};

class UpperCreationFaultsParamTest : public UpperCreationFaultsTest,
                                     public ::testing::WithParamInterface<CreationFault> {};

TEST_P(UpperCreationFaultsParamTest, AFailedCreationLeavesNoUpperAndTheNextOneSucceeds) {
  env_.FailFrom(GetParam().op, GetParam().nth, GetParam().err);
  auto failed = OpenUpper({.expect_fresh = true, .env = &env_});
  ASSERT_FALSE(failed.ok()) << "the fault was never hit";
  EXPECT_EQ(failed.status().code(), ErrnoStatus("", GetParam().err).code()) << failed.status().ToString();
  EXPECT_NE(failed.status().message().find(std::strerror(GetParam().err)), std::string::npos)
      << failed.status().ToString();
  env_.Clear();

  // No version file, or a whole one (a failure after it leaves a valid, empty upper).
  if (std::filesystem::exists(upper_dir_ + "/sealfs-upper")) {
    EXPECT_EQ(ReadFile(upper_dir_ + "/sealfs-upper").value(), "sealfs-upper 2\n");
  }
  EXPECT_FALSE(HasTemporary(upper_dir_));
  EXPECT_FALSE(std::filesystem::exists(upper_dir_ + "/state"));

  auto fs = OpenUpper({.expect_fresh = true, .env = &env_});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  auto created = (*fs)->Create(Caller{}, kRootIno, "new", 0644, O_RDWR);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string content = Pattern(70000, 5);
  ASSERT_TRUE((*fs)->Write(created->handle, 0, AsBytes(content)).ok());
  (*fs)->Release(created->handle);
  auto reopened = CommitAndReopen(*fs);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(ContentOf(**reopened, "new"), content);
  EXPECT_EQ(ContentOf(**reopened, "old"), "lower content\n");
}

TEST_F(UpperCreationFaultsTest, ShortWritesAreCompleted) {
  env_.ShortWrite(1);
  auto fs = OpenUpper({.expect_fresh = true, .env = &env_});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  EXPECT_EQ(env_.short_writes(), 1);
  EXPECT_EQ(ReadFile(upper_dir_ + "/sealfs-upper").value(), "sealfs-upper 2\n");
}

TEST_F(UpperCreationFaultsTest, AnUpperWithDataButNoVersionIsNotTakenForAnUnfinishedOne) {
  ASSERT_EQ(::mkdir(upper_dir_.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((upper_dir_ + "/data").c_str(), 0700), 0);
  std::ofstream(upper_dir_ + "/data/0000000000000001") << "sealed bytes of some state";
  auto fs = OpenUpper({.expect_fresh = true, .env = &env_});
  ASSERT_FALSE(fs.ok());
  EXPECT_EQ(fs.status().code(), Code::kFailedPrecondition) << fs.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Faults, UpperCreationFaultsParamTest, ::testing::ValuesIn(kUpperFaults),
                         [](const ::testing::TestParamInfo<CreationFault>& param_info) {
                           return std::string(param_info.param.name);
                         });

// A commit of a working upper (a journal record, or with compact_after = 0 a whole new state)
// that meets a failing disk.
struct CommitFault {
  const char* name;
  bool snapshot;
  Op op;
  int err;
};

const CommitFault kCommitFaults[] = {
    {"journal_enospc_appending", false, Op::kWrite, ENOSPC},
    {"journal_eio_on_its_first_fsync", false, Op::kFsync, EIO},
    {"snapshot_enospc_opening_the_state", true, Op::kOpen, ENOSPC},
    {"snapshot_enospc_writing_the_state", true, Op::kWrite, ENOSPC},
    {"snapshot_eio_syncing", true, Op::kFsync, EIO},
    {"snapshot_eio_publishing_the_state", true, Op::kRename, EIO},
};

class UpperCommitFaultsTest : public UpperCreationFaultsTest,
                              public ::testing::WithParamInterface<CommitFault> {};

TEST_P(UpperCommitFaultsTest, AFailedCommitLosesNothingCommittedAndTheNextOneSucceeds) {
  const UpperOptions options{.compact_after = GetParam().snapshot ? 0u : 1u << 20, .env = &env_};
  UpperOptions fresh = options;
  fresh.expect_fresh = true;
  auto fs = OpenUpper(fresh);
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  auto write = [&](const std::string& name, const std::string& content) {
    auto created = (*fs)->Create(Caller{}, kRootIno, name, 0644, O_RDWR);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    ASSERT_TRUE((*fs)->Write(created->handle, 0, AsBytes(content)).ok());
    (*fs)->Release(created->handle);
  };
  const std::string first = Pattern(70000, 3), second = Pattern(90000, 4);
  write("first", first);
  auto committed = (*fs)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();

  write("second", second);
  env_.FailFrom(GetParam().op, 1, GetParam().err);
  auto failed = (*fs)->Commit();
  ASSERT_FALSE(failed.ok()) << "the fault was never hit";
  EXPECT_NE(failed.status().message().find(std::strerror(GetParam().err)), std::string::npos)
      << failed.status().ToString();
  env_.Clear();
  {
    // What was committed is still what the disk holds: a copy of the upper opens at that state.
    const std::string copy = tmp_ / "upper-copy";
    std::filesystem::copy(upper_dir_, copy, std::filesystem::copy_options::recursive);
    UpperOptions at_committed = options;
    at_committed.dir = copy;
    at_committed.expected_state = *committed;
    auto lower = OpenTree(lower_root_);
    ASSERT_TRUE(lower.ok());
    auto before = UnionFs::Open(std::move(*lower), key_, lower_root_, at_committed);
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    EXPECT_EQ(ContentOf(**before, "first"), first);
    EXPECT_EQ(ReadAll(**before, "second").status().code(), Code::kNotFound);
  }

  auto retried = (*fs)->Commit();
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_NE(*retried, *committed);
  fs->reset();
  UpperOptions again = options;
  again.expected_state = *retried;
  auto reopened = OpenUpper(again);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(ContentOf(**reopened, "first"), first);
  EXPECT_EQ(ContentOf(**reopened, "second"), second);
}

TEST_F(UpperCreationFaultsTest, AFailedDataWriteReportsTheErrnoAndTheFileKeepsItsContent) {
  auto fs = OpenUpper({.expect_fresh = true, .env = &env_});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  auto created = (*fs)->Create(Caller{}, kRootIno, "f", 0644, O_RDWR);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string before = Pattern(70000, 6), after = Pattern(70000, 7);
  ASSERT_TRUE((*fs)->Write(created->handle, 0, AsBytes(before)).ok());

  env_.FailFrom(Op::kWrite, 1, ENOSPC);
  auto failed = (*fs)->Write(created->handle, 0, AsBytes(after));
  ASSERT_FALSE(failed.ok()) << "the fault was never hit";
  EXPECT_EQ(StatusToErrno(failed.status()), ENOSPC) << failed.status().ToString();
  env_.Clear();
  EXPECT_EQ(ContentOf(**fs, "f"), before);

  ASSERT_TRUE((*fs)->Write(created->handle, 0, AsBytes(after)).ok());
  (*fs)->Release(created->handle);
  auto reopened = CommitAndReopen(*fs);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(ContentOf(**reopened, "f"), after);
}

INSTANTIATE_TEST_SUITE_P(Faults, UpperCommitFaultsTest, ::testing::ValuesIn(kCommitFaults),
                         [](const ::testing::TestParamInfo<CommitFault>& param_info) {
                           return std::string(param_info.param.name);
                         });

}  // namespace
}  // namespace sealroot::fusefs::testing
