#include "boot/src/cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <limits>
#include <set>
#include <thread>

#include "base/file.h"
#include "base/mounts.h"
#include "boot/src/cgroup_files.h"
#include "boot/src/cgroup_resources.h"

namespace sealroot::boot {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr char kCgroupRoot[] = "/sys/fs/cgroup";
constexpr std::string_view kV1Controllers[] = {"cpu",     "cpuacct", "cpuset",   "memory", "devices",
                                               "freezer", "net_cls", "net_prio", "blkio",  "perf_event",
                                               "hugetlb", "pids",    "rdma",     "misc"};
constexpr std::string_view kV2Controllers[] = {"cpu", "cpuset", "io", "memory", "pids", "hugetlb"};
// How long destruction waits for killed processes to leave and for a busy directory to empty.
constexpr milliseconds kDrainTimeout{5000};
constexpr milliseconds kPoll{10};

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  while (!s.empty()) {
    std::size_t end = s.find(sep);
    if (end != 0) parts.emplace_back(s.substr(0, end));
    if (end == std::string_view::npos) break;
    s.remove_prefix(end + 1);
  }
  return parts;
}

struct V1Mount {
  std::string point;
  std::string root;  // the hierarchy path mounted there ("/" unless in a container)
  std::vector<std::string> controllers;
};

// Every v1 hierarchy, plus the v2 one of a hybrid host (controllers empty), which runc joins too.
Result<std::vector<V1Mount>> V1Mounts() {
  SR_ASSIGN_OR_RETURN(std::vector<MountInfo> table, ReadMountInfo());
  std::vector<V1Mount> mounts;
  std::set<std::vector<std::string>> seen;
  for (const MountInfo& m : table) {
    V1Mount mount{m.mount_point, m.root, {}};
    if (m.fs_type == "cgroup2" && seen.insert(std::vector<std::string>()).second)
      mounts.push_back(std::move(mount));
    if (m.fs_type != "cgroup") continue;
    for (const std::string& option : Split(m.super_options, ',')) {
      bool known =
          std::find(std::begin(kV1Controllers), std::end(kV1Controllers), option) != std::end(kV1Controllers);
      if (known || option.rfind("name=", 0) == 0) mount.controllers.push_back(option);
    }
    std::sort(mount.controllers.begin(), mount.controllers.end());
    if (mount.controllers.empty() || !seen.insert(mount.controllers).second) continue;
    mounts.push_back(std::move(mount));
  }
  if (mounts.size() == seen.count(std::vector<std::string>()))
    return FailedPrecondition("no cgroup v1 hierarchy is mounted");
  return mounts;
}

// The calling process's cgroup in the hierarchy with these (sorted) controllers; for v2, the
// "0::" line (empty controllers).
Result<std::string> OwnCgroup(const std::vector<std::string>& controllers) {
  SR_ASSIGN_OR_RETURN(std::string content, ReadFile("/proc/self/cgroup"));
  for (const std::string& line : Split(content, '\n')) {
    std::size_t first = line.find(':');
    std::size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::vector<std::string> listed =
        Split(std::string_view(line).substr(first + 1, second - first - 1), ',');
    std::sort(listed.begin(), listed.end());
    if (listed == controllers) return line.substr(second + 1);
  }
  return NotFound("the boot's own cgroup is not in /proc/self/cgroup");
}

// The cgroup's path below a hierarchy root, as components.
Result<std::vector<std::string>> InnerPath(std::string_view cgroups_path, std::string_view container_id,
                                           bool& absolute) {
  if (container_id.empty() || container_id.find('/') != std::string_view::npos || container_id == "." ||
      container_id == "..") {
    return InvalidArgument("container id '" + std::string(container_id) + "' cannot name a cgroup");
  }
  std::string path =
      cgroups_path.empty() ? "sealroot/" + std::string(container_id) : std::string(cgroups_path);
  absolute = path[0] == '/';
  if (!absolute && std::count(path.begin(), path.end(), ':') == 2) {
    return InvalidArgument(
        "linux.cgroupsPath: '" + path +
        "' is a systemd slice:prefix:name path, and sealroot-boot has no systemd cgroup driver");
  }
  std::vector<std::string> components = Split(path, '/');
  for (const std::string& c : components) {
    if (c == "." || c == "..")
      return InvalidArgument("linux.cgroupsPath: '" + path + "' must not contain . or ..");
  }
  if (components.empty()) return InvalidArgument("linux.cgroupsPath: '" + path + "' names no cgroup");
  return components;
}

// A new v1 cpuset cgroup has no CPUs or memory nodes, and takes no process until it has some.
Status InheritCpuset(const std::string& parent, const std::string& dir) {
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    SR_ASSIGN_OR_RETURN(std::string value, ReadCgroupFile(parent, file));
    SR_ASSIGN_OR_RETURN(std::string current, ReadCgroupFile(dir, file));
    if (current.empty()) SR_RETURN_IF_ERROR(WriteCgroupFile(dir, file, value));
  }
  return OkStatus();
}

// v2: a controller is usable in a cgroup only when every ancestor enabled it for its children.
void EnableControllers(const std::string& dir) {
  Result<std::string> available = ReadCgroupFile(dir, "cgroup.controllers");
  if (!available.ok()) return;
  for (const std::string& controller : Split(*available, ' ')) {
    if (std::find(std::begin(kV2Controllers), std::end(kV2Controllers), controller) ==
        std::end(kV2Controllers))
      continue;
    // A failure (processes in `dir`) shows later as a missing control file, refused by name.
    (void)WriteCgroupFile(dir, "cgroup.subtree_control", "+" + controller);
  }
}

std::uint64_t ParseCount(std::string_view text) {
  if (text == "max") return std::numeric_limits<std::uint64_t>::max();
  std::uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

Result<std::uint64_t> ReadCount(const std::string& dir, std::string_view file) {
  SR_ASSIGN_OR_RETURN(std::string text, ReadCgroupFile(dir, file));
  return ParseCount(text);
}

// The cgroups directly below `dir`.
std::vector<std::string> Subdirectories(const std::string& dir) {
  std::vector<std::string> children;
  std::unique_ptr<DIR, int (*)(DIR*)> listing(::opendir(dir.c_str()), ::closedir);
  for (dirent* entry = listing ? ::readdir(listing.get()) : nullptr; entry;
       entry = ::readdir(listing.get())) {
    std::string_view name = entry->d_name;
    if (entry->d_type == DT_DIR && name != "." && name != "..")
      children.push_back(dir + "/" + std::string(name));
  }
  return children;
}

// An existing cgroup `dir` is taken over only when nothing holds it: no live Cgroup (they hold a
// lock on their leaves) and no process (a boot killed with SIGKILL leaves an empty one behind).
Status TakeOverLeftCgroup(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening cgroup " + dir, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    return AlreadyExists("cgroup " + dir + " is another container's");
  Result<std::string> procs = ReadCgroupFile(dir, "cgroup.procs");
  if (!procs.ok()) return std::move(procs).status();
  if (!procs->empty()) return AlreadyExists("cgroup " + dir + " exists already and has processes in it");
  return OkStatus();
}

// Every process in `dir` and in the cgroups below it.
void CollectPids(const std::string& dir, std::set<pid_t>& pids) {
  if (Result<std::string> procs = ReadCgroupFile(dir, "cgroup.procs"); procs.ok()) {
    for (const std::string& pid : Split(*procs, '\n')) pids.insert(static_cast<pid_t>(ParseCount(pid)));
  }
  for (const std::string& child : Subdirectories(dir)) CollectPids(child, pids);
}

// rmdir of `dir` and of the cgroups a container made below it, deepest first. A cgroup whose
// last processes are still exiting is busy for a moment: retried until kDrainTimeout.
void RemoveCgroupTree(const std::string& dir) {
  for (const std::string& child : Subdirectories(dir)) RemoveCgroupTree(child);
  auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  while (::rmdir(dir.c_str()) != 0 && errno == EBUSY && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kPoll);
  }
}

}  // namespace

Result<std::unique_ptr<Cgroup>> Cgroup::Create(std::string_view cgroups_path, const Json& resources,
                                               std::string_view container_id, const Json& linux_devices) {
  bool absolute = false;
  SR_ASSIGN_OR_RETURN(std::vector<std::string> inner, InnerPath(cgroups_path, container_id, absolute));
  auto cgroup = std::make_unique<Cgroup>(Key());
  struct statfs fs;
  if (::statfs(kCgroupRoot, &fs) != 0) return ErrnoStatus(std::string("inspecting ") + kCgroupRoot, errno);
  cgroup->unified_ = fs.f_type == CGROUP2_SUPER_MAGIC;

  // (hierarchy root directory, the base below which `inner` is created)
  std::vector<std::pair<std::string, std::string>> bases;
  if (cgroup->unified_) {
    std::string base = kCgroupRoot;
    if (!absolute) {
      SR_ASSIGN_OR_RETURN(std::string own, OwnCgroup({}));
      base += Dirname(own) == "/" ? "" : Dirname(own);
    }
    bases.emplace_back(kCgroupRoot, base);
    cgroup->hierarchies_.push_back({});
  } else {
    SR_ASSIGN_OR_RETURN(std::vector<V1Mount> mounts, V1Mounts());
    for (V1Mount& mount : mounts) {
      std::string base = mount.point;
      if (!absolute) {
        SR_ASSIGN_OR_RETURN(std::string own, OwnCgroup(mount.controllers));
        // Below the mount's own root when the hierarchy is mounted from a subdirectory.
        if (mount.root != "/" && own.rfind(mount.root, 0) == 0) own = own.substr(mount.root.size());
        base += own == "/" ? "" : own;
      }
      bases.emplace_back(mount.point, base);
      cgroup->hierarchies_.push_back({std::move(mount.controllers), {}, {}, {}});
    }
  }

  for (std::size_t h = 0; h < bases.size(); ++h) {
    Hierarchy& hierarchy = cgroup->hierarchies_[h];
    bool cpuset = std::find(hierarchy.controllers.begin(), hierarchy.controllers.end(), "cpuset") !=
                  hierarchy.controllers.end();
    if (cgroup->unified_) {
      // Every ancestor from the root down delegates the controllers.
      std::string dir = bases[h].first;
      EnableControllers(dir);
      for (const std::string& c : Split(std::string_view(bases[h].second).substr(dir.size()), '/')) {
        dir += "/" + c;
        EnableControllers(dir);
      }
    }
    std::string dir = bases[h].second;
    for (std::size_t i = 0; i < inner.size(); ++i) {
      std::string parent = dir;
      dir += "/" + inner[i];
      bool last = i + 1 == inner.size();
      if (::mkdir(dir.c_str(), 0755) != 0) {
        if (errno != EEXIST) return ErrnoStatus("creating cgroup " + dir, errno);
        if (last) {
          SR_RETURN_IF_ERROR(TakeOverLeftCgroup(dir));
          hierarchy.created.push_back(dir);  // removed with this container, as runc's delete does
        }
      } else {
        hierarchy.created.push_back(dir);
        if (cpuset) SR_RETURN_IF_ERROR_CTX(InheritCpuset(parent, dir), "setting up cgroup " + dir);
      }
      if (cgroup->unified_ && !last) EnableControllers(dir);
    }
    hierarchy.leaf = dir;
    hierarchy.lock = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!hierarchy.lock || ::flock(hierarchy.lock.get(), LOCK_EX | LOCK_NB) != 0) {
      return AlreadyExists("cgroup " + dir + " is another container's");
    }
  }

  Status applied = cgroup->unified_ ? ApplyResourcesV2(cgroup->hierarchies_[0].leaf, resources, linux_devices)
                                    : ApplyResourcesV1(
                                          [&](std::string_view controller) -> const std::string* {
                                            const Hierarchy* h = cgroup->Find(controller);
                                            return h ? &h->leaf : nullptr;
                                          },
                                          resources, linux_devices);
  SR_RETURN_IF_ERROR(applied);
  return cgroup;
}

Cgroup::~Cgroup() {
  KillAll();
  RemoveDirectories();
}

const Cgroup::Hierarchy* Cgroup::Find(std::string_view controller) const {
  for (const Hierarchy& h : hierarchies_) {
    if (unified_ || std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end())
      return &h;
  }
  return nullptr;
}

std::vector<std::string> Cgroup::directories() const {
  std::vector<std::string> dirs;
  for (const Hierarchy& h : hierarchies_) {
    if (!h.leaf.empty()) dirs.push_back(h.leaf);
  }
  return dirs;
}

Status Cgroup::AddProcess(pid_t pid) {
  for (const Hierarchy& h : hierarchies_) {
    SR_RETURN_IF_ERROR_CTX(WriteCgroupFile(h.leaf, "cgroup.procs", std::to_string(pid)),
                           "joining the container's cgroup");
  }
  return OkStatus();
}

void Cgroup::KillAll() {
  auto pids = [&] {
    std::set<pid_t> all;
    for (const std::string& dir : directories()) CollectPids(dir, all);
    return all;
  };
  if (pids().empty()) return;
  // Frozen first, so that nothing forks between the listing and the kill; then thawed, because a
  // frozen process does not act on SIGKILL.
  const Hierarchy* freezer = Find("freezer");
  if (unified_ && CgroupFileExists(freezer->leaf, "cgroup.kill")) {
    (void)WriteCgroupFile(freezer->leaf, "cgroup.kill", "1");
  } else if (freezer) {
    const char* file = unified_ ? "cgroup.freeze" : "freezer.state";
    (void)WriteCgroupFile(freezer->leaf, file, unified_ ? "1" : "FROZEN");
    for (pid_t pid : pids()) ::kill(pid, SIGKILL);
    (void)WriteCgroupFile(freezer->leaf, file, unified_ ? "0" : "THAWED");
  }
  auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  for (std::set<pid_t> left = pids(); !left.empty() && std::chrono::steady_clock::now() < deadline;
       left = pids()) {
    for (pid_t pid : left) ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(kPoll);
  }
}

void Cgroup::RemoveDirectories() {
  for (Hierarchy& h : hierarchies_) {
    if (h.created.empty()) continue;
    // The leaf, with whatever the container made below it; then the parents this object made,
    // unless another container now uses them.
    if (h.created.back() == h.leaf) {
      RemoveCgroupTree(h.leaf);
      h.created.pop_back();
    }
    for (auto it = h.created.rbegin(); it != h.created.rend(); ++it) ::rmdir(it->c_str());
  }
}

Result<CgroupStats> Cgroup::Stats() const {
  CgroupStats stats;
  // On v2 a controller the parents did not delegate has no files: its stats stay 0.
  const Hierarchy* memory = Find("memory");
  if (memory && unified_ && !CgroupFileExists(memory->leaf, "memory.current")) memory = nullptr;
  const Hierarchy* pids = Find("pids");
  if (pids && !CgroupFileExists(pids->leaf, "pids.current")) pids = nullptr;
  if (memory) {
    const std::string& dir = memory->leaf;
    if (unified_) {
      SR_ASSIGN_OR_RETURN(stats.memory_usage, ReadCount(dir, "memory.current"));
      if (CgroupFileExists(dir, "memory.peak")) {
        SR_ASSIGN_OR_RETURN(stats.memory_max_usage, ReadCount(dir, "memory.peak"));
      }
      SR_ASSIGN_OR_RETURN(stats.memory_limit, ReadCount(dir, "memory.max"));
      SR_ASSIGN_OR_RETURN(stats.memory_failcnt, ReadKeyedValue(dir, "memory.events", "max"));
      SR_ASSIGN_OR_RETURN(stats.oom_kills, ReadKeyedValue(dir, "memory.events", "oom_kill"));
      SR_ASSIGN_OR_RETURN(stats.memory_cache, ReadKeyedValue(dir, "memory.stat", "file"));
      SR_ASSIGN_OR_RETURN(stats.memory_rss, ReadKeyedValue(dir, "memory.stat", "anon"));
    } else {
      SR_ASSIGN_OR_RETURN(stats.memory_usage, ReadCount(dir, "memory.usage_in_bytes"));
      SR_ASSIGN_OR_RETURN(stats.memory_max_usage, ReadCount(dir, "memory.max_usage_in_bytes"));
      SR_ASSIGN_OR_RETURN(stats.memory_limit, ReadCount(dir, "memory.limit_in_bytes"));
      SR_ASSIGN_OR_RETURN(stats.memory_failcnt, ReadCount(dir, "memory.failcnt"));
      SR_ASSIGN_OR_RETURN(stats.oom_kills, ReadKeyedValue(dir, "memory.oom_control", "oom_kill"));
      SR_ASSIGN_OR_RETURN(stats.memory_cache, ReadKeyedValue(dir, "memory.stat", "cache"));
      SR_ASSIGN_OR_RETURN(stats.memory_rss, ReadKeyedValue(dir, "memory.stat", "rss"));
    }
  }
  if (pids) {
    SR_ASSIGN_OR_RETURN(stats.pids_current, ReadCount(pids->leaf, "pids.current"));
    SR_ASSIGN_OR_RETURN(stats.pids_limit, ReadCount(pids->leaf, "pids.max"));
    if (stats.pids_limit == std::numeric_limits<std::uint64_t>::max()) stats.pids_limit = 0;
  }
  SR_RETURN_IF_ERROR(CpuStats(stats));
  SR_RETURN_IF_ERROR(IoStats(stats));
  return stats;
}

Status Cgroup::CpuStats(CgroupStats& stats) const {
  const Hierarchy* cpu = Find("cpu");
  if (unified_) {
    const std::string& dir = hierarchies_[0].leaf;
    SR_ASSIGN_OR_RETURN(std::uint64_t usage, ReadKeyedValue(dir, "cpu.stat", "usage_usec"));
    SR_ASSIGN_OR_RETURN(std::uint64_t user, ReadKeyedValue(dir, "cpu.stat", "user_usec"));
    SR_ASSIGN_OR_RETURN(std::uint64_t system, ReadKeyedValue(dir, "cpu.stat", "system_usec"));
    stats.cpu_usage_ns = usage * 1000;
    stats.cpu_user_ns = user * 1000;
    stats.cpu_kernel_ns = system * 1000;
  } else if (const Hierarchy* cpuacct = Find("cpuacct")) {
    const std::string& dir = cpuacct->leaf;
    SR_ASSIGN_OR_RETURN(stats.cpu_usage_ns, ReadCount(dir, "cpuacct.usage"));
    // cpuacct.stat counts USER_HZ ticks.
    const std::uint64_t tick_ns = 1'000'000'000 / static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK));
    SR_ASSIGN_OR_RETURN(std::uint64_t user, ReadKeyedValue(dir, "cpuacct.stat", "user"));
    SR_ASSIGN_OR_RETURN(std::uint64_t system, ReadKeyedValue(dir, "cpuacct.stat", "system"));
    stats.cpu_user_ns = user * tick_ns;
    stats.cpu_kernel_ns = system * tick_ns;
    if (CgroupFileExists(dir, "cpuacct.usage_percpu")) {
      SR_ASSIGN_OR_RETURN(std::string per_cpu, ReadCgroupFile(dir, "cpuacct.usage_percpu"));
      for (const std::string& value : Split(per_cpu, ' ')) stats.cpu_per_cpu_ns.push_back(ParseCount(value));
    }
  }
  // Throttling: v2 and v1's cpu controller both keep it in cpu.stat.
  if (cpu && CgroupFileExists(cpu->leaf, "cpu.stat")) {
    SR_ASSIGN_OR_RETURN(stats.cpu_periods, ReadKeyedValue(cpu->leaf, "cpu.stat", "nr_periods"));
    SR_ASSIGN_OR_RETURN(stats.cpu_throttled_periods, ReadKeyedValue(cpu->leaf, "cpu.stat", "nr_throttled"));
    if (unified_) {
      SR_ASSIGN_OR_RETURN(std::uint64_t usec, ReadKeyedValue(cpu->leaf, "cpu.stat", "throttled_usec"));
      stats.cpu_throttled_ns = usec * 1000;
    } else {
      SR_ASSIGN_OR_RETURN(stats.cpu_throttled_ns, ReadKeyedValue(cpu->leaf, "cpu.stat", "throttled_time"));
    }
  }
  return OkStatus();
}

namespace {

// "MAJ:MIN Op value" lines (v1 blkio.*_recursive); the "Total" summary line has no device.
std::vector<BlkioEntry> ParseBlkioV1(std::string_view text) {
  std::vector<BlkioEntry> out;
  for (const std::string& line : Split(text, '\n')) {
    std::vector<std::string> fields = Split(line, ' ');
    if (fields.size() != 3) continue;
    std::size_t colon = fields[0].find(':');
    if (colon == std::string::npos) continue;
    out.push_back({ParseCount(std::string_view(fields[0]).substr(0, colon)),
                   ParseCount(std::string_view(fields[0]).substr(colon + 1)), fields[1],
                   ParseCount(fields[2])});
  }
  return out;
}

// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device, as runc
// reports it in v1 terms (Read/Write).
void ParseIoStatV2(std::string_view text, CgroupStats& stats) {
  for (const std::string& line : Split(text, '\n')) {
    std::vector<std::string> fields = Split(line, ' ');
    if (fields.empty()) continue;
    std::size_t colon = fields[0].find(':');
    if (colon == std::string::npos) continue;
    std::uint64_t major = ParseCount(std::string_view(fields[0]).substr(0, colon));
    std::uint64_t minor = ParseCount(std::string_view(fields[0]).substr(colon + 1));
    for (std::size_t i = 1; i < fields.size(); ++i) {
      std::size_t eq = fields[i].find('=');
      if (eq == std::string::npos) continue;
      std::string_view key = std::string_view(fields[i]).substr(0, eq);
      std::uint64_t value = ParseCount(std::string_view(fields[i]).substr(eq + 1));
      if (key == "rbytes") stats.io_service_bytes.push_back({major, minor, "Read", value});
      if (key == "wbytes") stats.io_service_bytes.push_back({major, minor, "Write", value});
      if (key == "rios") stats.io_serviced.push_back({major, minor, "Read", value});
      if (key == "wios") stats.io_serviced.push_back({major, minor, "Write", value});
    }
  }
}

}  // namespace

Status Cgroup::IoStats(CgroupStats& stats) const {
  if (unified_) {
    const std::string& dir = hierarchies_[0].leaf;
    if (CgroupFileExists(dir, "io.stat")) {
      SR_ASSIGN_OR_RETURN(std::string text, ReadCgroupFile(dir, "io.stat"));
      ParseIoStatV2(text, stats);
    }
    return OkStatus();
  }
  const Hierarchy* blkio = Find("blkio");
  if (!blkio) return OkStatus();
  // The throttle files count every device and scheduler; CFQ's own files exist only with CFQ.
  for (const auto& [file, out] :
       {std::pair{"blkio.throttle.io_service_bytes_recursive", &stats.io_service_bytes},
        std::pair{"blkio.throttle.io_serviced_recursive", &stats.io_serviced}}) {
    if (!CgroupFileExists(blkio->leaf, file)) continue;
    SR_ASSIGN_OR_RETURN(std::string text, ReadCgroupFile(blkio->leaf, file));
    *out = ParseBlkioV1(text);
  }
  return OkStatus();
}

Status Cgroup::Update(const Json& resources) {
  if (unified_) return UpdateResourcesV2(hierarchies_[0].leaf, resources);
  return UpdateResourcesV1(
      [&](std::string_view controller) -> const std::string* {
        const Hierarchy* h = Find(controller);
        return h ? &h->leaf : nullptr;
      },
      resources);
}

}  // namespace sealroot::boot
