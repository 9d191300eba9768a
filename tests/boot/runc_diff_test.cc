// Differential tests with runc as the oracle: each case takes `runc spec`'s default config.json,
// changes what the case is about, runs it with Debian's runc (`runc run`) and with sealroot-boot
// (`--rootfs DIR --spec FILE`) on the same busybox root, and compares what runc_probe.sh prints
// inside: capabilities, no_new_privs, seccomp, namespaces against the host's, hostname, ids,
// the mount table, masked and read-only paths, /dev, mknod, the host's loopback, limits.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/fd.h"
#include "base/file.h"
#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

using nlohmann::json;

class RuncDiffTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    // A user namespace's root (an unprivileged host uid) must be able to reach the root.
    ASSERT_EQ(::chmod(dir_->path().c_str(), 0755), 0);
    root_ = *dir_ / "rootfs";
    CommandResult made = Shell("set -e; mkdir -p '" + root_ + "/bin' '" + root_ + "/etc'; cp /bin/busybox '" +
                               root_ + "/bin/'; chroot '" + root_ + "' /bin/busybox --install -s /bin; cp '" +
                               SEALROOT_RUNC_PROBE + "' '" + root_ + "/probe.sh'");
    ASSERT_TRUE(made.ok()) << made.err;
    std::ofstream(root_ + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
    std::ofstream(root_ + "/etc/group") << "root:x:0:\ntty:x:5:\n";
    // A listener on the host's loopback: a container with its own network must not reach it.
    listener_ = new UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::bind(listener_->get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener_->get(), 64), 0);
    ASSERT_EQ(::getsockname(listener_->get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  static void TearDownTestSuite() {
    delete listener_;
    delete dir_;
  }

  // `runc spec`'s default, running the probe with the host's namespace inodes in its env.
  json DefaultSpec(const std::string& extra_checks = "") {
    CommandResult made = testing::Run({"runc", "spec", "--bundle", work_.path()});
    EXPECT_TRUE(made.ok()) << made.err;
    json spec = json::parse(ReadFile(work_ / "config.json").value());
    spec["root"]["path"] = root_;
    spec["process"]["args"] = {"/bin/sh", "/probe.sh"};
    spec["process"]["terminal"] = false;
    for (const char* ns : {"pid", "mnt", "net", "ipc", "uts", "user", "cgroup"}) {
      std::string link = testing::Run({"readlink", std::string("/proc/self/ns/") + ns}).out;
      std::string inode;
      for (char c : link) {
        if (c >= '0' && c <= '9') inode += c;
      }
      spec["process"]["env"].push_back(std::string("HOST_NS_") + ns + "=" + inode);
    }
    spec["process"]["env"].push_back("HOST_PORT=" + std::to_string(port_));
    spec["process"]["env"].push_back("PROBE_EXTRA=" + extra_checks);
    return spec;
  }

  CommandResult RunRunc(const json& spec) {
    std::string bundle = work_ / ("runc-" + std::to_string(++runs_));
    EXPECT_TRUE(MakeDirs(bundle).ok());
    std::ofstream(bundle + "/config.json") << spec.dump(2);
    std::string id = "sealroot-diff-" + std::to_string(::getpid()) + "-" + std::to_string(runs_);
    CommandOptions options;
    options.timeout = std::chrono::seconds(120);
    CommandResult r = testing::Run({"runc", "run", "--bundle", bundle, id}, options);
    testing::Run({"runc", "delete", "--force", id});
    return r;
  }

  // runc hands a terminal's pty master to a console socket (as containerd's shim has it); its
  // output is what the container wrote.
  std::string RunRuncWithConsole(const json& spec) {
    std::string bundle = work_ / ("runc-" + std::to_string(++runs_));
    EXPECT_TRUE(MakeDirs(bundle).ok());
    std::ofstream(bundle + "/config.json") << spec.dump(2);
    const std::string socket_path = bundle + "/console.sock";
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener.get(), 1), 0);
    std::string id = "sealroot-diff-" + std::to_string(::getpid()) + "-" + std::to_string(runs_);
    CommandResult started =
        testing::Run({"runc", "run", "-d", "--console-socket", socket_path, "--bundle", bundle, id});
    EXPECT_EQ(started.exit_code, 0) << started.err;
    std::string out;
    UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    char byte[256];
    iovec iov{byte, sizeof byte};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (conn && ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC) > 0 && CMSG_FIRSTHDR(&msg) != nullptr) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fd);
      UniqueFd master(fd);
      char buffer[4096];
      ssize_t n;
      while ((n = ::read(master.get(), buffer, sizeof buffer)) > 0)
        out.append(buffer, static_cast<std::size_t>(n));
    }
    testing::Run({"runc", "delete", "--force", id});
    return out;
  }

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
    CommandResult runc = RunRunc(spec);
    CommandResult boot = RunBoot(spec);
    ASSERT_EQ(runc.exit_code, 0) << runc.out << runc.err;
    EXPECT_EQ(boot.exit_code, 0) << boot.err;
    EXPECT_EQ(boot.out, runc.out) << "runc stderr: " << runc.err << "\nsealroot-boot stderr: " << boot.err;
  }

  static TempDir* dir_;
  static std::string root_;
  static UniqueFd* listener_;
  static int port_;
  TempDir work_;
  int runs_ = 0;
};
TempDir* RuncDiffTest::dir_ = nullptr;
std::string RuncDiffTest::root_;
UniqueFd* RuncDiffTest::listener_ = nullptr;
int RuncDiffTest::port_ = 0;

TEST_F(RuncDiffTest, RuncSpecDefault) {
  ExpectSameAsRunc(DefaultSpec());
}

TEST_F(RuncDiffTest, ExtraCapabilities) {
  json spec = DefaultSpec();
  for (const char* set : {"bounding", "effective", "permitted"}) {
    spec["process"]["capabilities"][set].push_back("CAP_NET_ADMIN");
    spec["process"]["capabilities"][set].push_back("CAP_MKNOD");
    spec["process"]["capabilities"][set].push_back("CAP_SYS_PTRACE");
  }
  spec["process"]["capabilities"]["ambient"] = {"CAP_KILL"};
  spec["process"]["capabilities"]["inheritable"] = {"CAP_KILL"};
  spec["process"]["noNewPrivileges"] = false;
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffTest, UserNamespaceRootlessStyle) {
  // The root as a rootless runtime has it: owned by the ids root maps to.
  std::string mapped_root = *dir_ / "rootfs-userns";
  ASSERT_TRUE(Shell("[ -d '" + mapped_root + "' ] || { cp -a '" + root_ + "' '" + mapped_root +
                    "' && chown -R 100000:100000 '" + mapped_root + "'; }")
                  .ok());
  json spec = DefaultSpec();
  spec["root"]["path"] = mapped_root;
  spec["linux"]["namespaces"].push_back({{"type", "user"}});
  spec["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  spec["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffTest, SeccompDenyingOneSyscallWithErrno) {
  json spec = DefaultSpec();
  spec["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64"}},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 13}}}}};
  ExpectSameAsRunc(spec);
}

// Debian's runc 1.1 does not set "domainname" (container_test checks that sealroot-boot does).
TEST_F(RuncDiffTest, HostnameSysctlUmaskOomScore) {
  json spec = DefaultSpec();
  spec["hostname"] = "probe-host";
  spec["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}, {"kernel.shmmni", "1024"}};
  spec["process"]["user"]["umask"] = 077;
  spec["process"]["oomScoreAdj"] = 500;
  spec["root"]["readonly"] = false;
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffTest, MemoryAndPidsLimits) {
  json spec = DefaultSpec("memory pids");
  spec["linux"]["resources"]["memory"] = {{"limit", 64 << 20}, {"swap", 64 << 20}};
  spec["linux"]["resources"]["pids"] = {{"limit", 20}};
  ExpectSameAsRunc(spec);
}

TEST_F(RuncDiffTest, TerminalWithConsoleSize) {
  json spec = DefaultSpec();
  spec["process"]["terminal"] = true;
  spec["process"]["consoleSize"] = {{"height", 33}, {"width", 101}};
  // What a terminal looks like from inside: stdio, size, the slave's name, owner and mode, the
  // session, the controlling terminal, the line settings; stderr goes to the pty too.
  spec["process"]["args"] = {"/bin/sh", "-c",
                             "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty; stty size; tty; "
                             "stat -c '%U:%G %a' $(tty); read -r pid comm state ppid pgrp session rest < "
                             "/proc/$$/stat; [ $session = $$ ] && echo leader; exec 3</dev/tty && echo ctty; "
                             "stty -a; echo err >&2"};
  const std::string runc = RunRuncWithConsole(spec);
  CommandResult boot = RunBoot(spec);
  EXPECT_EQ(boot.exit_code, 0) << boot.err;
  EXPECT_NE(runc.find("33 101"), std::string::npos) << runc;
  EXPECT_EQ(boot.out, runc);
}

}  // namespace
}  // namespace sealroot::testing
