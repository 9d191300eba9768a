// Differential tests with runc as the oracle (tests/support/runc_diff.h): each case runs the same
// config.json with Debian's runc (`runc run`) and with sealroot-boot's development form
// (`--rootfs DIR --spec FILE`) on the same busybox root, and compares what runc_probe.sh prints
// inside, line for line. tests/e2e/runc_diff_agent_test.cc runs the same cases through the agent.
#include "tests/support/runc_diff.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

using nlohmann::json;
namespace diff = runc_diff;

class RuncDiffTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    // A user namespace's root (an unprivileged host uid) must be able to reach the root.
    ASSERT_EQ(::chmod(dir_->path().c_str(), 0755), 0);
    root_ = *dir_ / "rootfs";
    diff::MakeProbeRoot(root_);
    listener_ = new diff::LoopbackListener;
  }
  static void TearDownTestSuite() {
    delete listener_;
    delete dir_;
  }

  json ProbeSpec() { return diff::ProbeSpec(work_.path(), root_, listener_->port()); }

  CommandResult RunBoot(const json& spec) {
    std::string path = work_ / ("boot-" + std::to_string(++runs_) + ".json");
    std::ofstream(path) << spec.dump(2);
    CommandOptions options;
    options.timeout = std::chrono::seconds(120);
    return testing::Run({BuiltProgram("sealroot-boot"), "--rootfs", spec["root"]["path"], "--spec", path},
                        options);
  }

  // Runs `spec` in both and expects the same probe output, line for line.
  void ExpectSameAsRunc(const json& spec) {
    CommandResult runc = diff::RunRunc(spec, work_.path());
    CommandResult boot = RunBoot(spec);
    ASSERT_EQ(runc.exit_code, 0) << runc.out << runc.err;
    EXPECT_EQ(boot.exit_code, 0) << boot.err;
    EXPECT_EQ(boot.out, runc.out) << diff::DiffLines(runc.out, boot.out) << "runc stderr: " << runc.err
                                  << "\nsealroot-boot stderr: " << boot.err;
  }

  static TempDir* dir_;
  static std::string root_;
  static diff::LoopbackListener* listener_;
  TempDir work_;
  int runs_ = 0;
};
TempDir* RuncDiffTest::dir_ = nullptr;
std::string RuncDiffTest::root_;
diff::LoopbackListener* RuncDiffTest::listener_ = nullptr;

TEST_F(RuncDiffTest, RuncSpecDefault) {
  ExpectSameAsRunc(ProbeSpec());
}

TEST_F(RuncDiffTest, ExtraCapabilities) {
  json spec = ProbeSpec();
  diff::AddCapabilities(spec);
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffTest, UserNamespaceRootlessStyle) {
  // The root as a rootless runtime has it: owned by the ids root maps to.
  const std::string mapped_root = *dir_ / "rootfs-userns";
  diff::MakeUserNamespaceRoot(root_, mapped_root);
  json spec = ProbeSpec();
  spec["root"]["path"] = mapped_root;
  diff::AddUserNamespace(spec);
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffTest, SeccompDenyingOneSyscallWithErrno) {
  json spec = ProbeSpec();
  diff::DenyMkdirWithErrno(spec);
  ExpectSameAsRunc(spec);
}

// Debian's runc 1.1 does not set "domainname" (container_test checks that sealroot-boot does).
TEST_F(RuncDiffTest, HostnameSysctlUmaskOomScore) {
  json spec = ProbeSpec();
  diff::SetHostnameSysctlsOomScore(spec);
  spec["process"]["user"]["umask"] = 077;
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffTest, MemoryAndPidsLimits) {
  json spec = ProbeSpec();
  diff::LimitMemoryAndPids(spec);
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffTest, TerminalWithConsoleSize) {
  json spec = ProbeSpec();
  diff::UseTerminal(spec);
  const std::string runc = diff::RunRuncWithConsole(spec, work_.path());
  CommandResult boot = RunBoot(spec);
  EXPECT_EQ(boot.exit_code, 0) << boot.err;
  EXPECT_NE(runc.find("33 101"), std::string::npos) << runc;
  EXPECT_EQ(boot.out, runc);
}

}  // namespace
}  // namespace sealroot::testing
