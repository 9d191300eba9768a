#include "boot/container.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/file.h"
#include "base/log.h"
#include "base/thread_annotations.h"
#include "boot/src/cgroups.h"
#include "boot/src/init.h"
#include "boot/src/init_channel.h"
#include "boot/src/pty_relay.h"
#include "boot/src/rootfs.h"
#include "boot/src/supervise.h"

extern char** environ;

namespace sealroot::boot {

Status EnterContainerNamespaces() {
  // The boot holds the keys: no process running as its user (a root container included) may
  // read its memory, ptrace it or open its descriptors through /proc.
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) return ErrnoStatus("making the boot non-dumpable", errno);
  if (::unshare(CLONE_NEWNS) != 0) return ErrnoStatus("creating the boot's mount namespace", errno);
  // Without this, the boot's mounts (FUSE, scratch) could propagate to shared host mounts.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ErrnoStatus("making the mount namespace private", errno);
  }
  return BlockSupervisedSignals();
}

namespace {

using nlohmann::json;

// How the container's init enters its namespaces: new ones come from clone(2) flags (so every
// new namespace is owned by the container's new user namespace), the spec's paths are joined.
struct NamespacePlan {
  unsigned long clone_flags = 0;
  unsigned long unshare_flags = 0;  // with a new user namespace: created inside it by the child
  bool new_cgroup = false;          // unshared by init once the boot placed it in its cgroup
  UniqueFd pid_path;                // the PID namespace to join (the boot's thread joins it to fork)
  std::vector<std::pair<UniqueFd, int>> joins;  // user first
};

constexpr std::pair<std::string_view, int> kNamespaceFlags[] = {
    {"user", CLONE_NEWUSER}, {"pid", CLONE_NEWPID}, {"mount", CLONE_NEWNS},      {"network", CLONE_NEWNET},
    {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP},
};

std::vector<SpecNamespace> EffectiveNamespaces(const BootSpec& spec) {
  if (spec.linux.namespaces) return *spec.linux.namespaces;
  return {{"pid", ""}, {"mount", ""}, {"ipc", ""}, {"uts", ""}};
}

bool Has(const std::vector<SpecNamespace>& list, std::string_view type, bool only_new = false) {
  for (const SpecNamespace& ns : list) {
    if (ns.type == type && (!only_new || ns.path.empty())) return true;
  }
  return false;
}

Result<NamespacePlan> PlanNamespaces(const BootSpec& spec) {
  const std::vector<SpecNamespace> list = EffectiveNamespaces(spec);
  // The boot must stay out of the container's sight: its own PID namespace and mount view.
  if (!Has(list, "pid") || !Has(list, "mount")) {
    return InvalidArgument(
        "boot spec: linux.namespaces must include pid and mount (sealroot-boot never shares its own)");
  }
  if (Has(list, "user", true) && (spec.linux.uid_mappings.empty() || spec.linux.gid_mappings.empty())) {
    return InvalidArgument("boot spec: a new user namespace needs linux.uidMappings and linux.gidMappings");
  }
  NamespacePlan plan;
  for (const auto& [type, flag] : kNamespaceFlags) {
    for (const SpecNamespace& ns : list) {
      if (ns.type != type) continue;
      if (ns.path.empty()) {
        if (flag == CLONE_NEWCGROUP) {
          plan.new_cgroup = true;
        } else {
          plan.clone_flags |= static_cast<unsigned long>(flag);
        }
        continue;
      }
      UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return ErrnoStatus("opening the " + ns.type + " namespace " + ns.path, errno);
      if (flag == CLONE_NEWPID) {
        plan.pid_path = std::move(fd);
      } else {
        plan.joins.emplace_back(std::move(fd), flag);
      }
    }
  }
  // With a new user namespace only it and the PID namespace (init must be its PID 1) come from
  // clone; the child unshares the rest as the namespace's root.
  if (plan.clone_flags & CLONE_NEWUSER) {
    plan.unshare_flags = plan.clone_flags & ~static_cast<unsigned long>(CLONE_NEWUSER | CLONE_NEWPID);
    plan.clone_flags &= CLONE_NEWUSER | CLONE_NEWPID;
  }
  return plan;
}

// The host id the container's root has: 0, or what a new user namespace maps 0 to.
std::uint32_t HostIdOfRoot(const std::vector<IdMapping>& mappings, const NamespacePlan& plan) {
  if (!(plan.clone_flags & CLONE_NEWUSER)) return 0;
  for (const IdMapping& m : mappings) {
    if (m.container_id == 0) return m.host_id;
  }
  return 0;
}

std::string MappingText(const std::vector<IdMapping>& mappings) {
  std::string out;
  for (const IdMapping& m : mappings) {
    out += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " + std::to_string(m.size) +
           "\n";
  }
  return out;
}

Status WriteIdMaps(pid_t pid, const LinuxSpec& linux_spec) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/";
  for (const auto& [file, mappings] :
       {std::pair{"uid_map", &linux_spec.uid_mappings}, std::pair{"gid_map", &linux_spec.gid_mappings}}) {
    UniqueFd fd(::open((dir + file).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return ErrnoStatus("opening the container's " + std::string(file), errno);
    SR_RETURN_IF_ERROR_CTX(WriteAll(fd.get(), AsBytes(MappingText(*mappings))),
                           "writing the container's " + std::string(file));
  }
  return OkStatus();
}

// Why the child exited before it exec'd init (it cannot allocate to say so itself).
constexpr int kChildJoinFailed = 121, kChildIdsFailed = 123, kChildExecFailed = 124, kChildRootFailed = 125;

std::string ChildFailure(int code) {
  switch (code) {
    case kChildJoinFailed:
      return "joining a namespace of linux.namespaces failed";
    case kChildIdsFailed:
      return "becoming root of the container's user namespace failed";
    case kChildExecFailed:
      return "executing the container's init failed";
    case kChildRootFailed:
      return "opening the container's root failed";
    default:
      return "the container's init exited with code " + std::to_string(code);
  }
}

// The clone(2) child, between clone and execveat: async-signal-safe calls only (the boot has
// other threads). It waits for the boot's go (id maps written), joins and
// unshares what is left, then replaces itself with a fresh init, dropping the boot's memory.
[[noreturn]] void BecomeInit(const NamespacePlan& plan, int go, int channel, int exe, const char* root,
                             char* const argv[], char* const envp[]) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  char byte;
  if (::read(go, &byte, 1) != 1) ::_exit(kChildExecFailed);
  for (const auto& [fd, type] : plan.joins) {
    if (::setns(fd.get(), type) != 0) ::_exit(kChildJoinFailed);
  }
  if ((plan.unshare_flags & CLONE_NEWNS) && ::unshare(CLONE_NEWNS) != 0) ::_exit(kChildJoinFailed);
  // Still with the host's ids: the root's directory may be below directories only they reach.
  int root_fd = ::open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) ::_exit(kChildRootFailed);
  if (plan.clone_flags & CLONE_NEWUSER) {
    // runc's order: root of the new user namespace first, then the other namespaces (their
    // kernel objects, e.g. the mqueue root, are created as that root), then the group.
    // The raw system calls: glibc's setresuid/setresgid would ask every thread of the boot to
    // change ids too, and a raw clone(2) child still lists them (none exists here), so the
    // wrapper could wait forever for a thread that is not there.
    if (::syscall(SYS_setresuid, 0, 0, 0) != 0) ::_exit(kChildIdsFailed);
    if (::unshare(static_cast<int>(plan.unshare_flags & ~static_cast<unsigned long>(CLONE_NEWNS))) != 0) {
      ::_exit(kChildJoinFailed);
    }
  }
  if ((plan.clone_flags & CLONE_NEWUSER) && ::syscall(SYS_setresgid, 0, 0, 0) != 0) ::_exit(kChildIdsFailed);
  // Both above the target numbers first, so that neither dup2 overwrites the other.
  int high_exe = ::fcntl(exe, F_DUPFD_CLOEXEC, 16), high_channel = ::fcntl(channel, F_DUPFD_CLOEXEC, 16);
  int high_root = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 16);
  if (high_exe < 0 || high_channel < 0 || high_root < 0 || ::dup2(high_exe, kInitChannelFd + 1) < 0 ||
      ::dup2(high_channel, kInitChannelFd) < 0 || ::dup2(high_root, kInitRootFd) < 0) {
    ::_exit(kChildExecFailed);
  }
  ::close_range(kInitRootFd + 1, ~0U, 0);
  ::fcntl(kInitChannelFd + 1, F_SETFD, FD_CLOEXEC);
  ::syscall(SYS_execveat, kInitChannelFd + 1, "", argv, envp, AT_EMPTY_PATH);
  ::_exit(kChildExecFailed);
}

// Only the sanitizers' settings reach init's environment (tests run it under ASan).
std::vector<std::string> InitEnvironment() {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("ASAN_OPTIONS=") || entry.starts_with("UBSAN_OPTIONS=") ||
        entry.starts_with("LSAN_OPTIONS=")) {
      out.emplace_back(entry);
    }
  }
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// One exec'd process as the boot tracks it: two eventfds fire when init reports its start and
// its exit.
struct ExecState {
  UniqueFd started_fd{::eventfd(0, EFD_CLOEXEC)};
  UniqueFd exited_fd{::eventfd(0, EFD_CLOEXEC)};
  Mutex mu;
  Status start SR_GUARDED_BY(mu) = Unavailable("exec: the container ended");
  int exit_code SR_GUARDED_BY(mu) = 255;
  UniqueFd pty_master SR_GUARDED_BY(mu);  // a terminal process's, until its relay takes it
};

Status ResizeRelay(PtyRelay* relay, unsigned height, unsigned width) {
  if (relay == nullptr) return FailedPrecondition("the process has no terminal");
  return relay->Resize(height, width);
}

void Fire(const UniqueFd& fd) {
  std::uint64_t one = 1;
  (void)::write(fd.get(), &one, sizeof one);
}

class InitHandle : public ContainerInit, public std::enable_shared_from_this<InitHandle> {
 public:
  explicit InitHandle(UniqueFd channel) : channel_(std::move(channel)) {}
  ~InitHandle() override {
    ::shutdown(channel_.get(), SHUT_RDWR);
    if (reader_.joinable()) reader_.join();
  }

  void StartReader() {
    reader_ = std::thread([this] { ReadLoop(); });
  }

  Status Send(const json& body, std::span<const int> fds = {}) {
    MutexLock lock(send_mu_);
    return SendInitMessage(channel_.get(), body, fds);
  }

  Result<std::unique_ptr<ContainerExec>> Spawn(const ProcessSpec& process,
                                               const std::array<int, 3>& stdio) override;

  // The entrypoint's, when it has a terminal; reset (drained) once the entrypoint ended.
  void SetEntrypointRelay(std::unique_ptr<PtyRelay> relay) {
    MutexLock lock(relay_mu_);
    entrypoint_relay_ = std::move(relay);
  }
  Status ResizeTerminal(unsigned height, unsigned width) override {
    MutexLock lock(relay_mu_);
    return ResizeRelay(entrypoint_relay_.get(), height, width);
  }

  // The container's cgroup while it lives; RunContainer sets it to nullptr before destroying it.
  void SetCgroup(Cgroup* cgroup) {
    MutexLock lock(cgroup_mu_);
    cgroup_ = cgroup;
  }
  Result<CgroupStats> Stats() override {
    MutexLock lock(cgroup_mu_);
    if (cgroup_ == nullptr) return FailedPrecondition("the container has ended");
    return cgroup_->Stats();
  }
  Status UpdateResources(const json& resources) override {
    MutexLock lock(cgroup_mu_);
    if (cgroup_ == nullptr) return FailedPrecondition("the container has ended");
    return cgroup_->Update(resources);
  }

 private:
  void ReadLoop() {
    while (true) {
      auto message = ReceiveInitMessage(channel_.get());
      if (!message.ok()) break;
      const json& body = message->body;
      const std::string type = body.value("type", "");
      std::shared_ptr<ExecState> state = Find(body.value("id", std::uint64_t{0}), type == "exit");
      if (!state) continue;
      MutexLock lock(state->mu);
      if (type == "exec-started") {
        state->start = OkStatus();
        if (!message->fds.empty()) state->pty_master = std::move(message->fds[0]);
        Fire(state->started_fd);
      } else if (type == "exec-error") {
        state->start = Status(static_cast<Code>(body.value("code", 13)), body.value("message", ""));
        Fire(state->started_fd);
      } else if (type == "exit") {
        state->exit_code = body.value("code", 255);
        Fire(state->exited_fd);
      }
    }
    // Init is gone, and with it every process of the container.
    std::map<std::uint64_t, std::shared_ptr<ExecState>> left;
    {
      MutexLock lock(mu_);
      left.swap(execs_);
      closed_ = true;
    }
    for (auto& [id, state] : left) {
      Fire(state->started_fd);
      Fire(state->exited_fd);
    }
  }

  std::shared_ptr<ExecState> Find(std::uint64_t id, bool erase) {
    MutexLock lock(mu_);
    auto it = execs_.find(id);
    if (it == execs_.end()) return nullptr;
    std::shared_ptr<ExecState> out = it->second;
    if (erase) execs_.erase(it);
    return out;
  }

  UniqueFd channel_;
  Mutex send_mu_;
  Mutex mu_;
  std::map<std::uint64_t, std::shared_ptr<ExecState>> execs_ SR_GUARDED_BY(mu_);
  std::uint64_t next_id_ SR_GUARDED_BY(mu_) = 1;
  bool closed_ SR_GUARDED_BY(mu_) = false;
  Mutex relay_mu_;
  std::unique_ptr<PtyRelay> entrypoint_relay_ SR_GUARDED_BY(relay_mu_);
  Mutex cgroup_mu_;
  Cgroup* cgroup_ SR_GUARDED_BY(cgroup_mu_) = nullptr;
  std::thread reader_;
};

class ExecHandle : public ContainerExec {
 public:
  ExecHandle(std::shared_ptr<InitHandle> init, std::shared_ptr<ExecState> state, std::uint64_t id,
             std::unique_ptr<PtyRelay> relay)
      : init_(std::move(init)), state_(std::move(state)), id_(id), relay_(std::move(relay)) {}
  int exit_fd() const override { return state_->exited_fd.get(); }
  int exit_code() const override {
    MutexLock lock(state_->mu);
    return state_->exit_code;
  }
  void Signal(int sig) override { (void)init_->Send({{"type", "signal"}, {"id", id_}, {"signal", sig}}); }
  Status ResizeTerminal(unsigned height, unsigned width) override {
    return ResizeRelay(relay_.get(), height, width);
  }

 private:
  std::shared_ptr<InitHandle> init_;
  std::shared_ptr<ExecState> state_;
  std::uint64_t id_;
  std::unique_ptr<PtyRelay> relay_;  // drained and stopped when the handle goes
};

Result<std::unique_ptr<ContainerExec>> InitHandle::Spawn(const ProcessSpec& process,
                                                         const std::array<int, 3>& stdio) {
  if (process.args.empty()) return InvalidArgument("exec: no command");
  auto state = std::make_shared<ExecState>();
  if (!state->started_fd || !state->exited_fd) return ErrnoStatus("exec: eventfd", errno);
  std::uint64_t id;
  {
    MutexLock lock(mu_);
    if (closed_) return FailedPrecondition("exec: the container has exited");
    id = next_id_++;
    execs_[id] = state;
  }
  Status sent = Send({{"type", "exec"}, {"id", id}, {"process", EncodeProcess(process)}}, stdio);
  if (!sent.ok()) {
    (void)Find(id, /*erase=*/true);
    return sent;
  }
  std::uint64_t count;
  if (::read(state->started_fd.get(), &count, sizeof count) != sizeof count)
    return ErrnoStatus("exec", errno);
  UniqueFd pty_master;
  {
    MutexLock lock(state->mu);
    if (!state->start.ok()) {
      (void)Find(id, /*erase=*/true);
      return state->start;
    }
    pty_master = std::move(state->pty_master);
  }
  std::unique_ptr<PtyRelay> relay;
  if (process.terminal) {
    if (!pty_master) return Internal("exec: init sent no pty for a terminal process");
    SR_ASSIGN_OR_RETURN(relay, PtyRelay::Start(std::move(pty_master), stdio[0], stdio[1]));
  }
  return std::unique_ptr<ContainerExec>(
      new ExecHandle(shared_from_this(), std::move(state), id, std::move(relay)));
}

json StartMessage(const ContainerOptions& options, const std::vector<SpecNamespace>& namespaces) {
  return {{"type", "start"},
          {"root", options.root},
          {"spec", options.spec_text},
          {"process", EncodeProcess(options.process)},
          {"userNamespace", Has(namespaces, "user")},
          {"cgroupNamespace", Has(namespaces, "cgroup")},
          {"newCgroupNamespace", Has(namespaces, "cgroup", /*only_new=*/true)},
          {"utsNamespace", Has(namespaces, "uts")},
          {"networkNamespace", Has(namespaces, "network", /*only_new=*/true)}};
}

// The default cgroup's name: the container id and this boot's pid, so that what a boot killed by
// SIGKILL leaves behind (an empty cgroup) never blocks the container's next start.
std::string CgroupName(const ContainerOptions& options) {
  return options.container_id + "-" + std::to_string(::getpid());
}

// Clones the child that becomes init, in its new namespaces. Returns its pid (in the boot's
// PID namespace).
Result<pid_t> CloneInit(const NamespacePlan& plan, const std::string& root, int go, int channel) {
  UniqueFd exe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!exe) return ErrnoStatus("opening the boot's own executable", errno);
  std::vector<std::string> args = {"sealroot-boot", kInitFlag};
  std::vector<std::string> env = InitEnvironment();
  std::vector<char*> argv = CStrings(args);
  std::vector<char*> envp = CStrings(env);
  UniqueFd own_pid_ns;
  if (plan.pid_path) {
    own_pid_ns.Reset(::open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC));
    if (!own_pid_ns || ::setns(plan.pid_path.get(), CLONE_NEWPID) != 0)
      return ErrnoStatus("joining the PID namespace of linux.namespaces", errno);
  }
  pid_t pid =
      static_cast<pid_t>(::syscall(SYS_clone, plan.clone_flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
  if (pid == 0) BecomeInit(plan, go, channel, exe.get(), root.c_str(), argv.data(), envp.data());
  const int clone_errno = errno;
  if (own_pid_ns && ::setns(own_pid_ns.get(), CLONE_NEWPID) != 0) {
    SR_LOG(kWarning) << "returning to the boot's PID namespace: " << std::strerror(errno);
  }
  if (pid < 0) return ErrnoStatus("creating the container's init (clone)", clone_errno);
  return pid;
}

}  // namespace

Result<int> RunContainer(const ContainerOptions& options) {
  if (options.process.args.empty()) return InvalidArgument("running a container: no command");
  SR_ASSIGN_OR_RETURN(NamespacePlan plan, PlanNamespaces(options.spec));
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return ErrnoStatus("socketpair", errno);
  UniqueFd channel(pair[0]), init_end(pair[1]);
  int go_pipe[2];
  if (::pipe2(go_pipe, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd go_read(go_pipe[0]), go_write(go_pipe[1]);

  // Created before init exists and joined before it runs anything: every process of the
  // container is in it; destroyed (what is left killed) when the container ends.
  const json doc = json::parse(options.spec_text, nullptr, /*allow_exceptions=*/false);
  const json* linux_doc = doc.is_object() && doc.contains("linux") ? &doc["linux"] : nullptr;
  auto subtree = [&](const char* key) -> json {
    return linux_doc != nullptr && linux_doc->is_object() && linux_doc->contains(key) ? (*linux_doc)[key]
                                                                                      : json();
  };
  // An explicit linux.cgroupsPath is the caller's to keep unique.
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Cgroup> cgroup,
                      Cgroup::Create(options.spec.linux.cgroups_path, subtree("resources"),
                                     CgroupName(options), subtree("devices")));
  SR_ASSIGN_OR_RETURN(std::string root, PrepareRoot(options.root, options.in_memory_upper,
                                                    HostIdOfRoot(options.spec.linux.uid_mappings, plan),
                                                    HostIdOfRoot(options.spec.linux.gid_mappings, plan)));
  // The in-memory layer sits on the boot's root mount (the FUSE mount, whose server ends only
  // once nothing mounts it): detached when the container ends, whatever the outcome.
  auto detach_layer = [&](void*) {
    if (options.in_memory_upper && ::umount2(options.root.c_str(), MNT_DETACH) != 0) {
      SR_LOG(kWarning) << "detaching the in-memory layer: " << std::strerror(errno);
    }
  };
  std::unique_ptr<void, decltype(detach_layer)> layer_guard(reinterpret_cast<void*>(1), detach_layer);
  SR_ASSIGN_OR_RETURN(pid_t init, CloneInit(plan, root, go_read.get(), init_end.get()));
  go_read.Reset();
  init_end.Reset();
  auto reap_failed = [&](Status why) -> Status {
    ::kill(init, SIGKILL);
    int status = 0;
    ::waitpid(init, &status, 0);
    return why.WithContext("container root " + options.root);
  };
  if (plan.clone_flags & CLONE_NEWUSER) {
    if (Status mapped = WriteIdMaps(init, options.spec.linux); !mapped.ok()) return reap_failed(mapped);
  }
  if (::write(go_write.get(), "g", 1) != 1) return reap_failed(ErrnoStatus("starting init", errno));
  // Init joins the cgroup once it is ready, before it runs anything of the container: what its
  // own start-up touched (the boot binary's pages, a sanitizer's runtime) stays charged where the
  // boot runs, as runc's runtime is not counted against the container. Init stays, as the
  // container's supervisor: otherwise a small memory limit kills it before the entrypoint runs.
  if (auto ready = ReceiveInitMessage(channel.get());
      !ready.ok() || ready->body.value("type", "") != "ready") {
    int status = 0;
    ::waitpid(init, &status, 0);
    return Internal(ChildFailure(ExitCodeOf(status))).WithContext("container root " + options.root);
  }
  if (Status joined = cgroup->AddProcess(init); !joined.ok()) return reap_failed(joined);
  const std::vector<SpecNamespace> namespaces = EffectiveNamespaces(options.spec);
  if (Status sent = SendInitMessage(channel.get(), StartMessage(options, namespaces)); !sent.ok()) {
    int status = 0;
    ::waitpid(init, &status, 0);
    return Internal(ChildFailure(ExitCodeOf(status))).WithContext("container root " + options.root);
  }
  auto reply = ReceiveInitMessage(channel.get());
  if (!reply.ok()) {
    int status = 0;
    ::waitpid(init, &status, 0);
    return Internal(ChildFailure(ExitCodeOf(status))).WithContext("container root " + options.root);
  }
  if (reply->body.value("type", "") != "started") {
    return reap_failed(
        Status(static_cast<Code>(reply->body.value("code", 13)), reply->body.value("message", "")));
  }
  auto handle = std::make_shared<InitHandle>(std::move(channel));
  // Exec-socket requests may hold the handle past this function: they lose the cgroup first.
  handle->SetCgroup(cgroup.get());
  auto drop_cgroup = [&](void*) { handle->SetCgroup(nullptr); };
  std::unique_ptr<void, decltype(drop_cgroup)> cgroup_guard(reinterpret_cast<void*>(1), drop_cgroup);
  if (options.process.terminal) {
    if (reply->fds.empty()) return reap_failed(Internal("init sent no pty for the terminal"));
    auto relay = PtyRelay::Start(std::move(reply->fds[0]), STDIN_FILENO, STDOUT_FILENO);
    if (!relay.ok()) return reap_failed(relay.status());
    handle->SetEntrypointRelay(std::move(*relay));
  }
  handle->StartReader();
  if (options.on_started) options.on_started(handle);
  Result<int> exit_code = Supervise(init, /*reap_all=*/false);
  handle->SetEntrypointRelay(nullptr);  // its output is the boot's before the boot reports the exit
  return exit_code;
}

}  // namespace sealroot::boot
