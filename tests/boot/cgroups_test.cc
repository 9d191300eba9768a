// The cgroups module on the host's real hierarchy (cgroup v1 controllers on these machines):
// limits that hold against a process that tries to exceed them, runc's device rules, stats, and
// destruction that leaves no process and no directory behind.
#include "boot/src/cgroups.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "boot/src/cgroup_devices.h"
#include "boot/src/cgroup_files.h"
#include "tests/support/process.h"

namespace sealroot::boot {
namespace {

using Json = nlohmann::json;

constexpr std::uint64_t kMiB = 1u << 20;

// A forked child that waits until Release() (so that it can be put in a cgroup first), then
// runs `body` and exits with its result.
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[1]);
      char go;
      if (::read(fds[0], &go, 1) != 1) ::_exit(120);
      ::_exit(body());
    }
    ::close(fds[0]);
    release_ = fds[1];
  }
  ~Child() {
    if (release_ >= 0) ::close(release_);
    if (status_ < 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  pid_t pid() const { return pid_; }
  void Release() {
    EXPECT_EQ(::write(release_, "g", 1), 1);
    ::close(release_);
    release_ = -1;
  }
  int Wait() {
    if (status_ < 0) ::waitpid(pid_, &status_, 0);
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int release_ = -1;
  int status_ = -1;
};

bool Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

// Dead: gone, or a zombie waiting for its parent.
bool Dead(pid_t pid) {
  Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return true;
  std::size_t paren = stat->rfind(')');
  return paren != std::string::npos && stat->substr(paren + 2, 1) == "Z";
}

std::string UniqueId(const std::string& name) {
  return name + "-" + std::to_string(::getpid());
}

std::unique_ptr<Cgroup> MustCreate(std::string_view path, const Json& resources, const std::string& id) {
  Result<std::unique_ptr<Cgroup>> cgroup = Cgroup::Create(path, resources, id);
  EXPECT_TRUE(cgroup.ok()) << cgroup.status().ToString();
  return cgroup.ok() ? std::move(cgroup).value() : nullptr;
}

std::string DirOf(const Cgroup& cgroup, const std::string& hierarchy) {
  for (const std::string& dir : cgroup.directories()) {
    if (dir.rfind("/sys/fs/cgroup/" + hierarchy + "/", 0) == 0) return dir;
  }
  return "";
}

TEST(CgroupTest, ThisHostIsCgroupV1) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("", nullptr, UniqueId("v1"));
  ASSERT_NE(cgroup, nullptr);
  EXPECT_FALSE(cgroup->unified());
  EXPECT_NE(DirOf(*cgroup, "memory"), "");
  EXPECT_NE(DirOf(*cgroup, "pids"), "");
  EXPECT_NE(DirOf(*cgroup, "devices"), "");
  // The hybrid layout's v2 hierarchy is joined too, as runc joins it.
  EXPECT_NE(DirOf(*cgroup, "unified"), "");
  Child child([] { return 0; });
  ASSERT_TRUE(cgroup->AddProcess(child.pid()).ok());
  Result<std::string> listed = ReadFile(DirOf(*cgroup, "unified") + "/cgroup.procs");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::to_string(child.pid()) + "\n");
  child.Release();
  EXPECT_EQ(child.Wait(), 0);
}

TEST(CgroupTest, AllocationPastTheMemoryLimitIsOomKilled) {
  Json resources = {{"memory", {{"limit", 32 * kMiB}, {"swap", 32 * kMiB}}}};
  std::unique_ptr<Cgroup> cgroup = MustCreate("", resources, UniqueId("oom"));
  ASSERT_NE(cgroup, nullptr);
  Child child([] {
    constexpr std::size_t kSize = 64 * kMiB;
    auto* bytes = static_cast<char*>(
        ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (bytes == MAP_FAILED) return 2;
    for (std::size_t i = 0; i < kSize; i += 4096) bytes[i] = 1;
    return 0;
  });
  ASSERT_TRUE(cgroup->AddProcess(child.pid()).ok());
  child.Release();
  int status = child.Wait();
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit code " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  Result<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->memory_limit, 32 * kMiB);
  EXPECT_GE(stats->oom_kills, 1u);
  // (memory.failcnt is not asserted: current kernels leave it at 0 on v1.)
  EXPECT_EQ(stats->memory_max_usage, 32 * kMiB);
}

TEST(CgroupTest, PidsLimitStopsAForkBombAndDestructionKillsWhatIsLeft) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("", {{"pids", {{"limit", 10}}}}, UniqueId("pids"));
  ASSERT_NE(cgroup, nullptr);
  std::string pids_dir = DirOf(*cgroup, "pids");
  // Forks sleepers until fork fails; exits with the number it made (100 + errno on surprise).
  Child bomb([] {
    for (int made = 0; made < 100; ++made) {
      pid_t pid = ::fork();
      if (pid == 0) {
        ::pause();
        ::_exit(0);
      }
      if (pid < 0) return errno == EAGAIN ? made : 100 + errno;
    }
    return 200;
  });
  ASSERT_TRUE(cgroup->AddProcess(bomb.pid()).ok());
  bomb.Release();
  int status = bomb.Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 9) << "the bomb itself is the tenth process";

  Result<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->pids_current, 9u);
  EXPECT_EQ(stats->pids_limit, 10u);
  Result<std::string> procs = ReadFile(pids_dir + "/cgroup.procs");
  ASSERT_TRUE(procs.ok());
  std::vector<pid_t> sleepers;
  for (std::size_t at = 0; at < procs->size();) {
    std::size_t end = procs->find('\n', at);
    sleepers.push_back(std::stoi(procs->substr(at, end - at)));
    at = end == std::string::npos ? procs->size() : end + 1;
  }
  ASSERT_EQ(sleepers.size(), 9u);

  std::vector<std::string> dirs = cgroup->directories();
  cgroup.reset();
  for (pid_t pid : sleepers) EXPECT_TRUE(Dead(pid)) << pid;
  for (const std::string& dir : dirs) EXPECT_FALSE(Exists(dir)) << dir;
}

// In a child: mknod of a loop device and /dev/mem's numbers works; opening them fails with EPERM
// when `restricted` (and not with EPERM otherwise); /dev/null and /dev/zero open. Returns 0 when
// all of that holds, else the number of the step that did not.
int DeviceProbe(const std::string& dir, bool restricted) {
  std::string node = dir + "/loop0";
  std::string mem = dir + "/mem";
  ::unlink(node.c_str());
  ::unlink(mem.c_str());
  if (::mknod(node.c_str(), S_IFBLK | 0600, ::makedev(7, 0)) != 0) return 1;
  if (::mknod(mem.c_str(), S_IFCHR | 0600, ::makedev(1, 1)) != 0) return 2;
  int loop = ::open(node.c_str(), O_RDONLY);
  if (restricted != (loop < 0 && errno == EPERM)) return 3;
  int fd = ::open(mem.c_str(), O_RDONLY);
  if (restricted != (fd < 0 && errno == EPERM)) return 4;
  if (::open("/dev/null", O_RDWR) < 0 || ::open("/dev/zero", O_RDONLY) < 0) return 5;
  return 0;
}

// The spec's rules as `runc spec` writes them: deny everything (runc's defaults follow).
const Json kDenyAll = {{"devices", Json::array({{{"allow", false}, {"access", "rwm"}}})}};

TEST(CgroupTest, RuncDefaultDeviceRulesAllowMknodButNotOpeningOtherDevices) {
  testing::TempDir tmp;
  std::unique_ptr<Cgroup> cgroup = MustCreate("", kDenyAll, UniqueId("devices"));
  ASSERT_NE(cgroup, nullptr);
  Child inside([&] { return DeviceProbe(tmp.path(), true); });
  ASSERT_TRUE(cgroup->AddProcess(inside.pid()).ok());
  inside.Release();
  EXPECT_EQ(inside.Wait(), 0) << "step " << WEXITSTATUS(inside.Wait());
  // The same probe outside the cgroup: the EPERMs came from the cgroup.
  Child outside([&] { return DeviceProbe(tmp.path(), false); });
  outside.Release();
  EXPECT_EQ(outside.Wait(), 0) << "step " << WEXITSTATUS(outside.Wait());
}

// cgroup v2's device filter is a BPF program; this host's hybrid layout has a v2 hierarchy
// (without controllers) at /sys/fs/cgroup/unified, where the program works the same.
class DeviceFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct statfs fs;
    std::string root = ::statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC
                           ? "/sys/fs/cgroup"
                           : "/sys/fs/cgroup/unified";
    ASSERT_EQ(::statfs(root.c_str(), &fs), 0);
    ASSERT_EQ(fs.f_type, CGROUP2_SUPER_MAGIC) << root;
    dir_ = root + "/" + UniqueId("sealroot-device-filter");
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0) << dir_;
  }
  void TearDown() override { EXPECT_EQ(::rmdir(dir_.c_str()), 0) << dir_; }

  // Runs `body` in a child that is in the v2 cgroup; returns its exit code.
  int RunInside(const std::function<int()>& body) {
    Child child(body);
    Status joined = WriteCgroupFile(dir_, "cgroup.procs", std::to_string(child.pid()));
    EXPECT_TRUE(joined.ok()) << joined.ToString();
    child.Release();
    int status = child.Wait();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string dir_;
  testing::TempDir tmp_;
};

TEST_F(DeviceFilterTest, RuncDefaultRulesAsABpfProgram) {
  Result<std::vector<DeviceRule>> rules = DeviceRules(kDenyAll, nullptr);
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_TRUE(AttachDeviceFilter(dir_, *rules).ok());
  EXPECT_EQ(RunInside([&] { return DeviceProbe(tmp_.path(), true); }), 0);
}

TEST_F(DeviceFilterTest, LastMatchingRuleDecides) {
  // Everything allowed, then reading or writing /dev/null (1:3) denied; mknod is not covered.
  std::vector<DeviceRule> rules = {{true, 'a', DeviceRule::kAny, DeviceRule::kAny, "rwm"},
                                   {false, 'c', 1, 3, "rw"}};
  ASSERT_TRUE(AttachDeviceFilter(dir_, rules).ok());
  std::string null_copy = tmp_ / "null";
  EXPECT_EQ(RunInside([&] {
              if (::open("/dev/null", O_RDONLY) >= 0 || errno != EPERM) return 1;
              if (::open("/dev/zero", O_RDONLY) < 0) return 2;
              if (::mknod(null_copy.c_str(), S_IFCHR | 0600, ::makedev(1, 3)) != 0) return 3;
              return 0;
            }),
            0);
}

TEST(CgroupTest, CpuSettingsAndStats) {
  Json resources = {{"cpu", {{"shares", 512}, {"period", 100000}, {"quota", 50000}, {"cpus", "0"}}}};
  std::unique_ptr<Cgroup> cgroup = MustCreate("", resources, UniqueId("cpu"));
  ASSERT_NE(cgroup, nullptr);
  std::string cpu = DirOf(*cgroup, "cpu");
  EXPECT_EQ(ReadFile(cpu + "/cpu.shares").value(), "512\n");
  EXPECT_EQ(ReadFile(cpu + "/cpu.cfs_quota_us").value(), "50000\n");
  EXPECT_EQ(ReadFile(DirOf(*cgroup, "cpuset") + "/cpuset.cpus").value(), "0\n");
  // Busy for 200 ms of its own CPU time: at a 50% quota that spans several 100 ms periods, however
  // fast or loaded the machine is.
  Child busy([] {
    timespec used{};
    do {
      ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
    } while (used.tv_sec == 0 && used.tv_nsec < 200'000'000);
    return 0;
  });
  ASSERT_TRUE(cgroup->AddProcess(busy.pid()).ok());
  busy.Release();
  EXPECT_EQ(busy.Wait(), 0);
  Result<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_GT(stats->cpu_usage_ns, 1'000'000u);
  EXPECT_GE(stats->cpu_usage_ns, stats->cpu_per_cpu_ns.empty() ? 0 : stats->cpu_per_cpu_ns[0]);
  EXPECT_GT(stats->cpu_user_ns + stats->cpu_kernel_ns, 0u) << "cpuacct.stat ticks";
  EXPECT_GT(stats->cpu_periods, 0u) << "a quota is enforced in periods";
}

// `runc update`: memory, cpu and pids change on a live cgroup and hold against a process; the
// fields fixed at creation are refused by name.
TEST(CgroupTest, UpdateChangesLimitsOfALiveCgroup) {
  std::unique_ptr<Cgroup> cgroup =
      MustCreate("", {{"memory", {{"limit", 32 * kMiB}}}, {"pids", {{"limit", 10}}}}, UniqueId("update"));
  ASSERT_NE(cgroup, nullptr);
  Status updated = cgroup->Update({{"memory", {{"limit", 48 * kMiB}}},
                                   {"pids", {{"limit", 4}}},
                                   {"cpu", {{"quota", 20000}, {"period", 100000}}}});
  ASSERT_TRUE(updated.ok()) << updated.ToString();
  Result<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->memory_limit, 48 * kMiB);
  EXPECT_EQ(stats->pids_limit, 4u);
  EXPECT_EQ(ReadFile(DirOf(*cgroup, "cpu") + "/cpu.cfs_quota_us").value(), "20000\n");
  // The new pids limit holds: the fourth process of the cgroup cannot fork.
  Child forks([] {
    int made = 0;
    for (; made < 10; ++made) {
      pid_t pid = ::fork();
      if (pid == 0) {
        ::pause();
        ::_exit(0);
      }
      if (pid < 0) break;
    }
    return made;
  });
  ASSERT_TRUE(cgroup->AddProcess(forks.pid()).ok());
  forks.Release();
  int status = forks.Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  for (const auto& [field, resources] : std::vector<std::pair<std::string, Json>>{
           {"linux.resources.devices", {{"devices", {{{"allow", true}, {"access", "rwm"}}}}}},
           {"linux.resources.hugepageLimits", {{"hugepageLimits", {{{"pageSize", "2MB"}, {"limit", 1}}}}}},
           {"linux.resources.memory.limit", {{"memory", {{"limit", "lots"}}}}}}) {
    Status refused = cgroup->Update(resources);
    EXPECT_EQ(refused.code(), Code::kInvalidArgument) << field << ": " << refused.ToString();
    EXPECT_NE(refused.message().find(field), std::string::npos) << refused.ToString();
  }
  stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->memory_limit, 48 * kMiB) << "a refused update changes nothing";
}

TEST(CgroupTest, AbsolutePathAndEveryCreatedParentAreRemoved) {
  std::string top = UniqueId("sealroot-test");
  std::unique_ptr<Cgroup> cgroup = MustCreate("/" + top + "/pod/ctr", nullptr, "ignored-id");
  ASSERT_NE(cgroup, nullptr);
  EXPECT_EQ(DirOf(*cgroup, "memory"), "/sys/fs/cgroup/memory/" + top + "/pod/ctr");
  Child sleeper([] {
    ::pause();
    return 0;
  });
  ASSERT_TRUE(cgroup->AddProcess(sleeper.pid()).ok());
  sleeper.Release();
  // A cgroup the container made for itself goes too.
  std::string nested = DirOf(*cgroup, "pids") + "/inner";
  ASSERT_EQ(::mkdir(nested.c_str(), 0755), 0);
  cgroup.reset();
  int status = sleeper.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (const char* hierarchy : {"memory", "pids", "devices", "cpu", "freezer", "systemd", "unified"}) {
    EXPECT_FALSE(Exists(std::string("/sys/fs/cgroup/") + hierarchy + "/" + top)) << hierarchy;
  }
}

TEST(CgroupTest, RefusedSpecsSayWhyAndLeaveNothingBehind) {
  struct Case {
    std::string path;
    Json resources;
    std::string message;
  };
  std::string id = UniqueId("refused");
  const Case cases[] = {
      {"system.slice:docker:abc", nullptr, "systemd"},
      {"/a/../b", nullptr, "must not contain"},
      {"", {{"memory", {{"limit", "lots"}}}}, "linux.resources.memory.limit: must be an integer"},
      {"", {{"devices", Json::array({{{"allow", true}, {"type", "x"}}})}}, "linux.resources.devices[0].type"},
      {"", {{"devices", Json::array({{{"access", "rwm"}}})}}, "linux.resources.devices[0].allow"},
      {"", {{"unified", {{"memory.max", "1M"}}}}, "linux.resources.unified"},
      {"", {{"hugepageLimits", Json::array({{{"pageSize", "2MB"}, {"limit", 1}}})}}, "no hugetlb"},
      {"", {{"memory", {{"swappiness", 101}}}}, "linux.resources.memory.swappiness"},
  };
  for (const Case& c : cases) {
    Result<std::unique_ptr<Cgroup>> cgroup = Cgroup::Create(c.path, c.resources, id);
    ASSERT_FALSE(cgroup.ok()) << c.path << " " << c.resources.dump();
    EXPECT_NE(cgroup.status().message().find(c.message), std::string::npos) << cgroup.status().message();
  }
  // The failed creations removed their directories: the same id can be created now.
  std::unique_ptr<Cgroup> again = MustCreate("", nullptr, id);
  ASSERT_NE(again, nullptr);
  // ... but not twice at once.
  Result<std::unique_ptr<Cgroup>> twice = Cgroup::Create("", nullptr, id);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), Code::kAlreadyExists);
  EXPECT_TRUE(Exists(DirOf(*again, "memory"))) << "the refused second creation must not remove the first's";
}

// A boot killed with SIGKILL leaves its cgroup behind (containerd names it /namespace/id, so the
// next container of that id asks for the same path): an empty one is taken over and removed with
// the new container; one with a process in it is refused.
TEST(CgroupsTest, ALeftoverEmptyCgroupIsTakenOverAndABusyOneRefused) {
  const std::string path = "/" + UniqueId("left");
  std::string memory_dir;
  {
    std::unique_ptr<Cgroup> first = MustCreate(path, nullptr, "left");
    ASSERT_NE(first, nullptr);
    memory_dir = DirOf(*first, "memory");
    // What a SIGKILLed boot leaves: the directories, with no owner and no process.
    for (const std::string& dir : first->directories()) ASSERT_EQ(::mkdir((dir + "-kept").c_str(), 0755), 0);
  }
  ASSERT_TRUE(Exists(memory_dir + "-kept"));
  std::unique_ptr<Cgroup> taken = MustCreate(path + "-kept", nullptr, "left");
  ASSERT_NE(taken, nullptr);
  const std::vector<std::string> taken_dirs = taken->directories();
  taken.reset();
  for (const std::string& dir : taken_dirs) EXPECT_FALSE(Exists(dir)) << dir;

  ASSERT_EQ(::mkdir((memory_dir + "-busy").c_str(), 0755), 0);
  Child child([] { return 0; });
  {
    std::ofstream procs(memory_dir + "-busy/cgroup.procs");
    procs << child.pid() << std::flush;
    ASSERT_TRUE(procs.good());
  }
  Result<std::unique_ptr<Cgroup>> busy = Cgroup::Create(path + "-busy", nullptr, "left");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), Code::kAlreadyExists) << busy.status().ToString();
  child.Release();
  child.Wait();
  for (int i = 0; i < 100 && ::rmdir((memory_dir + "-busy").c_str()) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(Exists(memory_dir + "-busy"));
}

}  // namespace
}  // namespace sealroot::boot
