// The agent's sealed state on a failing disk (base/env.h, tests/support/fault_env.h): for each
// fault — ENOSPC, EIO, a short write, a failing fsync, a failing rename — saving the records or
// the container keyring fails with a clear error, leaves nothing half-written behind, loses
// nothing saved before, and the next save succeeds once the disk is fine again.
#include <dirent.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "agent/server/src/container_keys.h"
#include "agent/server/src/records.h"
#include "tests/support/fault_env.h"
#include "tests/support/process.h"

namespace sealroot::agent {
namespace {

using Op = sealroot::testing::FaultEnv::Op;

struct Fault {
  const char* name;
  Op op;
  int err;
};

const Fault kFaults[] = {
    {"enospc_on_write", Op::kWrite, ENOSPC}, {"eio_on_write", Op::kWrite, EIO},
    {"eio_on_fsync", Op::kFsync, EIO},       {"enospc_on_open", Op::kOpen, ENOSPC},
    {"eio_on_rename", Op::kRename, EIO},
};

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

class StateFaultsTest : public ::testing::TestWithParam<Fault> {
 protected:
  static AgentState StateWith(const std::string& image) {
    AgentState state;
    ImageRecord record;
    record.image = image;
    record.image_ref = image + "@sha256:" + std::string(64, 'a');
    record.root_hash.fill(0xbb);
    record.store_name = std::string(32, image == "old" ? 'c' : 'd');
    record.key = SecretBytes::Random(32);
    state.images.emplace(image, std::move(record));
    return state;
  }
  std::vector<std::string> ImagesOnDisk() {
    Result<AgentState> loaded = LoadState(*sealer_, dir_.path());
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    std::vector<std::string> names;
    if (loaded.ok()) {
      for (const auto& [name, record] : loaded->images) names.push_back(name);
    }
    return names;
  }

  sealroot::testing::TempDir dir_;
  sealroot::testing::FaultEnv env_;
  std::unique_ptr<StateSealer> sealer_ = MakeKeySealer(SecretBytes::Random(32)).value();
};

TEST_P(StateFaultsTest, SavingRecordsFailsCleanlyAndKeepsTheLastState) {
  ASSERT_TRUE(SaveState(StateWith("old"), *sealer_, dir_.path(), env_).ok());
  const std::vector<std::string> before = Entries(dir_.path());
  env_.FailFrom(GetParam().op, 1, GetParam().err);
  Status failed = SaveState(StateWith("new"), *sealer_, dir_.path(), env_);
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), ErrnoStatus("", GetParam().err).code()) << failed.ToString();
  EXPECT_NE(failed.message().find(std::strerror(GetParam().err)), std::string::npos) << failed.ToString();
  EXPECT_EQ(Entries(dir_.path()), before) << "a temporary file was left behind";
  EXPECT_EQ(ImagesOnDisk(), std::vector<std::string>{"old"});
  env_.Clear();
  ASSERT_TRUE(SaveState(StateWith("new"), *sealer_, dir_.path(), env_).ok());
  EXPECT_EQ(ImagesOnDisk(), std::vector<std::string>{"new"});
}

TEST_P(StateFaultsTest, AKeyringChangeThatCannotBeSavedIsUndone) {
  auto keyring = ContainerKeyring::Load(*sealer_, dir_.path(), env_);
  ASSERT_TRUE(keyring.ok()) << keyring.status().ToString();
  ASSERT_TRUE((*keyring)->Register("kept").ok());
  const SecretBytes kept_key = (*keyring)->Secrets("kept")->upper_key.Clone();
  env_.FailFrom(GetParam().op, 1, GetParam().err);
  Status failed = (*keyring)->Register("lost");
  EXPECT_EQ(failed.code(), ErrnoStatus("", GetParam().err).code()) << failed.ToString();
  EXPECT_EQ((*keyring)->Secrets("lost").status().code(), Code::kNotFound) << "kept in memory, not on disk";
  env_.Clear();
  // What was saved before is still there, on disk as in memory.
  auto reloaded = ContainerKeyring::Load(*sealer_, dir_.path(), env_);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_TRUE((*reloaded)->Secrets("kept")->upper_key == kept_key);
  EXPECT_EQ((*reloaded)->Secrets("lost").status().code(), Code::kNotFound);
  ASSERT_TRUE((*keyring)->Register("lost").ok());
  EXPECT_TRUE(ContainerKeyring::Load(*sealer_, dir_.path(), env_).value()->Secrets("lost").ok());
}

INSTANTIATE_TEST_SUITE_P(Faults, StateFaultsTest, ::testing::ValuesIn(kFaults),
                         [](const ::testing::TestParamInfo<Fault>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(StateShortWriteTest, ShortWritesAreCompletedNotCommittedHalfway) {
  sealroot::testing::TempDir dir;
  sealroot::testing::FaultEnv env;
  auto sealer = MakeKeySealer(SecretBytes::Random(32)).value();
  AgentState state;
  state.images["i"].image = "i";
  state.images["i"].root_hash.fill(0xee);
  state.images["i"].store_name = std::string(32, 'f');
  state.images["i"].key = SecretBytes::Random(32);
  state.images["i"].users = {"c"};
  state.containers["c"] = ContainerRecord{.id = "c", .image = "i", .spec = std::string(100000, 's')};
  env.ShortWrite(1);
  ASSERT_TRUE(SaveState(state, *sealer, dir.path(), env).ok());
  EXPECT_EQ(env.short_writes(), 1);
  Result<AgentState> loaded = LoadState(*sealer, dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->containers.at("c").spec, state.containers["c"].spec);
}

}  // namespace
}  // namespace sealroot::agent
