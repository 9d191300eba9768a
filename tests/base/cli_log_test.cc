// base/cli.h, base/log.h and base/interrupt.h: exit codes, error reports (text and JSON), the
// common flags, log levels and line format, and the interrupt flag.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/args.h"
#include "base/cli.h"
#include "base/interrupt.h"
#include "base/log.h"

namespace sealroot {
namespace {

TEST(CliTest, ExitCodesFollowTheDocumentedClasses) {
  EXPECT_EQ(cli::ExitCodeFor(OkStatus()), cli::kExitOk);
  EXPECT_EQ(cli::ExitCodeFor(InvalidArgument("x")), cli::kExitUsage);
  EXPECT_EQ(cli::ExitCodeFor(DataLoss("x")), cli::kExitVerification);
  EXPECT_EQ(cli::ExitCodeFor(PermissionDenied("x")), cli::kExitVerification);
  EXPECT_EQ(cli::ExitCodeFor(NotFound("x")), cli::kExitNotFound);
  EXPECT_EQ(cli::ExitCodeFor(Status(Code::kCancelled, "x")), cli::kExitInterrupted);
  EXPECT_EQ(cli::ExitCodeFor(Internal("x")), cli::kExitFailure);
}

class CliParseTest : public ::testing::Test {
 protected:
  void SetUp() override { cli::AddCommonFlags(parser_); }
  void TearDown() override { log::SetLevel(log::Level::kWarning); }
  ArgParser parser_{"sealroot probe", "ARG", "A probe command."};
};

TEST_F(CliParseTest, ErrorsAreOneLineOnStderrAndWithJsonAlsoOneObjectOnStdout) {
  std::vector<std::string> plain = {"x"};
  ASSERT_FALSE(cli::ParseCommandLine(parser_, plain).has_value());
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(cli::ReportError(parser_, DataLoss("layer 1: digest mismatch")), cli::kExitVerification);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "sealroot probe: error: layer 1: digest mismatch\n");

  ArgParser json_parser("sealroot probe", "ARG", "A probe command.");
  cli::AddCommonFlags(json_parser);
  std::vector<std::string> with_json = {"--json", "x"};
  ASSERT_FALSE(cli::ParseCommandLine(json_parser, with_json).has_value());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(cli::ReportError(json_parser, NotFound("no such image")), cli::kExitNotFound);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "sealroot probe: error: no such image\n");
  auto out = nlohmann::json::parse(::testing::internal::GetCapturedStdout());
  EXPECT_EQ(out["error"]["code"], "NOT_FOUND");
  EXPECT_EQ(out["error"]["message"], "no such image");
}

TEST_F(CliParseTest, HelpStopsWithZeroAndABadLogLevelIsAUsageError) {
  std::vector<std::string> help = {"--help"};
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(cli::ParseCommandLine(parser_, help), cli::kExitOk);
  EXPECT_NE(::testing::internal::GetCapturedStdout().find("sealroot probe"), std::string::npos);

  ArgParser bad("sealroot probe", "ARG", "A probe command.");
  cli::AddCommonFlags(bad);
  std::vector<std::string> args = {"--log-level", "loud", "x"};
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(cli::ParseCommandLine(bad, args), cli::kExitUsage);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("loud"), std::string::npos);
}

TEST_F(CliParseTest, LogLevelFlagAppliesTheLevel) {
  std::vector<std::string> args = {"--log-level=debug", "x"};
  ASSERT_FALSE(cli::ParseCommandLine(parser_, args).has_value());
  EXPECT_EQ(log::GetLevel(), log::Level::kDebug);
}

TEST(LogTest, LevelsParseAndFilter) {
  EXPECT_EQ(*log::ParseLevel("warn"), log::Level::kWarning);
  EXPECT_EQ(*log::ParseLevel("off"), log::Level::kOff);
  EXPECT_FALSE(log::ParseLevel("verbose").ok());
  log::SetLevel(log::Level::kError);
  EXPECT_FALSE(log::Enabled(log::Level::kWarning));
  EXPECT_TRUE(log::Enabled(log::Level::kError));
  ::testing::internal::CaptureStderr();
  SR_LOG(kWarning) << "filtered out";
  SR_LOG(kError) << "layer " << 3 << " failed";
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "sealroot: error: layer 3 failed\n");
  log::SetLevel(log::Level::kOff);
  ::testing::internal::CaptureStderr();
  SR_LOG(kError) << "nothing";
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  log::SetLevel(log::Level::kWarning);
}

TEST(LogTest, TheProgramNamePrefixesEveryLine) {
  log::SetProgramName("enclave-agent");
  ::testing::internal::CaptureStderr();
  SR_LOG(kWarning) << "retrying";
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "enclave-agent: warning: retrying\n");
  log::SetProgramName("sealroot");
}

// In a child, so the handlers and the flag do not outlive the test.
int RunChild(void (*body)()) {
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(InterruptTest, TheFirstSignalSetsTheFlagAndTheSecondExits) {
  int first = RunChild([] {
    InstallInterruptHandler();
    if (Interrupted()) _exit(10);
    raise(SIGTERM);
    _exit(Interrupted() ? 0 : 11);
  });
  ASSERT_TRUE(WIFEXITED(first));
  EXPECT_EQ(WEXITSTATUS(first), 0);

  int second = RunChild([] {
    InstallInterruptHandler();
    raise(SIGINT);
    raise(SIGINT);  // exits 128 + SIGINT at once
    _exit(12);
  });
  ASSERT_TRUE(WIFEXITED(second));
  EXPECT_EQ(WEXITSTATUS(second), 128 + SIGINT);
}

}  // namespace
}  // namespace sealroot
