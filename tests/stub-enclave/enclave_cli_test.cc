// `sealroot enclave keygen|measure|sign|verify|run` end to end, with the CLI exit codes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/file.h"
#include "tests/support/process.h"

namespace sealroot::stub_enclave {
namespace {

using testing::BuiltProgram;

class EnclaveCliTest : public ::testing::Test {
 protected:
  testing::CommandResult Sealroot(std::vector<std::string> args) {
    args.insert(args.begin(), {BuiltProgram("sealroot"), "enclave"});
    return testing::Run(args);
  }
  void SetUp() override { ASSERT_TRUE(Sealroot({"keygen", key_}).ok()); }

  testing::TempDir dir_;
  std::string key_ = dir_ / "signer.pem";
  std::string app_ = BuiltProgram("test_app");
};

TEST_F(EnclaveCliTest, KeygenWritesAPrivateKeyOnceWithMode0600) {
  struct stat st {};
  ASSERT_EQ(::stat(key_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(ReadFile(key_).value().find("PRIVATE KEY"), std::string::npos);
  auto again = Sealroot({"keygen", key_});
  EXPECT_NE(again.exit_code, 0);  // never overwrites a key
}

TEST_F(EnclaveCliTest, MeasureSignVerifyAgree) {
  auto measured = Sealroot({"measure", app_, "--threads", "2", "--heap-size", "1M"});
  ASSERT_TRUE(measured.ok()) << measured.err;
  const std::string mr = measured.out.substr(0, 64);
  auto json =
      nlohmann::json::parse(Sealroot({"measure", app_, "--threads=2", "--heap-size=1M", "--json"}).out);
  EXPECT_EQ(json["mrenclave"], mr);
  EXPECT_FALSE(json["libraries"].empty());
  auto signed_ = Sealroot({"sign", app_, "--key", key_, "--out", dir_ / "app.sig", "--isv-prod-id", "2",
                           "--isv-svn", "5", "--threads", "2", "--heap-size", "1M", "--json"});
  ASSERT_TRUE(signed_.ok()) << signed_.err;
  auto id = nlohmann::json::parse(signed_.out);
  EXPECT_EQ(id["mrenclave"], mr);
  EXPECT_EQ(id["isv_prod_id"], 2);
  EXPECT_EQ(id["isv_svn"], 5);
  EXPECT_EQ(id["debug"], false);
  EXPECT_EQ(ReadFile(dir_ / "app.sig").value().size(), 1808u);
  auto verified =
      Sealroot({"verify", app_, "--sigstruct", dir_ / "app.sig", "--threads", "2", "--heap-size", "1M"});
  EXPECT_TRUE(verified.ok()) << verified.err;
  EXPECT_NE(verified.out.find("ok mrenclave " + mr), std::string::npos);
  // Another layout is another MRENCLAVE: the same SIGSTRUCT no longer verifies (exit 3).
  auto other_layout = Sealroot({"verify", app_, "--sigstruct", dir_ / "app.sig"});
  EXPECT_EQ(other_layout.exit_code, 3) << other_layout.err;
}

TEST_F(EnclaveCliTest, TamperedSigstructFailsVerificationWithExit3) {
  ASSERT_TRUE(Sealroot({"sign", app_, "--key", key_, "--out", dir_ / "app.sig"}).ok());
  std::string sig = ReadFile(dir_ / "app.sig").value();
  sig[1024] ^= 1;  // ISVPRODID
  ASSERT_TRUE(WriteFileAtomic(dir_ / "bad.sig", sig).ok());
  auto r = Sealroot({"verify", app_, "--sigstruct", dir_ / "bad.sig"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("signature does not verify"), std::string::npos) << r.err;
  auto run = Sealroot({"run", app_, "--sigstruct", dir_ / "bad.sig"});
  EXPECT_EQ(run.exit_code, 3);
  // A truncated or overlong SIGSTRUCT does not verify either: exit 3, not a usage error.
  ASSERT_TRUE(WriteFileAtomic(dir_ / "short.sig", sig.substr(0, 100)).ok());
  auto short_sig = Sealroot({"verify", app_, "--sigstruct", dir_ / "short.sig"});
  EXPECT_EQ(short_sig.exit_code, 3) << short_sig.err;
  EXPECT_NE(short_sig.err.find("100 bytes"), std::string::npos) << short_sig.err;
  EXPECT_EQ(Sealroot({"run", app_, "--sigstruct", dir_ / "short.sig"}).exit_code, 3);
  ASSERT_TRUE(WriteFileAtomic(dir_ / "long.sig", sig + "x").ok());
  EXPECT_EQ(Sealroot({"verify", app_, "--sigstruct", dir_ / "long.sig"}).exit_code, 3);
}

TEST_F(EnclaveCliTest, RunPassesArgumentsAndExitStatus) {
  ASSERT_TRUE(Sealroot({"sign", "/bin/busybox", "--key", key_, "--out", dir_ / "bb.sig"}).ok());
  auto r = Sealroot({"run", "/bin/busybox", "--sigstruct", dir_ / "bb.sig", "--env", "GREETING=hi", "--",
                     "sh", "-c", "echo $GREETING $SEALROOT_SIM_TEE_FD; exit 5"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_EQ(r.out, "hi 3\n");
  auto usage = Sealroot({"run", "/bin/busybox"});
  EXPECT_EQ(usage.exit_code, 2);  // --sigstruct missing
}

// The launcher is the enclave's CPU: it passes the first SIGTERM on and exits only with its
// enclave, whatever signals follow. A parent that dies with several threads delivers its
// PR_SET_PDEATHSIG once per thread, so a launcher that exited on a second SIGTERM left its
// enclave running without it.
TEST_F(EnclaveCliTest, RunOutlivesRepeatedTerminationSignalsUntilItsEnclaveExits) {
  ASSERT_TRUE(Sealroot({"sign", "/bin/busybox", "--key", key_, "--out", dir_ / "bb.sig"}).ok());
  const std::string marks = dir_ / "marks";
  const std::string script = "trap 'echo stopping >> " + marks + "; sleep 0.5; echo stopped >> " + marks +
                             "; exit 7' TERM; echo running >> " + marks + "; while :; do sleep 0.05; done";
  testing::BackgroundProcess launcher({BuiltProgram("sealroot"), "enclave", "run", "/bin/busybox",
                                       "--sigstruct", dir_ / "bb.sig", "--", "sh", "-c", script},
                                      dir_ / "launcher.log");
  auto text = [](const std::string& path) {
    Result<std::string> read = ReadFile(path, 1 << 16);
    return read.ok() ? *read : std::string();
  };
  auto marked = [&](const std::string& word) {
    for (int i = 0; i < 200; ++i) {
      if (text(marks).find(word) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  };
  ASSERT_TRUE(marked("running")) << text(dir_ / "launcher.log");
  ASSERT_EQ(::kill(launcher.pid(), SIGTERM), 0);
  ASSERT_TRUE(marked("stopping")) << "the first SIGTERM was passed on";
  EXPECT_EQ(launcher.Stop(SIGTERM), 7) << "the launcher exits with its enclave, not before it";
  EXPECT_NE(text(marks).find("stopped"), std::string::npos)
      << "the enclave finished stopping before its launcher exited";
}

// --manifest is part of the measured layout: measure, sign and run agree on it, the enclave
// reads it, and one changed byte is another enclave that the SIGSTRUCT does not cover (exit 3).
TEST_F(EnclaveCliTest, ManifestIsMeasuredSignedAndHandedToTheEnclave) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "manifest.json", std::string(R"({"stub": {"isv_prod_id": 1}})")).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ / "edited.json", std::string(R"({"stub": {"isv_prod_id": 2}})")).ok());
  auto plain = Sealroot({"measure", "/bin/busybox"});
  auto with = Sealroot({"measure", "/bin/busybox", "--manifest", dir_ / "manifest.json", "--json"});
  ASSERT_TRUE(with.ok()) << with.err;
  auto measured = nlohmann::json::parse(with.out);
  EXPECT_NE(measured["mrenclave"], plain.out.substr(0, 64));
  EXPECT_EQ(measured["manifest_size"], 28);
  auto signed_ = Sealroot({"sign", "/bin/busybox", "--key", key_, "--out", dir_ / "bb.sig", "--manifest",
                           dir_ / "manifest.json", "--json"});
  ASSERT_TRUE(signed_.ok()) << signed_.err;
  EXPECT_EQ(nlohmann::json::parse(signed_.out)["mrenclave"], measured["mrenclave"]);
  auto run =
      Sealroot({"run", "/bin/busybox", "--sigstruct", dir_ / "bb.sig", "--manifest", dir_ / "manifest.json",
                "--", "sh", "-c", "cat /proc/self/fd/$SEALROOT_SIM_MANIFEST_FD"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, R"({"stub": {"isv_prod_id": 1}})");
  auto edited = Sealroot({"run", "/bin/busybox", "--sigstruct", dir_ / "bb.sig", "--manifest",
                          dir_ / "edited.json", "--", "sh", "-c", "echo must not run"});
  EXPECT_EQ(edited.exit_code, 3) << edited.err;
  EXPECT_EQ(edited.out, "");
  EXPECT_EQ(Sealroot({"run", "/bin/busybox", "--sigstruct", dir_ / "bb.sig", "--", "true"}).exit_code, 3);
}

}  // namespace
}  // namespace sealroot::stub_enclave
