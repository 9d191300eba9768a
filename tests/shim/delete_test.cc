// The shim's `delete` command on its own, as containerd runs it (`-bundle DIR delete`): a pod
// whose shim is gone is torn down (its process group killed, its directory and the shim's socket
// removed); a pod whose shim answers, or does not answer in time, is left alone; a bundle record
// that is missing changes nothing, and a malformed one is named on stderr (containerd logs it).
// Every run prints a DeleteResponse.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/file.h"
#include "base/socket.h"
#include "containerd_task.pb.h"
#include "rpc/server.h"
#include "shim/config.h"
#include "shim/pod.h"
#include "tests/support/process.h"

namespace sealroot::testing::shim {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace shim = sealroot::shim;

class AnyCall final : public rpc::RpcHandler {
 public:
  rpc::RpcReply Call(std::string_view, std::string_view, std::string_view) const override {
    return {Unimplemented("not a real shim"), {}};
  }
  bool IsBlocking(std::string_view, std::string_view) const override { return false; }
};

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class ShimDeleteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const json config = {{"agent", {{"executable", "/bin/true"}, {"sigstruct", "/dev/null"}}},
                         {"manifest", "/dev/null"},
                         {"state_root", dir_ / "pods"},
                         {"socket_root", dir_ / "s"}};
    ASSERT_TRUE(WriteFileAtomic(config_path_, config.dump(), 0600).ok());
    Result<shim::ShimConfig> parsed = shim::LoadShimConfig(config_path_);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    pod_ = shim::PodPathsFor(*parsed, "ns", "victim");
    ASSERT_TRUE(MakeDirs(pod_.dir + "/state", 0700).ok());
    ASSERT_TRUE(MakeDirs(dir_ / "s", 0700).ok());
    ASSERT_TRUE(MakeDirs(bundle_, 0700).ok());
    WriteRecord(
        json{{"config", config_path_}, {"namespace", "ns"}, {"pod", "victim"}, {"socket", socket_}}.dump());
  }

  void WriteRecord(const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(bundle_ + "/sealroot.json", text, 0600).ok());
  }

  // A stand-in for the pod's launcher: a process group of its own, named in launcher.pid.
  std::unique_ptr<BackgroundProcess> StartLauncher() {
    auto launcher =
        std::make_unique<BackgroundProcess>(std::vector<std::string>{"sleep", "600"}, dir_ / "sleep.log");
    EXPECT_TRUE(WriteFileAtomic(pod_.launcher_pid_file, std::to_string(launcher->pid()), 0600).ok());
    return launcher;
  }

  // Runs `delete` as containerd does; the response must parse whatever happened to the pod.
  CommandResult Delete() {
    CommandResult r = testing::Run({BuiltProgram("containerd-shim-sealroot-v2"), "-namespace", "ns",
                                    "-address", dir_ / "containerd.sock", "-publish-binary",
                                    "/usr/bin/containerd", "-id", "victim", "-bundle", bundle_, "delete"},
                                   {.cwd = bundle_, .timeout = 60s});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ::containerd::task::v2::DeleteResponse response;
    EXPECT_TRUE(response.ParseFromString(r.out)) << r.err;
    EXPECT_EQ(response.exit_status(), 128u + SIGKILL);
    EXPECT_TRUE(response.has_exited_at());
    return r;
  }

  TempDir dir_;
  const std::string config_path_ = dir_ / "shim.json";
  const std::string bundle_ = dir_ / "bundle";
  const std::string socket_ = dir_ / "s/shim";
  shim::PodPaths pod_;
};

TEST_F(ShimDeleteTest, APodWhoseShimIsGoneIsTornDown) {
  {
    // The shim's socket file stays behind, with nobody listening on it.
    auto listener = ListenUnix(socket_);
    ASSERT_TRUE(listener.ok()) << listener.status().message();
  }
  ASSERT_TRUE(Exists(socket_));
  auto launcher = StartLauncher();
  CommandResult r = Delete();
  EXPECT_FALSE(launcher->Running()) << "the pod's process group was killed";
  EXPECT_FALSE(Exists(pod_.dir)) << r.err;
  EXPECT_FALSE(Exists(socket_));
}

TEST_F(ShimDeleteTest, APodWhoseShimAnswersIsLeftAlone) {
  AnyCall handler;
  auto shim = rpc::TtrpcService::Start({.kind = rpc::ListenAddress::Kind::kUnix, .path = socket_}, handler);
  ASSERT_TRUE(shim.ok()) << shim.status().message();
  auto launcher = StartLauncher();
  CommandResult r = Delete();
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_TRUE(launcher->Running());
  EXPECT_TRUE(Exists(pod_.dir));
  EXPECT_TRUE(Exists(socket_));
}

// Listening but never answering: busy or stopped, not proven dead; containerd logs the warning.
TEST_F(ShimDeleteTest, APodWhoseShimDoesNotAnswerIsLeftAloneWithAWarning) {
  auto listener = ListenUnix(socket_);
  ASSERT_TRUE(listener.ok());
  auto launcher = StartLauncher();
  CommandResult r = Delete();
  EXPECT_NE(r.err.find("did not answer"), std::string::npos) << r.err;
  EXPECT_TRUE(launcher->Running());
  EXPECT_TRUE(Exists(pod_.dir));
}

TEST_F(ShimDeleteTest, AMissingOrMalformedBundleRecordChangesNothing) {
  auto launcher = StartLauncher();
  for (const std::string& record :
       {std::string("not json"), std::string("[1, 2]"), json{{"socket", 5}}.dump(),
        json{{"socket", socket_}, {"config", json::array()}, {"pod", 7}}.dump(), std::string()}) {
    SCOPED_TRACE(record.empty() ? "no record" : record);
    if (record.empty()) {
      ASSERT_EQ(::unlink((bundle_ + "/sealroot.json").c_str()), 0);
    } else {
      WriteRecord(record);
    }
    CommandResult r = Delete();
    if (record.empty()) {
      EXPECT_TRUE(r.err.empty()) << r.err;
    } else {
      EXPECT_NE(r.err.find("sealroot.json: "), std::string::npos) << r.err;
    }
    EXPECT_TRUE(launcher->Running());
    EXPECT_TRUE(Exists(pod_.dir));
  }
}

}  // namespace
}  // namespace sealroot::testing::shim
