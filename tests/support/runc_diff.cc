#include "tests/support/runc_diff.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace sealroot::testing::runc_diff {
namespace {

using nlohmann::json;

void Check(const CommandResult& r, const std::string& what) {
  if (!r.ok()) throw std::runtime_error(what + " failed (" + std::to_string(r.exit_code) + "): " + r.err);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A bundle directory and container id of its own for each runc run.
std::pair<std::string, std::string> NewBundle(const json& spec, const std::string& work_dir) {
  static std::atomic<int> runs = 0;
  const std::string n = std::to_string(++runs);
  const std::string bundle = work_dir + "/runc-" + n;
  std::filesystem::create_directories(bundle);
  std::ofstream(bundle + "/config.json") << spec.dump(2);
  return {bundle, "sealroot-diff-" + std::to_string(::getpid()) + "-" + n};
}

void SetEnv(json& spec, const std::string& name, const std::string& value) {
  for (json& entry : spec["process"]["env"]) {
    if (entry.get<std::string>().starts_with(name + "=")) entry = name + "=" + value;
  }
}

}  // namespace

void MakeProbeRoot(const std::string& dir) {
  Check(Shell("set -e; mkdir -p '" + dir + "/bin' '" + dir + "/etc'; cp /bin/busybox '" + dir +
              "/bin/'; chroot '" + dir + "' /bin/busybox --install -s /bin; cp '" + SEALROOT_RUNC_PROBE +
              "' '" + dir + "/probe.sh'"),
        "making the probe root");
  std::ofstream(dir + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
  std::ofstream(dir + "/etc/group") << "root:x:0:\ntty:x:5:\n";
}

void MakeUserNamespaceRoot(const std::string& root, const std::string& dir) {
  const std::string id = std::to_string(kUserNamespaceHostId);
  Check(Shell("[ -d '" + dir + "' ] || { cp -a '" + root + "' '" + dir + "' && chown -R " + id + ":" + id +
              " '" + dir + "'; }"),
        "making the user namespace's root");
}

LoopbackListener::LoopbackListener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!fd_ || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd_.get(), 64) != 0 ||
      ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(std::string("loopback listener: ") + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
}

json ProbeSpec(const std::string& work_dir, const std::string& root, int port) {
  Check(Run({"runc", "spec", "--bundle", work_dir}), "runc spec");
  json spec = json::parse(ReadText(work_dir + "/config.json"));
  spec["root"]["path"] = root;
  spec["process"]["args"] = {"/bin/sh", "/probe.sh"};
  spec["process"]["terminal"] = false;
  for (const char* ns : {"pid", "mnt", "net", "ipc", "uts", "user", "cgroup"}) {
    const std::string link = std::filesystem::read_symlink(std::string("/proc/self/ns/") + ns).string();
    std::string inode;
    for (char c : link) {
      if (c >= '0' && c <= '9') inode += c;
    }
    spec["process"]["env"].push_back(std::string("HOST_NS_") + ns + "=" + inode);
  }
  spec["process"]["env"].push_back("HOST_PORT=" + std::to_string(port));
  spec["process"]["env"].push_back("PROBE_EXTRA=");
  return spec;
}

void AddCapabilities(json& spec) {
  for (const char* set : {"bounding", "effective", "permitted"}) {
    for (const char* cap : {"CAP_NET_ADMIN", "CAP_MKNOD", "CAP_SYS_PTRACE"}) {
      spec["process"]["capabilities"][set].push_back(cap);
    }
  }
  spec["process"]["capabilities"]["ambient"] = {"CAP_KILL"};
  spec["process"]["capabilities"]["inheritable"] = {"CAP_KILL"};
  spec["process"]["noNewPrivileges"] = false;
}

void AddUserNamespace(json& spec) {
  spec["linux"]["namespaces"].push_back({{"type", "user"}});
  const json mapping = {{{"containerID", 0}, {"hostID", kUserNamespaceHostId}, {"size", 65536}}};
  spec["linux"]["uidMappings"] = mapping;
  spec["linux"]["gidMappings"] = mapping;
}

void DenyMkdirWithErrno(json& spec) {
  spec["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64"}},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 13}}}}};
}

void LimitMemoryAndPids(json& spec) {
  spec["linux"]["resources"]["memory"] = {{"limit", 64 << 20}, {"swap", 64 << 20}};
  spec["linux"]["resources"]["pids"] = {{"limit", 20}};
  SetEnv(spec, "PROBE_EXTRA", "memory pids");
}

void SetHostnameSysctlsOomScore(json& spec) {
  spec["hostname"] = "probe-host";
  spec["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}, {"kernel.shmmni", "1024"}};
  spec["process"]["oomScoreAdj"] = 500;
  spec["root"]["readonly"] = false;
}

std::vector<std::string> TerminalProbeArgs() {
  return {"/bin/sh", "-c",
          "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty; stty size; tty; "
          "stat -c '%U:%G %a' $(tty); read -r pid comm state ppid pgrp session rest < "
          "/proc/$$/stat; [ $session = $$ ] && echo leader; exec 3</dev/tty && echo ctty; "
          "stty -a; echo err >&2"};
}

void UseTerminal(json& spec) {
  spec["process"]["terminal"] = true;
  spec["process"]["consoleSize"] = {{"height", 33}, {"width", 101}};
  spec["process"]["args"] = TerminalProbeArgs();
}

CommandResult RunRunc(const json& spec, const std::string& work_dir) {
  auto [bundle, id] = NewBundle(spec, work_dir);
  CommandOptions options;
  options.timeout = std::chrono::seconds(120);
  CommandResult r = Run({"runc", "run", "--bundle", bundle, id}, options);
  Run({"runc", "delete", "--force", id});
  return r;
}

std::string RunRuncWithConsole(const json& spec, const std::string& work_dir) {
  auto [bundle, id] = NewBundle(spec, work_dir);
  const std::string socket_path = bundle + "/console.sock";
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.get(), 1) != 0) {
    throw std::runtime_error("console socket " + socket_path + ": " + std::strerror(errno));
  }
  Check(Run({"runc", "run", "-d", "--console-socket", socket_path, "--bundle", bundle, id}), "runc run -d");
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
  Run({"runc", "delete", "--force", id});
  return out;
}

std::string DiffLines(const std::string& runc, const std::string& other) {
  std::map<std::string, int> count;
  auto tally = [&](const std::string& text, int sign) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) count[line] += sign;
  };
  tally(runc, 1);
  tally(other, -1);
  std::string out;
  for (const auto& [line, n] : count) {
    for (int i = 0; i < n; ++i) out += "- " + line + "\n";
    for (int i = 0; i > n; --i) out += "+ " + line + "\n";
  }
  return out;
}

}  // namespace sealroot::testing::runc_diff
