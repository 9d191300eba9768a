// config.json the way `umoci unpack` (0.4.7) writes it: runtime-tools' default Linux spec with
// umoci's hostname, then the image config applied; --rootless converted as runc's ToRootless.
#include <string>

#include "image/config.h"

namespace sealroot::image {
namespace {

using nlohmann::json;

json DefaultCapabilities() {
  json caps = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  return {
      {"bounding", caps}, {"effective", caps}, {"inheritable", caps}, {"permitted", caps}, {"ambient", caps}};
}

json DefaultMounts(bool rootless) {
  json mounts = json::array();
  mounts.push_back({{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}});
  mounts.push_back({{"destination", "/dev"},
                    {"type", "tmpfs"},
                    {"source", "tmpfs"},
                    {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}});
  json pts_options = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"};
  // A rootless container has no mapping for gid 5 (runc's ToRootless drops the option).
  if (!rootless) pts_options.push_back("gid=5");
  mounts.push_back(
      {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"}, {"options", pts_options}});
  mounts.push_back({{"destination", "/dev/shm"},
                    {"type", "tmpfs"},
                    {"source", "shm"},
                    {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}});
  mounts.push_back({{"destination", "/dev/mqueue"},
                    {"type", "mqueue"},
                    {"source", "mqueue"},
                    {"options", {"nosuid", "noexec", "nodev"}}});
  if (rootless) {
    // sysfs cannot be mounted without a network namespace of one's own: bind it instead.
    mounts.push_back({{"destination", "/sys"},
                      {"type", "bind"},
                      {"source", "/sys"},
                      {"options", {"rbind", "nosuid", "noexec", "nodev", "ro"}}});
    mounts.push_back({{"destination", "/etc/resolv.conf"},
                      {"type", "bind"},
                      {"source", "/etc/resolv.conf"},
                      {"options", {"rbind", "ro"}}});
  } else {
    mounts.push_back({{"destination", "/sys"},
                      {"type", "sysfs"},
                      {"source", "sysfs"},
                      {"options", {"nosuid", "noexec", "nodev", "ro"}}});
    mounts.push_back({{"destination", "/sys/fs/cgroup"},
                      {"type", "cgroup"},
                      {"source", "cgroup"},
                      {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}});
  }
  return mounts;
}

json LinuxSection(const RuntimeSpecOptions& options) {
  json linux = json::object();
  json ns = json::array();
  for (const char* t : {"pid", "network", "ipc", "uts", "mount"}) {
    if (options.rootless && std::string_view(t) == "network") continue;
    ns.push_back({{"type", t}});
  }
  if (options.rootless) {
    ns.push_back({{"type", "user"}});
    linux["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", options.host_uid}, {"size", 1}}});
    linux["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", options.host_gid}, {"size", 1}}});
  } else {
    linux["resources"] = {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}};
  }
  linux["namespaces"] = ns;
  linux["maskedPaths"] = {"/proc/kcore",       "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                          "/proc/sched_debug", "/sys/firmware",       "/proc/scsi"};
  linux["readonlyPaths"] = {"/proc/asound", "/proc/bus", "/proc/fs",
                            "/proc/irq",    "/proc/sys", "/proc/sysrq-trigger"};
  return linux;
}

// Adds NAME=VALUE, replacing an existing NAME (runtime-tools' AddProcessEnv).
void SetEnv(json& env, std::string_view entry) {
  std::string_view name = entry.substr(0, entry.find('='));
  for (json& e : env) {
    std::string existing = e.get<std::string>();
    if (std::string_view(existing).substr(0, existing.find('=')) == name) {
      e = std::string(entry);
      return;
    }
  }
  env.push_back(std::string(entry));
}

bool HasEnv(const json& env, std::string_view name) {
  for (const json& e : env) {
    std::string s = e.get<std::string>();
    if (std::string_view(s).substr(0, s.find('=')) == name) return true;
  }
  return false;
}

json Annotations(const ImageConfig& config) {
  json a = json::object();
  for (const auto& [k, v] : config.labels) a[k] = v;
  std::string ports;
  for (const std::string& p : config.exposed_ports) ports += (ports.empty() ? "" : ",") + p;
  a["org.opencontainers.image.architecture"] = config.architecture;
  a["org.opencontainers.image.author"] = config.author;
  a["org.opencontainers.image.created"] = config.created;
  a["org.opencontainers.image.exposedPorts"] = ports;
  a["org.opencontainers.image.os"] = config.os;
  a["org.opencontainers.image.stopSignal"] = config.stop_signal;
  return a;
}

}  // namespace

Result<json> RuntimeSpecFromImageConfig(const ImageConfig& config, const RuntimeSpecOptions& options) {
  SR_ASSIGN_OR_RETURN(ProcessUser user, ResolveUser(config.user, options.rootfs_fd));
  json process = json::object();
  process["terminal"] = true;
  process["user"] = {{"uid", user.uid}, {"gid", user.gid}};
  // A rootless container maps only its own gid: supplementary groups cannot be set (as umoci).
  if (!user.additional_gids.empty() && !options.rootless)
    process["user"]["additionalGids"] = user.additional_gids;
  json args = json::array();
  for (const std::string& a : config.entrypoint) args.push_back(a);
  for (const std::string& a : config.cmd) args.push_back(a);
  process["args"] = args;
  json env = json::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"});
  for (const std::string& e : config.env) {
    if (e.find('=') == std::string::npos)
      return InvalidArgument("image config: Env entry '" + e + "' has no '='");
    SetEnv(env, e);
  }
  if (!user.home.empty() && !HasEnv(env, "HOME")) env.push_back("HOME=" + user.home);
  process["env"] = env;
  process["cwd"] = config.working_dir.empty() ? "/" : config.working_dir;
  process["capabilities"] = DefaultCapabilities();
  process["rlimits"] = json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}});
  process["noNewPrivileges"] = true;

  json spec = json::object();
  spec["ociVersion"] = "1.0.0";
  spec["process"] = process;
  spec["root"] = {{"path", options.rootfs_path}};
  spec["hostname"] = "umoci-default";
  spec["mounts"] = DefaultMounts(options.rootless);
  spec["annotations"] = Annotations(config);
  spec["linux"] = LinuxSection(options);
  return spec;
}

}  // namespace sealroot::image
