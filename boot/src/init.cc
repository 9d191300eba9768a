#include "boot/src/init.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "base/fd.h"
#include "base/file.h"
#include "boot/src/capabilities.h"
#include "boot/src/supervise.h"
#include "boot/src/user.h"

namespace sealroot::boot {
namespace {

constexpr std::string_view kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::size_t kMaxUserDbBytes = 4u << 20;

Result<std::string> ReadIfPresent(const std::string& path) {
  auto content = ReadFile(path, kMaxUserDbBytes);
  if (!content.ok() && content.status().code() == Code::kNotFound) return std::string();
  return content;
}

const std::string* FindEnv(const std::vector<std::string>& env, std::string_view key) {
  for (const std::string& entry : env) {
    if (entry.size() > key.size() && entry.compare(0, key.size(), key) == 0 && entry[key.size()] == '=')
      return &entry;
  }
  return nullptr;
}

// As runc and Docker do: a process without PATH or HOME gets the usual defaults.
std::vector<std::string> WithDefaults(std::vector<std::string> env, const std::string& home) {
  if (!FindEnv(env, "PATH")) env.push_back("PATH=" + std::string(kDefaultPath));
  if (!FindEnv(env, "HOME")) env.push_back("HOME=" + home);
  return env;
}

// execvp's lookup, but with the container's PATH rather than the boot's.
Result<std::string> FindExecutable(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  const std::string* path_entry = FindEnv(env, "PATH");
  std::string_view path = std::string_view(*path_entry).substr(5);
  while (true) {
    std::size_t colon = path.find(':');
    std::string dir(path.substr(0, colon));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return NotFound("executable '" + name + "' not found in the container's PATH");
}

Status WriteProcFile(const char* path, const std::string& value) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(std::string("opening ") + path, errno);
  return WriteAll(fd.get(), AsBytes(value)).WithContext(path);
}

// In runc's order: limits while still privileged, the bounding set before the ids change (with
// the permitted set kept across setuid), then the capability sets, cwd and no_new_privs.
Status ApplyCredentials(const ProcessSpec& process, const Credentials& creds) {
  if (process.oom_score_adj) {
    SR_RETURN_IF_ERROR(WriteProcFile("/proc/self/oom_score_adj", std::to_string(*process.oom_score_adj)));
  }
  for (const Rlimit& limit : process.rlimits) {
    rlimit value{limit.soft, limit.hard};
    if (::setrlimit(static_cast<__rlimit_resource_t>(limit.resource), &value) != 0) {
      return ErrnoStatus("setting rlimit " + std::to_string(limit.resource), errno);
    }
  }
  if (process.capabilities) SR_RETURN_IF_ERROR(DropBoundingSet(*process.capabilities));
  if (::setgroups(creds.groups.size(), creds.groups.data()) != 0) return ErrnoStatus("setgroups", errno);
  if (::setresgid(creds.gid, creds.gid, creds.gid) != 0) return ErrnoStatus("setting gid", errno);
  if (::setresuid(creds.uid, creds.uid, creds.uid) != 0) return ErrnoStatus("setting uid", errno);
  if (process.capabilities) SR_RETURN_IF_ERROR(SetCapabilities(*process.capabilities));
  if (::chdir(process.cwd.c_str()) != 0)
    return ErrnoStatus("entering working directory " + process.cwd, errno);
  if (process.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return ErrnoStatus("setting no_new_privileges", errno);
  }
  return OkStatus();
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Status ExecEntrypoint(const ProcessSpec& process, const SeccompProgram& seccomp) {
  SR_ASSIGN_OR_RETURN(std::string passwd, ReadIfPresent("/etc/passwd"));
  SR_ASSIGN_OR_RETURN(std::string group, ReadIfPresent("/etc/group"));
  SR_ASSIGN_OR_RETURN(Credentials creds, ResolveUser(process.user, passwd, group));
  std::vector<std::string> env = WithDefaults(process.env, creds.home);
  // Docker creates a missing WorkingDir; the root's writable layer takes it.
  SR_RETURN_IF_ERROR_CTX(MakeDirs(process.cwd), "creating working directory " + process.cwd);
  if (!process.no_new_privileges) SR_RETURN_IF_ERROR_CTX(seccomp.Load(), "loading the seccomp filter");
  SR_RETURN_IF_ERROR(ApplyCredentials(process, creds));
  std::vector<std::string> args = process.args;
  SR_ASSIGN_OR_RETURN(std::string path, FindExecutable(args[0], env));
  std::vector<char*> argv = CStrings(args);
  std::vector<char*> envp = CStrings(env);
  ::umask(process.umask.value_or(022));
  ResetSignalsForExec();
  // Descriptors the boot holds (FUSE device, attestation socket) must not reach the workload.
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  if (process.no_new_privileges) SR_RETURN_IF_ERROR_CTX(seccomp.Load(), "loading the seccomp filter");
  ::execve(path.c_str(), argv.data(), envp.data());
  return ErrnoStatus("executing " + path, errno);
}

[[noreturn]] void FailSetup(int status_pipe, const Status& status) {
  std::string report = std::to_string(static_cast<int>(status.code())) + " " + status.message();
  (void)WriteAll(status_pipe, AsBytes(report));
  ::_exit(127);
}

Status DecodeSetupError(std::string_view report) {
  int code = 0;
  auto [end, ec] = std::from_chars(report.data(), report.data() + report.size(), code);
  if (ec != std::errc() || end == report.data() + report.size() || *end != ' ' || code <= 0 || code > 16) {
    return Internal("container setup failed: malformed report");
  }
  return Status(static_cast<Code>(code), std::string(report.substr(end + 1 - report.data())));
}

}  // namespace sealroot::boot
