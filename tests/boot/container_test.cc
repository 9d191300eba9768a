// sealroot-boot on a plain busybox directory root: the container-runtime half of the boot,
// run as the real program (it unshares namespaces, so it cannot run inside the test process).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "base/file.h"
#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

class BootContainerTest : public ::testing::Test {
 protected:
  // One busybox root for the suite: /bin/busybox and its applet links, a non-root user "app"
  // (1000:1000) that /etc/group also lists in "extra" (2000).
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    root_ = *dir_ / "rootfs";
    CommandResult made = Shell("set -e; mkdir -p '" + root_ + "/bin' '" + root_ + "/etc'; cp /bin/busybox '" +
                               root_ + "/bin/'; chroot '" + root_ + "' /bin/busybox --install -s /bin");
    ASSERT_TRUE(made.ok()) << made.err;
    WriteText(root_ + "/etc/passwd",
              "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
    WriteText(root_ + "/etc/group", "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static void WriteText(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
  }

  std::vector<std::string> BootArgs(const std::string& spec_json, std::vector<std::string> extra = {}) {
    std::string spec_path = spec_dir_ / "spec.json";
    WriteText(spec_path, spec_json);
    std::vector<std::string> argv = {BuiltProgram("sealroot-boot"), "--rootfs", root_, "--spec", spec_path};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  CommandResult Boot(const std::string& spec_json, std::vector<std::string> extra = {},
                     const std::string& stdin_data = "") {
    CommandOptions options;
    options.stdin_data = stdin_data;
    options.timeout = std::chrono::seconds(60);
    return testing::Run(BootArgs(spec_json, std::move(extra)), options);
  }
  // A spec running `script` with busybox sh.
  static std::string Sh(const std::string& script, const std::string& more = "") {
    std::string escaped;
    for (char c : script) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    return R"({"process":{"args":["sh","-c",")" + escaped + "\"]" + more + "}}";
  }

  // The host's mount points at or below `prefix` (other tests on this machine mount and unmount
  // elsewhere concurrently, so only the paths a test owns can be compared).
  static std::vector<std::string> HostMountsUnder(const std::string& prefix) {
    std::vector<std::string> out;
    std::istringstream info(ReadFile("/proc/self/mountinfo").value());
    std::string line;
    while (std::getline(info, line)) {
      std::istringstream fields(line);
      std::string id, parent, dev, root, mount_point;
      fields >> id >> parent >> dev >> root >> mount_point;
      if (mount_point == prefix || mount_point.rfind(prefix + "/", 0) == 0) out.push_back(mount_point);
    }
    return out;
  }

  static TempDir* dir_;
  static std::string root_;
  TempDir spec_dir_;
};
TempDir* BootContainerTest::dir_ = nullptr;
std::string BootContainerTest::root_;

TEST_F(BootContainerTest, OutputAndExitCodeOfTheEntrypoint) {
  CommandResult r = Boot(Sh("echo out; echo err >&2; exit 3"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST_F(BootContainerTest, StdinReachesTheEntrypoint) {
  CommandResult r = Boot(R"({"process":{"args":["cat"]}})", {}, "from stdin\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from stdin\n");
}

TEST_F(BootContainerTest, TerminalProcessGetsAPtySizedAsTheSpecSays) {
  const std::string terminal = R"(,"terminal":true,"consoleSize":{"height":33,"width":101})";
  // Field 6 of /proc/PID/stat is the session: the process leads its own, the pty controlling it.
  CommandResult r =
      Boot(Sh("[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty; stty size; tty; "
              "read -r pid comm state ppid pgrp session rest < /proc/$$/stat; "
              "[ $session = $$ ] && echo leader; exec 3</dev/tty && echo ctty; echo err >&2; exit 4",
              terminal));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  // Lines end with CRLF, as on any terminal; stderr is the pty too.
  EXPECT_EQ(r.out, "tty\r\n33 101\r\n/dev/pts/0\r\nleader\r\nctty\r\nerr\r\n") << r.err;
  EXPECT_EQ(r.err, "");
}

TEST_F(BootContainerTest, TerminalInputEndingIsEndOfFile) {
  CommandResult r = Boot(R"({"process":{"terminal":true,"args":["cat"]}})", {}, "line\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "line\r\nline\r\n");
}

TEST_F(BootContainerTest, ImageEntrypointRunsAsTheImagesNonRootUser) {
  CommandResult r = Boot(R"({"image":{"Entrypoint":["id"],"User":"app"}})");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "uid=1000(app) gid=1000(app) groups=2000(extra)\n");
}

TEST_F(BootContainerTest, SpecUserWithAdditionalGids) {
  CommandResult r =
      Boot(Sh("id -u; id -g; id -G", R"(,"user":{"uid":1234,"gid":5678,"additionalGids":[42,43]})"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1234\n5678\n5678 42 43\n");
}

TEST_F(BootContainerTest, EnvCwdAndArgsAsSpecified) {
  CommandResult r = Boot(
      R"({"process":{"args":["sh","-c","echo \"$0 $1|$A|$B|$HOME|$PATH\"; pwd","first","second"],"env":["B=spec"],"cwd":"/work/dir"},
          "image":{"Entrypoint":["false"],"Env":["A=image","B=image"],"User":"app"}})");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "first second|image|spec|/home/app|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            "/work/dir\n");
}

TEST_F(BootContainerTest, HostnameRlimitsAndNoNewPrivileges) {
  CommandResult r = Boot(
      R"({"hostname":"inside","process":{"args":["sh","-c","hostname; ulimit -n; grep NoNewPrivs /proc/self/status"],
          "noNewPrivileges":true,"rlimits":[{"type":"RLIMIT_NOFILE","soft":123,"hard":456}]}})");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "inside\n123\nNoNewPrivs:\t1\n");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_NE(std::string(host), "inside");
}

TEST_F(BootContainerTest, DomainnameIsSetInTheContainersUtsNamespace) {
  // Debian's runc 1.1 leaves it unset, so the differential suite cannot check it.
  CommandResult r = Boot(
      R"({"hostname":"h","domainname":"inside.example","process":{"args":["cat","/proc/sys/kernel/domainname"]}})");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "inside.example\n");
}

TEST_F(BootContainerTest, SpecsThatWouldShareTheBootsNamespacesAreRefused) {
  CommandResult no_pid = Boot(R"({"process":{"args":["true"]},"linux":{"namespaces":[{"type":"mount"}]}})");
  EXPECT_NE(no_pid.exit_code, 0);
  EXPECT_NE(no_pid.err.find("must include pid and mount"), std::string::npos) << no_pid.err;
  CommandResult host_sysctl =
      Boot(R"({"process":{"args":["true"]},"linux":{"sysctl":{"kernel.core_pattern":"|/evil"}}})");
  EXPECT_NE(host_sysctl.exit_code, 0);
  EXPECT_NE(host_sysctl.err.find("not namespaced"), std::string::npos) << host_sysctl.err;
}

TEST_F(BootContainerTest, ExitNonZero) {
  CommandResult r = Boot(R"({"process":{"args":["false"]}})");
  EXPECT_EQ(r.exit_code, 1);
}

TEST_F(BootContainerTest, KilledBySignalGives128PlusN) {
  CommandResult r = Boot(Sh("kill -KILL $$"));
  EXPECT_EQ(r.exit_code, 128 + 9) << r.err;
}

TEST_F(BootContainerTest, DevNodesPresent) {
  CommandResult r =
      Boot(Sh("for n in null zero full random urandom tty; do test -c /dev/$n || echo missing $n; done;"
              "test -c /dev/pts/ptmx || echo no ptmx; test -L /dev/ptmx || echo no ptmx link;"
              "head -c 4 /dev/zero | od -An -tx1; echo x > /dev/full 2>/dev/null && echo full-accepted;"
              "mount | grep -c -e ' /dev/pts type devpts' -e ' /dev/shm type tmpfs' -e ' /tmp type tmpfs'"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, " 00 00 00 00\n3\n");
}

TEST_F(BootContainerTest, ProcShowsOnlyTheContainersProcesses) {
  // The shell expands the glob itself, so no helper process (a pipeline's `ls`, `wc`) races it.
  CommandResult r = Boot(Sh("echo $$; set -- /proc/[0-9]*; echo $#"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // PID 1 is the boot's init, 2 the entrypoint: nothing of the host.
  EXPECT_EQ(r.out, "2\n2\n");
}

TEST_F(BootContainerTest, NothingLeaksIntoTheHostMountNamespace) {
  ASSERT_EQ(HostMountsUnder(root_), std::vector<std::string>{});
  std::string marker = root_ + "/started";
  ::unlink(marker.c_str());
  BackgroundProcess boot(BootArgs(Sh("touch /started; exec sleep 30")), spec_dir_ / "log");
  for (int i = 0; i < 3000 && ::access(marker.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::access(marker.c_str(), F_OK), 0) << "container did not start";
  // While it runs: /proc, /dev, /tmp and the root bind exist only in the container's namespace.
  EXPECT_EQ(HostMountsUnder(root_), std::vector<std::string>{});
  // The boot itself (the FUSE server) keeps the host's root; only the container is pivoted.
  struct stat host_root, boot_root;
  ASSERT_EQ(::stat("/", &host_root), 0);
  ASSERT_EQ(::stat(("/proc/" + std::to_string(boot.pid()) + "/root/").c_str(), &boot_root), 0);
  EXPECT_EQ(boot_root.st_ino, host_root.st_ino);
  EXPECT_EQ(boot_root.st_dev, host_root.st_dev);
  EXPECT_EQ(boot.Stop(SIGTERM), 128 + SIGTERM);  // forwarded to the entrypoint
  EXPECT_EQ(HostMountsUnder(root_), std::vector<std::string>{});
  ::unlink(marker.c_str());
}

TEST_F(BootContainerTest, InMemoryUpperLeavesTheRootUntouched) {
  CommandResult r =
      Boot(Sh("echo new > /etc/added; rm /bin/ls; cat /etc/added; test -e /bin/ls || echo gone"),
           {"--in-memory-upper"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "new\ngone\n");
  EXPECT_NE(::access((root_ + "/bin/ls").c_str(), F_OK), -1);
  EXPECT_EQ(::access((root_ + "/etc/added").c_str(), F_OK), -1);
}

TEST_F(BootContainerTest, ImageSymlinkCannotRedirectAMountOntoTheHost) {
  TempDir other;
  std::string evil = other / "rootfs";
  ASSERT_TRUE(Shell("cp -a '" + root_ + "' '" + evil + "' && rm -rf '" + evil + "/tmp' && ln -s /etc '" +
                    evil + "/tmp'")
                  .ok());
  std::vector<std::string> etc_before = HostMountsUnder("/etc");
  std::string spec = spec_dir_ / "evil.json";
  WriteText(spec, Sh("true"));
  CommandResult r = testing::Run({BuiltProgram("sealroot-boot"), "--rootfs", evil, "--spec", spec});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/tmp (symlinks are refused)"), std::string::npos) << r.err;
  EXPECT_EQ(HostMountsUnder("/etc"), etc_before);
  EXPECT_EQ(HostMountsUnder(evil), std::vector<std::string>{});
}

TEST_F(BootContainerTest, SpecNotMatchingTheReleasedDigestIsRefused) {
  std::string digest(64, '0');
  CommandResult r = Boot(Sh("echo ran"), {"--spec-digest", digest});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("does not match the released digest"), std::string::npos) << r.err;
}

TEST_F(BootContainerTest, SetupFailuresAreClearErrors) {
  CommandResult missing = Boot(R"({"process":{"args":["no-such-program"]}})");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("executable 'no-such-program' not found"), std::string::npos) << missing.err;
  CommandResult user = Boot(R"({"image":{"Cmd":["true"],"User":"ghost"}})");
  EXPECT_NE(user.exit_code, 0);
  EXPECT_NE(user.err.find("user 'ghost' is not in the container's /etc/passwd"), std::string::npos)
      << user.err;
}

}  // namespace
}  // namespace sealroot::testing
