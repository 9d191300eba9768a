// The sealed store on a failing disk (base/env.h, tests/support/fault_env.h). For each fault —
// ENOSPC or EIO on a write, a short write, a failing fsync/syncfs, a failing open, rename or
// mkdir — sealing a layer fails with a clear error, leaves no layer, object or staged file of
// it behind, loses nothing committed before (an earlier image still reads back), and the same
// layer seals once the disk is fine again.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

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
                         [](const ::testing::TestParamInfo<Fault>& info) {
                           return std::string(info.param.name);
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

}  // namespace
}  // namespace sealroot::fusefs::testing
