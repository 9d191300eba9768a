// The seccomp module: OCI profiles compiled with libseccomp and loaded in a forked child, whose
// syscalls then get the profile's answers; malformed profiles are refused naming the field; the
// default profile denies what Docker's denies and still runs busybox.
#include "boot/src/seccomp.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <functional>
#include <string>
#include <vector>

#include "base/file.h"
#include "boot/spec/seccomp_profile.h"
#include "tests/support/process.h"

namespace sealroot::boot {
namespace {

using Json = nlohmann::json;

// Loads `program` in a forked child (no_new_privs, as an unprivileged container would) and runs
// `body` there; returns the wait status. The child's exit code is body's result.
int RunFiltered(const SeccompProgram& program, const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(100);
    if (!program.Load().ok()) ::_exit(101);
    // exit_group directly: _exit would run the leak checker, whose syscalls the filter may deny.
    ::syscall(SYS_exit_group, body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// The errno a syscall left (0 when it succeeded), as an exit code.
int ErrnoOf(long rc) {
  return rc < 0 ? errno : 0;
}

int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

SeccompProgram Compile(const Json& profile) {
  Result<SeccompProgram> program = CompileSeccomp(profile);
  EXPECT_TRUE(program.ok()) << program.status().ToString();
  return program.ok() ? *program : SeccompProgram();
}

// Braces around one nlohmann::json object would make that object, not an array: rules go in a vector.
Json AllowAllBut(const std::vector<Json>& rules) {
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"architectures", {"SCMP_ARCH_X86_64"}},
          {"syscalls", Json(rules)}};
}

class SeccompTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  std::string Path(const std::string& name) { return dir_ / name; }
};

TEST_F(SeccompTest, DeniedSyscallGetsEpermByDefaultOrTheChosenErrno) {
  std::string target = Path("made");
  auto mkdir_errno = [&] { return ErrnoOf(::mkdir(target.c_str(), 0755)); };
  SeccompProgram eperm =
      Compile(AllowAllBut({{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}}}));
  EXPECT_EQ(ExitCode(RunFiltered(eperm, mkdir_errno)), EPERM);
  SeccompProgram exdev = Compile(
      AllowAllBut({{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", EXDEV}}}));
  EXPECT_EQ(ExitCode(RunFiltered(exdev, mkdir_errno)), EXDEV);
  EXPECT_NE(::access(target.c_str(), F_OK), 0) << "the filtered mkdir must not have run";
  // Without a filter the same call works: the errno came from the profile.
  EXPECT_EQ(ExitCode(RunFiltered(SeccompProgram(), mkdir_errno)), 0);
}

TEST_F(SeccompTest, DefaultErrnoRetAppliesToEverythingNotAllowed) {
  Json profile = {
      {"defaultAction", "SCMP_ACT_ERRNO"},
      {"defaultErrnoRet", ENOTSUP},
      {"syscalls",
       Json::array({{{"names", {"exit_group", "exit", "getpid"}}, {"action", "SCMP_ACT_ALLOW"}}})}};
  SeccompProgram program = Compile(profile);
  EXPECT_EQ(ExitCode(RunFiltered(program, [] { return ErrnoOf(::syscall(SYS_getppid)); })), ENOTSUP);
  EXPECT_EQ(ExitCode(RunFiltered(program, [] { return ErrnoOf(::syscall(SYS_getpid)); })), 0);
}

TEST_F(SeccompTest, ArgumentFiltersMatchOnlyTheGivenValues) {
  // Two conditions on the same argument: either matches (runc's OR).
  SeccompProgram program =
      Compile(AllowAllBut({{{"names", {"socket"}},
                            {"action", "SCMP_ACT_ERRNO"},
                            {"errnoRet", EAFNOSUPPORT},
                            {"args",
                             {{{"index", 0}, {"value", AF_INET}, {"op", "SCMP_CMP_EQ"}},
                              {{"index", 0}, {"value", AF_INET6}, {"op", "SCMP_CMP_EQ"}}}}}}));
  auto socket_errno = [](int family) {
    return [family] { return ErrnoOf(::socket(family, SOCK_STREAM, 0)); };
  };
  EXPECT_EQ(ExitCode(RunFiltered(program, socket_errno(AF_INET))), EAFNOSUPPORT);
  EXPECT_EQ(ExitCode(RunFiltered(program, socket_errno(AF_INET6))), EAFNOSUPPORT);
  EXPECT_EQ(ExitCode(RunFiltered(program, socket_errno(AF_UNIX))), 0);

  // Conditions on different arguments must all match (AND); MASKED_EQ takes the mask in value.
  SeccompProgram masked = Compile(AllowAllBut(
      {{{"names", {"openat"}},
        {"action", "SCMP_ACT_ERRNO"},
        {"errnoRet", EROFS},
        {"args",
         {{{"index", 2}, {"value", O_ACCMODE}, {"valueTwo", O_WRONLY}, {"op", "SCMP_CMP_MASKED_EQ"}},
          {{"index", 0}, {"value", AT_FDCWD & 0xffffffffu}, {"op", "SCMP_CMP_EQ"}}}}}}));
  std::string file = Path("f");
  ASSERT_TRUE(WriteFileAtomic(file, "x").ok());
  auto open_errno = [&](int flags) {
    return [&file, flags] {
      int fd = ::openat(AT_FDCWD, file.c_str(), flags);
      return fd < 0 ? errno : 0;
    };
  };
  EXPECT_EQ(ExitCode(RunFiltered(masked, open_errno(O_WRONLY | O_APPEND))), EROFS);
  EXPECT_EQ(ExitCode(RunFiltered(masked, open_errno(O_RDONLY))), 0);
  EXPECT_EQ(ExitCode(RunFiltered(masked, open_errno(O_RDWR))), 0);
}

TEST_F(SeccompTest, KillAndTrapActionsEndTheProcessWithSigsys) {
  for (const char* action : {"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"}) {
    SeccompProgram program = Compile(AllowAllBut({{{"names", {"getppid"}}, {"action", action}}}));
    EXPECT_EQ(ExitCode(RunFiltered(program, [] { return ErrnoOf(::syscall(SYS_getppid)); })), -SIGSYS)
        << action;
  }
}

TEST_F(SeccompTest, SyscallsNewerThanTheProfileFailWithEnosysAsUnderRunc) {
  // exit_group (231) is the newest syscall named: getcpu (309) is newer, dup (32) older.
  Json profile = {
      {"defaultAction", "SCMP_ACT_ERRNO"},
      {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
      {"syscalls",
       Json::array({{{"names", {"exit_group", "exit", "getpid", "mkdir"}}, {"action", "SCMP_ACT_ALLOW"}}})}};
  SeccompProgram program = Compile(profile);
  auto getcpu = [] { return ErrnoOf(::syscall(SYS_getcpu, nullptr, nullptr, nullptr)); };
  EXPECT_EQ(ExitCode(RunFiltered(program, getcpu)), ENOSYS);
  EXPECT_EQ(ExitCode(RunFiltered(program, [] { return ErrnoOf(::syscall(SYS_dup, 0)); })), EPERM);
  EXPECT_EQ(ExitCode(RunFiltered(program, [] { return ErrnoOf(::syscall(SYS_getpid)); })), 0);
  // The default profile: a syscall added after its newest (462, mseal) says ENOSYS, so that libc
  // falls back; an old one it leaves out (swapon) stays EPERM.
  SeccompProgram defaults = Compile(DefaultSeccompProfile());
  EXPECT_EQ(ExitCode(RunFiltered(defaults, [] { return ErrnoOf(::syscall(462, 0, 0, 0)); })), ENOSYS);
  EXPECT_EQ(ExitCode(RunFiltered(defaults, [] { return ErrnoOf(::syscall(SYS_swapon, "/nonexistent", 0)); })),
            EPERM);
  // An explicit ENOSYS default needs no stub; an allowing default gets none.
  profile["defaultErrnoRet"] = ENOSYS;
  EXPECT_EQ(ExitCode(RunFiltered(Compile(profile), [] { return ErrnoOf(::syscall(SYS_dup, 0)); })), ENOSYS);
  SeccompProgram allowing = Compile(AllowAllBut({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}));
  EXPECT_EQ(ExitCode(RunFiltered(allowing, [] { return ErrnoOf(::syscall(SYS_getppid)); })), 0);
}

TEST_F(SeccompTest, TraceWithoutATracerFailsWithEnosysAndLogAllows) {
  SeccompProgram program = Compile(AllowAllBut({{{"names", {"getppid"}}, {"action", "SCMP_ACT_TRACE"}},
                                                {{"names", {"getpid"}}, {"action", "SCMP_ACT_LOG"}}}));
  EXPECT_EQ(ExitCode(RunFiltered(program, [] { return ErrnoOf(::syscall(SYS_getppid)); })), ENOSYS);
  EXPECT_EQ(ExitCode(RunFiltered(program, [] { return ErrnoOf(::syscall(SYS_getpid)); })), 0);
}

TEST_F(SeccompTest, UnknownSyscallNamesAreSkippedAndFlagsAccepted) {
  Json profile = AllowAllBut({{{"names", {"no_such_syscall_here", "mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}});
  profile["flags"] = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                      "SECCOMP_FILTER_FLAG_TSYNC"};
  SeccompProgram program = Compile(profile);
  EXPECT_NE(program.flags(), 0u);
  std::string target = Path("d");
  EXPECT_EQ(ExitCode(RunFiltered(program, [&] { return ErrnoOf(::mkdir(target.c_str(), 0755)); })), EPERM);
}

TEST_F(SeccompTest, NullProfileIsAnEmptyProgram) {
  Result<SeccompProgram> program = CompileSeccomp(nullptr);
  ASSERT_TRUE(program.ok());
  EXPECT_TRUE(program->empty());
}

TEST_F(SeccompTest, MalformedProfilesAreRefusedNamingTheField) {
  struct Case {
    Json profile;
    std::string field;
  };
  Json rule = {{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}};
  auto with = [&](const char* key, Json value) {
    Json r = rule;
    r[key] = std::move(value);
    return AllowAllBut({r});
  };
  Json bad_arch = AllowAllBut({});
  bad_arch["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"};
  Json bad_flag = AllowAllBut({});
  bad_flag["flags"] = {"SECCOMP_FILTER_FLAG_NEW_LISTENER"};
  const Case cases[] = {
      {{{"defaultAction", "SCMP_ACT_MAYBE"}}, "linux.seccomp.defaultAction"},
      {with("action", "SCMP_ACT_FOO"), "linux.seccomp.syscalls[0].action"},
      {with("action", "SCMP_ACT_NOTIFY"), "linux.seccomp.syscalls[0].action"},
      {with("args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_SOMETIMES"}}}),
       "linux.seccomp.syscalls[0].args[0].op"},
      {with("args", {{{"index", 6}, {"value", 1}, {"op", "SCMP_CMP_EQ"}}}),
       "linux.seccomp.syscalls[0].args[0].index"},
      {with("args", {{{"index", 0}, {"value", -1}, {"op", "SCMP_CMP_EQ"}}}),
       "linux.seccomp.syscalls[0].args[0].value"},
      {with("names", "mkdir"), "linux.seccomp.syscalls[0].names"},
      {with("errnoRet", "EPERM"), "linux.seccomp.syscalls[0].errnoRet"},
      {bad_arch, "linux.seccomp.architectures[1]"},
      {bad_flag, "linux.seccomp.flags[0]"},
      {Json::array(), "linux.seccomp"},
  };
  for (const Case& c : cases) {
    Result<SeccompProgram> program = CompileSeccomp(c.profile);
    ASSERT_FALSE(program.ok()) << c.profile.dump();
    EXPECT_EQ(program.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(program.status().message().rfind(c.field + ":", 0), 0u) << program.status().message();
  }
}

TEST_F(SeccompTest, DefaultProfileDeniesNamespacesMountsAndKeyrings) {
  SeccompProgram program = Compile(DefaultSeccompProfile());
  auto errno_of = [&](std::function<long()> call) {
    return ExitCode(RunFiltered(program, [&] { return ErrnoOf(call()); }));
  };
  EXPECT_EQ(errno_of([] { return ::unshare(CLONE_NEWUSER); }), EPERM);
  EXPECT_EQ(errno_of([] { return ::unshare(CLONE_NEWNS); }), EPERM);
  EXPECT_EQ(errno_of([] { return ::mount("none", "/mnt", "tmpfs", 0, nullptr); }), EPERM);
  EXPECT_EQ(errno_of([] { return ::syscall(SYS_keyctl, 0, 0, 0, 0, 0); }), EPERM);
  EXPECT_EQ(errno_of([] { return ::syscall(SYS_add_key, "user", "k", "v", 1, 0); }), EPERM);
  EXPECT_EQ(errno_of([] { return ::syscall(SYS_bpf, 0, nullptr, 0); }), EPERM);
  EXPECT_EQ(errno_of([] { return ::syscall(SYS_socket, 40 /* AF_VSOCK */, SOCK_STREAM, 0); }), EPERM);
  // clone with a namespace flag is refused; clone3 says ENOSYS so that libc falls back to clone.
  EXPECT_EQ(errno_of([] { return ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0); }), EPERM);
  EXPECT_EQ(errno_of([] {
              clone_args args{};
              args.exit_signal = SIGCHLD;
              return ::syscall(SYS_clone3, &args, sizeof(args));
            }),
            ENOSYS);
  EXPECT_EQ(errno_of([] { return ::personality(0xffffffff) < 0 ? -1 : 0; }), 0);
}

TEST_F(SeccompTest, DefaultProfileRunsBusyboxNormally) {
  SeccompProgram program = Compile(DefaultSeccompProfile());
  std::string out = Path("out");
  std::string work = Path("work");
  std::string script = "set -e; mkdir '" + work + "'; cd '" + work + "'; echo hi > f; cat f; ls; rm f; " +
                       "sleep 0 & wait; grep Seccomp: /proc/self/status; " +
                       "if unshare -U true 2>/dev/null; then echo unshare-worked; fi; " +
                       "if mount -t tmpfs none . 2>/dev/null; then echo mount-worked; fi; echo done";
  int status = RunFiltered(program, [&] {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::dup2(fd, 1) < 0) return 102;
    const char* argv[] = {"sh", "-c", script.c_str(), nullptr};
    ::execv("/bin/busybox", const_cast<char* const*>(argv));
    return 103;
  });
  EXPECT_EQ(ExitCode(status), 0);
  Result<std::string> output = ReadFile(out);
  ASSERT_TRUE(output.ok());
  EXPECT_EQ(*output, "hi\nf\nSeccomp:\t2\ndone\n");
}

}  // namespace
}  // namespace sealroot::boot
