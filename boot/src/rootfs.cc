#include "boot/src/rootfs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <utility>

#include "base/fd.h"
#include "base/file.h"
#include "boot/src/mount_options.h"

namespace sealroot::boot {
namespace {

// Every mount goes through an O_PATH descriptor of its target, named by its /proc/self/fd
// link: the kernel mounts on the directory the descriptor holds, whatever the path around it
// has become since it was opened.
std::string FdPath(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

Result<UniqueFd> OpenDir(int dir_fd, const std::string& name, std::string_view what) {
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening " + std::string(what) + " (symlinks are refused)", errno);
  return fd;
}

// Opens `path` (absolute inside the container) with symlinks resolved inside the root, as
// runc's securejoin does: a link in the image can never lead out of it.
Result<UniqueFd> OpenInRoot(int root_fd, const std::string& path, std::uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const std::string relative = path.substr(
      path.find_first_not_of('/') == std::string::npos ? path.size() : path.find_first_not_of('/'));
  int fd = static_cast<int>(
      ::syscall(SYS_openat2, root_fd, relative.empty() ? "." : relative.c_str(), &how, sizeof how));
  if (fd < 0) return ErrnoStatus("opening " + path + " in the container root", errno);
  return UniqueFd(fd);
}

// Creates `path` inside the root (parents as directories, the last one a directory or an empty
// file) and opens it as a mount target.
Result<UniqueFd> MakeInRoot(int root_fd, const std::string& path, bool directory) {
  auto existing = OpenInRoot(root_fd, path, O_PATH);
  if (existing.ok() || existing.status().code() != Code::kNotFound) return existing;
  const std::size_t slash = path.find_last_of('/');
  const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  const std::string name = path.substr(slash + 1);
  SR_ASSIGN_OR_RETURN(UniqueFd dir, MakeInRoot(root_fd, parent, /*directory=*/true));
  UniqueFd parent_dir(::openat(dir.get(), ".", O_DIRECTORY | O_CLOEXEC | O_RDONLY));
  if (!parent_dir) return ErrnoStatus("opening " + parent, errno);
  if (directory) {
    if (::mkdirat(parent_dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("creating " + path, errno);
    }
  } else {
    UniqueFd file(
        ::openat(parent_dir.get(), name.c_str(), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!file && errno != EEXIST) return ErrnoStatus("creating " + path, errno);
  }
  return OpenInRoot(root_fd, path, O_PATH);
}

// Opens `name` in `root_fd` as a mount point, creating it when the image lacks it.
Result<UniqueFd> MountPoint(int root_fd, const std::string& name) {
  if (::mkdirat(root_fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus("creating mount point /" + name, errno);
  }
  return OpenDir(root_fd, name, "mount point /" + name);
}

Status Mount(const std::string& source, int target_fd, const char* fstype, unsigned long flags,
             const std::string& data, std::string_view what) {
  if (::mount(source.c_str(), FdPath(target_fd).c_str(), fstype, flags,
              data.empty() ? nullptr : data.c_str()) != 0) {
    return ErrnoStatus("mounting " + std::string(what), errno);
  }
  return OkStatus();
}

// Mounts a fresh filesystem of type `fstype` on dir/name.
Status MountOn(int dir_fd, const std::string& name, const char* fstype, unsigned long flags,
               const std::string& data) {
  SR_ASSIGN_OR_RETURN(UniqueFd point, MountPoint(dir_fd, name));
  return Mount(fstype, point.get(), fstype, flags, data, fstype + (" on " + name));
}

// statvfs's ST_* flags as the MS_* flags a remount takes (ST_RELATIME differs from MS_RELATIME).
unsigned long LockedFlags(const struct statvfs& st) {
  unsigned long out = 0;
  for (auto [st_flag, ms_flag] : {std::pair{ST_NOSUID, MS_NOSUID},
                                  {ST_NODEV, MS_NODEV},
                                  {ST_NOEXEC, MS_NOEXEC},
                                  {ST_NOATIME, MS_NOATIME},
                                  {ST_NODIRATIME, MS_NODIRATIME},
                                  {ST_RELATIME, MS_RELATIME}}) {
    if (st.f_flag & st_flag) out |= ms_flag;
  }
  return out;
}

// A remount keeps the flags the kernel locks on a mount from a more privileged namespace
// (nosuid, nodev, noexec, atime): dropping them would be refused.
Status RemountBind(int target_fd, unsigned long flags, std::string_view what) {
  struct statvfs st;
  if (::fstatvfs(target_fd, &st) != 0) return ErrnoStatus("statvfs " + std::string(what), errno);
  const unsigned long locked = LockedFlags(st);
  return Mount("", target_fd, nullptr, MS_BIND | MS_REMOUNT | locked | flags, "", what);
}

// The root: a recursive clone of the directory init was handed, attached on top of it
// (pivot_root needs a mount point); the clone's descriptor is the new root. Init may not be able
// to reach the directory by path (its user namespace's root is not the host's).
Result<UniqueFd> MountRoot(int dir_fd) {
  UniqueFd tree(static_cast<int>(
      ::syscall(SYS_open_tree, dir_fd, "", OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH | O_CLOEXEC)));
  if (!tree) return ErrnoStatus("cloning the container root", errno);
  if (::syscall(SYS_move_mount, tree.get(), "", dir_fd, "",
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    return ErrnoStatus("attaching the container root", errno);
  }
  return tree;
}

// runc's default devices (all 0666, root-owned) and /dev links.
const SpecDevice kDefaultDevices[] = {
    {"/dev/null", 'c', 1, 3, 0666, 0, 0},    {"/dev/zero", 'c', 1, 5, 0666, 0, 0},
    {"/dev/full", 'c', 1, 7, 0666, 0, 0},    {"/dev/random", 'c', 1, 8, 0666, 0, 0},
    {"/dev/urandom", 'c', 1, 9, 0666, 0, 0}, {"/dev/tty", 'c', 5, 0, 0666, 0, 0},
};
constexpr std::pair<const char*, const char*> kDevLinks[] = {
    {"fd", "/proc/self/fd"},
    {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"},
};

// A device node: mknod, or in a user namespace (where mknod is refused) a bind mount of the
// host's node, as runc does.
Status CreateDevice(int root_fd, const SpecDevice& device, bool user_namespace) {
  if (user_namespace) {
    SR_ASSIGN_OR_RETURN(UniqueFd target, MakeInRoot(root_fd, device.path, /*directory=*/false));
    UniqueFd host(::open(device.path.c_str(), O_PATH | O_CLOEXEC));
    if (!host) return ErrnoStatus("opening the host's " + device.path, errno);
    return Mount(FdPath(host.get()), target.get(), nullptr, MS_BIND, "", device.path);
  }
  const std::size_t slash = device.path.find_last_of('/');
  SR_ASSIGN_OR_RETURN(UniqueFd dir_path, MakeInRoot(root_fd, device.path.substr(0, slash), true));
  UniqueFd dir(::openat(dir_path.get(), ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!dir) return ErrnoStatus("opening the directory of " + device.path, errno);
  const std::string name = device.path.substr(slash + 1);
  mode_t type = device.type == 'b' ? S_IFBLK : device.type == 'p' ? S_IFIFO : S_IFCHR;
  mode_t mode = device.file_mode.value_or(0666) & 07777;
  ::unlinkat(dir.get(), name.c_str(), 0);
  if (::mknodat(dir.get(), name.c_str(), type | mode,
                makedev(static_cast<unsigned>(device.major), static_cast<unsigned>(device.minor))) != 0) {
    return ErrnoStatus("creating " + device.path, errno);
  }
  if (::fchownat(dir.get(), name.c_str(), device.uid.value_or(0), device.gid.value_or(0),
                 AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chown " + device.path, errno);
  }
  return OkStatus();
}

Status PopulateDev(int root_fd, const BootSpec& spec, bool user_namespace) {
  SR_ASSIGN_OR_RETURN(UniqueFd dev, OpenInRoot(root_fd, "/dev", O_DIRECTORY | O_RDONLY));
  for (const SpecDevice& device : kDefaultDevices)
    SR_RETURN_IF_ERROR(CreateDevice(root_fd, device, user_namespace));
  for (const SpecDevice& device : spec.linux.devices)
    SR_RETURN_IF_ERROR(CreateDevice(root_fd, device, user_namespace));
  for (const auto& [name, target] : kDevLinks) {
    if (::symlinkat(target, dev.get(), name) != 0 && errno != EEXIST)
      return ErrnoStatus(std::string("linking /dev/") + name, errno);
  }
  // As runc: /dev/core only where the kernel has a /proc/kcore.
  if (::access("/proc/kcore", F_OK) == 0 && ::symlinkat("/proc/kcore", dev.get(), "core") != 0 &&
      errno != EEXIST) {
    return ErrnoStatus("linking /dev/core", errno);
  }
  // /dev/ptmx is the devpts instance's (runc: a link when /dev/pts is mounted).
  ::unlinkat(dev.get(), "ptmx", 0);
  if (::symlinkat("pts/ptmx", dev.get(), "ptmx") != 0) return ErrnoStatus("linking /dev/ptmx", errno);
  return OkStatus();
}

// The boot's own defaults, for a spec without "mounts".
Status DefaultMounts(int root_fd, const BootSpec& spec, bool user_namespace) {
  SR_RETURN_IF_ERROR(MountOn(root_fd, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  SR_RETURN_IF_ERROR(MountOn(root_fd, "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"));
  SR_ASSIGN_OR_RETURN(UniqueFd dev, OpenDir(root_fd, "dev", "/dev"));
  SR_RETURN_IF_ERROR(
      MountOn(dev.get(), "pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"));
  SR_RETURN_IF_ERROR(
      MountOn(dev.get(), "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"));
  SR_RETURN_IF_ERROR(MountOn(dev.get(), "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  SR_RETURN_IF_ERROR(PopulateDev(root_fd, spec, user_namespace));
  return MountOn(root_fd, "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
}

Status ApplyPropagation(int target_fd, const MountOptions& options, std::string_view what) {
  for (unsigned long flag : options.propagation)
    SR_RETURN_IF_ERROR(Mount("", target_fd, nullptr, flag, "", what));
  return OkStatus();
}

Status BindMount(int root_fd, const SpecMount& m, const MountOptions& options) {
  UniqueFd source(::open(m.source.c_str(), O_PATH | O_CLOEXEC));
  if (!source) return ErrnoStatus("bind mount source " + m.source, errno);
  struct stat st;
  if (::fstat(source.get(), &st) != 0) return ErrnoStatus("stat " + m.source, errno);
  SR_ASSIGN_OR_RETURN(UniqueFd target, MakeInRoot(root_fd, m.destination, S_ISDIR(st.st_mode)));
  SR_RETURN_IF_ERROR(Mount(FdPath(source.get()), target.get(), nullptr, MS_BIND | (options.flags & MS_REC),
                           "", "bind " + m.source + " on " + m.destination));
  unsigned long extra = options.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
  if (extra != 0) {
    SR_ASSIGN_OR_RETURN(UniqueFd mounted, OpenInRoot(root_fd, m.destination, O_PATH));
    SR_RETURN_IF_ERROR(RemountBind(mounted.get(), extra, m.destination));
  }
  return OkStatus();
}

// cgroup v1: a tmpfs with one hierarchy per controller line of /proc/self/cgroup (mounted
// fresh in a cgroup namespace, else a bind of this process's cgroup directory); v2: cgroup2.
Status CgroupMount(int root_fd, const SpecMount& m, const MountOptions& options, bool cgroup_namespace) {
  SR_ASSIGN_OR_RETURN(std::string cgroups, ReadFile("/proc/self/cgroup"));
  SR_ASSIGN_OR_RETURN(UniqueFd target, MakeInRoot(root_fd, m.destination, /*directory=*/true));
  const unsigned long flags = options.flags & ~MS_RDONLY;
  const bool v2_only = cgroups.rfind("0::", 0) == 0 && cgroups.find('\n') + 1 == cgroups.size();
  if (v2_only) {
    return Mount("cgroup2", target.get(), "cgroup2", options.flags, "", "cgroup2 on " + m.destination);
  }
  SR_RETURN_IF_ERROR(Mount("tmpfs", target.get(), "tmpfs", flags, "mode=755", "tmpfs on " + m.destination));
  std::size_t pos = 0;
  while (pos < cgroups.size()) {
    std::size_t end = cgroups.find('\n', pos);
    std::string line = cgroups.substr(pos, end - pos);
    pos = end == std::string::npos ? cgroups.size() : end + 1;
    std::size_t c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    if (controllers.empty()) continue;  // the v2 line of a hybrid host
    std::string dir = controllers.rfind("name=", 0) == 0 ? controllers.substr(5) : controllers;
    SR_ASSIGN_OR_RETURN(UniqueFd point, MakeInRoot(root_fd, m.destination + "/" + dir, true));
    if (cgroup_namespace) {
      SR_RETURN_IF_ERROR(
          Mount("cgroup", point.get(), "cgroup", options.flags, controllers, "cgroup " + controllers));
    } else {
      std::string host = "/sys/fs/cgroup/" + dir + path;
      UniqueFd source(::open(host.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!source) return ErrnoStatus("opening " + host, errno);
      SR_RETURN_IF_ERROR(Mount(FdPath(source.get()), point.get(), nullptr, MS_BIND, "", host));
      SR_ASSIGN_OR_RETURN(UniqueFd bound, OpenInRoot(root_fd, m.destination + "/" + dir, O_PATH));
      SR_RETURN_IF_ERROR(RemountBind(bound.get(), options.flags, host));
    }
  }
  // As runc: the tmpfs holding the hierarchies stays writable; each hierarchy has the options.
  return OkStatus();
}

// A volume of the container's own sealed root (design/api.md, "sealroot.volume"): a directory
// there, bound onto itself so that it stays writable under a read-only root. What the container
// writes in it is sealed with the rest of its writable layer, never a host directory.
Status SealedVolume(int root_fd, const SpecMount& m) {
  const bool fresh = !OpenInRoot(root_fd, m.destination, O_PATH).ok();
  SR_ASSIGN_OR_RETURN(UniqueFd target, MakeInRoot(root_fd, m.destination, /*directory=*/true));
  // As kubelet makes an emptyDir: anyone in the container may write.
  if (fresh && ::chmod(FdPath(target.get()).c_str(), 0777) != 0) {
    return ErrnoStatus("chmod " + m.destination, errno);
  }
  return Mount(FdPath(target.get()), target.get(), nullptr, MS_BIND, "", "volume " + m.destination);
}

Status SpecMountOne(int root_fd, const SpecMount& m, const RootfsConfig& config) {
  MountOptions options = ParseMountOptions(m.options);
  const std::string what = m.type + " on " + m.destination;
  if (m.type == "sealroot.volume") {
    SR_RETURN_IF_ERROR(SealedVolume(root_fd, m));
  } else if (m.type == "bind" || (options.flags & MS_BIND)) {
    SR_RETURN_IF_ERROR(BindMount(root_fd, m, options));
  } else if (m.type == "cgroup") {
    SR_RETURN_IF_ERROR(CgroupMount(root_fd, m, options, config.cgroup_namespace));
  } else {
    SR_ASSIGN_OR_RETURN(UniqueFd target, MakeInRoot(root_fd, m.destination, /*directory=*/true));
    Status mounted = Mount(m.source.empty() ? m.type : m.source, target.get(), m.type.c_str(), options.flags,
                           options.data, what);
    // As runc in a user namespace: sysfs or mqueue the namespace may not mount are bound from
    // the boot's view.
    if (!mounted.ok() && config.user_namespace && (m.type == "sysfs" || m.type == "mqueue")) {
      const std::string host = m.type == "sysfs" ? "/sys" : "/dev/mqueue";
      UniqueFd source(::open(host.c_str(), O_PATH | O_CLOEXEC));
      if (!source) return ErrnoStatus("opening " + host, errno);
      mounted = Mount(FdPath(source.get()), target.get(), nullptr, MS_BIND | MS_REC, "", what);
      if (mounted.ok()) mounted = RemountBind(target.get(), options.flags & ~MS_REC, what);
    }
    SR_RETURN_IF_ERROR(mounted);
  }
  SR_ASSIGN_OR_RETURN(UniqueFd mounted, OpenInRoot(root_fd, m.destination, O_PATH));
  return ApplyPropagation(mounted.get(), options, what);
}

Status SpecMounts(int root_fd, const RootfsConfig& config) {
  const BootSpec& spec = *config.spec;
  bool dev_is_fresh = false;
  for (const SpecMount& m : *spec.mounts) {
    SR_RETURN_IF_ERROR(SpecMountOne(root_fd, m, config));
    if (m.destination == "/dev") dev_is_fresh = m.type != "bind";
  }
  // As runc: a /dev that is not the host's gets the default devices, the spec's, and links.
  if (dev_is_fresh) SR_RETURN_IF_ERROR(PopulateDev(root_fd, spec, config.user_namespace));
  return OkStatus();
}

unsigned long RootPropagation(const std::string& name) {
  MountOptions options = ParseMountOptions({name});
  return options.propagation.empty() ? MS_SLAVE | MS_REC : options.propagation.front();
}

// pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the
// container's tree (the approach runc takes, with no directory needed for the old root).
Status PivotInto(int root_fd) {
  if (::fchdir(root_fd) != 0) return ErrnoStatus("entering the container root", errno);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return ErrnoStatus("pivot_root", errno);
  if (::umount2(".", MNT_DETACH) != 0) return ErrnoStatus("detaching the old root", errno);
  if (::chdir("/") != 0) return ErrnoStatus("chdir /", errno);
  return OkStatus();
}

// Namespaced sysctls (runc's list): IPC ones, and net.* when the container has its own network.
bool IsNamespacedSysctl(std::string_view key, bool new_network_namespace) {
  for (std::string_view ipc : {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}) {
    if (key == ipc) return true;
  }
  if (key.rfind("fs.mqueue.", 0) == 0) return true;
  return new_network_namespace && key.rfind("net.", 0) == 0;
}

Status MaskPath(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return errno == ENOENT ? OkStatus() : ErrnoStatus("stat " + path, errno);
  if (S_ISDIR(st.st_mode)) {
    if (::mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY, nullptr) != 0)
      return ErrnoStatus("masking " + path, errno);
  } else if (::mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ErrnoStatus("masking " + path, errno);
  }
  return OkStatus();
}

// RemountBind by path, for after pivot_root (when the container may have no /proc).
Status RemountPath(const std::string& path, unsigned long flags) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return ErrnoStatus("statvfs " + path, errno);
  const unsigned long locked = LockedFlags(st);
  if (::mount("", path.c_str(), nullptr, MS_BIND | MS_REMOUNT | locked | flags, nullptr) != 0) {
    return ErrnoStatus("remounting " + path + " read-only", errno);
  }
  return OkStatus();
}

Status ReadonlyPath(const std::string& path) {
  if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return errno == ENOENT ? OkStatus() : ErrnoStatus("binding " + path, errno);
  }
  return RemountPath(path, MS_RDONLY | MS_REC);
}

}  // namespace

Result<std::string> PrepareRoot(const std::string& root, bool in_memory_upper, uid_t owner_uid,
                                gid_t owner_gid) {
  if (!in_memory_upper) return root;
  SR_ASSIGN_OR_RETURN(UniqueFd lower, OpenDir(AT_FDCWD, root, "container root " + root));
  SR_RETURN_IF_ERROR(
      Mount("tmpfs", lower.get(), "tmpfs", MS_NOSUID, "mode=755", "the writable layer (tmpfs)"));
  SR_ASSIGN_OR_RETURN(UniqueFd layer, OpenDir(AT_FDCWD, root, "writable layer"));
  for (const char* dir : {"upper", "work", "merged"}) {
    if (::mkdirat(layer.get(), dir, 0755) != 0)
      return ErrnoStatus(std::string("creating overlay ") + dir, errno);
  }
  SR_ASSIGN_OR_RETURN(UniqueFd upper, OpenDir(layer.get(), "upper", "overlay upper"));
  SR_ASSIGN_OR_RETURN(UniqueFd work, OpenDir(layer.get(), "work", "overlay work"));
  SR_ASSIGN_OR_RETURN(UniqueFd merged, OpenDir(layer.get(), "merged", "overlay root"));
  // The overlay's root directory is the upper's: owned by the container's root.
  for (const char* dir : {"upper", "work"}) {
    if (::fchownat(layer.get(), dir, owner_uid, owner_gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(std::string("chown overlay ") + dir, errno);
    }
  }
  // The lower is named through its descriptor (under the tmpfs now), so paths with ',' or ':'
  // cannot inject options.
  std::string options = "lowerdir=" + FdPath(lower.get()) + ",upperdir=" + FdPath(upper.get()) +
                        ",workdir=" + FdPath(work.get());
  SR_RETURN_IF_ERROR(Mount("overlay", merged.get(), "overlay", 0, options, "the root (overlay)"));
  return JoinPath(root, "merged");
}

Status EnterRoot(const RootfsConfig& config) {
  const BootSpec& spec = *config.spec;
  if (::mount(nullptr, "/", nullptr, RootPropagation(spec.linux.rootfs_propagation), nullptr) != 0) {
    return ErrnoStatus("setting the root's propagation", errno);
  }
  SR_ASSIGN_OR_RETURN(UniqueFd root_fd, MountRoot(config.root_fd));
  if (spec.mounts) {
    SR_RETURN_IF_ERROR(SpecMounts(root_fd.get(), config));
  } else {
    SR_RETURN_IF_ERROR(DefaultMounts(root_fd.get(), spec, config.user_namespace));
  }
  return PivotInto(root_fd.get()).WithContext("entering root " + config.root);
}

Status FinalizeRoot(const BootSpec& spec, bool new_network_namespace) {
  for (const auto& [key, value] : spec.linux.sysctl) {
    if (!IsNamespacedSysctl(key, new_network_namespace)) {
      return PermissionDenied("sysctl " + key + " is not namespaced (it would change the host)");
    }
    std::string path = "/proc/sys/" + key;
    for (std::size_t i = 10; i < path.size(); ++i) {
      if (path[i] == '.') path[i] = '/';
    }
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd || !WriteAll(fd.get(), AsBytes(value)).ok()) return ErrnoStatus("setting sysctl " + key, errno);
  }
  for (const std::string& path : spec.linux.readonly_paths) SR_RETURN_IF_ERROR(ReadonlyPath(path));
  for (const std::string& path : spec.linux.masked_paths) SR_RETURN_IF_ERROR(MaskPath(path));
  if (spec.root_readonly) SR_RETURN_IF_ERROR(RemountPath("/", MS_RDONLY));
  return OkStatus();
}

}  // namespace sealroot::boot
