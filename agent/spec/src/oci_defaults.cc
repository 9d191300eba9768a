// runc's `runc spec` defaults (runc 1.1.5, Debian 12) as the agent fills them in, with the
// capability set of containerd's and moby's default spec (runc spec itself grants only three).
#include <linux/magic.h>
#include <sys/vfs.h>

#include "agent/spec/oci_spec.h"

namespace sealroot::agent {

using nlohmann::json;

json DefaultCapabilities() {
  const json caps = {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
                     "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
                     "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                     "CAP_KILL",    "CAP_AUDIT_WRITE"};
  // No inheritable or ambient ones: `runc spec` lists three ambient capabilities, but the kernel
  // raises none without inheritable ones, so under runc the process ends up with none either.
  return {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
}

json DefaultMounts() {
  return json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      {{"destination", "/dev"},
       {"type", "tmpfs"},
       {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"},
       {"type", "devpts"},
       {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
      {{"destination", "/dev/shm"},
       {"type", "tmpfs"},
       {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"},
       {"type", "mqueue"},
       {"source", "mqueue"},
       {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"},
       {"type", "sysfs"},
       {"source", "sysfs"},
       {"options", {"nosuid", "noexec", "nodev", "ro"}}},
      {{"destination", "/sys/fs/cgroup"},
       {"type", "cgroup"},
       {"source", "cgroup"},
       {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}},
  });
}

json DefaultLinux(const SpecDefaults& defaults) {
  json namespaces = json::array();
  for (const char* type : {"pid", "network", "ipc", "uts", "mount"}) namespaces.push_back({{"type", type}});
  if (defaults.cgroup_namespace) namespaces.push_back({{"type", "cgroup"}});
  json linux_spec = {
      // Deny every device; the boot allows the default ones (/dev/null, zero, full, random,
      // urandom, tty, pts/ptmx) on top, as runc does.
      {"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
      {"namespaces", std::move(namespaces)},
      {"maskedPaths",
       {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}},
      {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
  };
  if (!defaults.seccomp.is_null()) linux_spec["seccomp"] = defaults.seccomp;
  return linux_spec;
}

SpecDefaults HostSpecDefaults(json seccomp) {
  struct statfs fs {};
  bool unified = statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
  return {std::move(seccomp), unified};
}

}  // namespace sealroot::agent
