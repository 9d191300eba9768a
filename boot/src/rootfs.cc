#include "boot/src/rootfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "base/fd.h"

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

// The root itself: a bind mount (pivot_root needs a mount point), or an overlay whose lower is
// `root` and whose upper and work directories live in a fresh tmpfs.
Result<UniqueFd> MountRoot(const std::string& root, bool in_memory_upper) {
  SR_ASSIGN_OR_RETURN(UniqueFd lower, OpenDir(AT_FDCWD, root, "container root " + root));
  SR_RETURN_IF_ERROR(
      Mount(FdPath(lower.get()), lower.get(), nullptr, MS_BIND | MS_REC, "", "the root (bind)"));
  SR_ASSIGN_OR_RETURN(UniqueFd bound, OpenDir(AT_FDCWD, root, "container root " + root));
  if (!in_memory_upper) return bound;

  SR_RETURN_IF_ERROR(
      Mount("tmpfs", bound.get(), "tmpfs", MS_NOSUID, "mode=755", "the writable layer (tmpfs)"));
  SR_ASSIGN_OR_RETURN(UniqueFd layer, OpenDir(AT_FDCWD, root, "writable layer"));
  for (const char* dir : {"upper", "work", "merged"}) {
    if (::mkdirat(layer.get(), dir, 0755) != 0)
      return ErrnoStatus(std::string("creating overlay ") + dir, errno);
  }
  SR_ASSIGN_OR_RETURN(UniqueFd upper, OpenDir(layer.get(), "upper", "overlay upper"));
  SR_ASSIGN_OR_RETURN(UniqueFd work, OpenDir(layer.get(), "work", "overlay work"));
  SR_ASSIGN_OR_RETURN(UniqueFd merged, OpenDir(layer.get(), "merged", "overlay root"));
  std::string options = "lowerdir=" + FdPath(bound.get()) + ",upperdir=" + FdPath(upper.get()) +
                        ",workdir=" + FdPath(work.get());
  SR_RETURN_IF_ERROR(Mount("overlay", merged.get(), "overlay", 0, options, "the root (overlay)"));
  return OpenDir(layer.get(), "merged", "overlay root");
}

struct DeviceNode {
  const char* name;
  unsigned int major, minor;
};
constexpr DeviceNode kDevices[] = {
    {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};
constexpr std::pair<const char*, const char*> kDevLinks[] = {
    {"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"},
};

Status PopulateDev(int root_fd) {
  SR_RETURN_IF_ERROR(MountOn(root_fd, "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"));
  SR_ASSIGN_OR_RETURN(UniqueFd dev, OpenDir(root_fd, "dev", "/dev"));
  for (const DeviceNode& node : kDevices) {
    if (::mknodat(dev.get(), node.name, S_IFCHR | 0666, makedev(node.major, node.minor)) != 0) {
      return ErrnoStatus(std::string("creating /dev/") + node.name, errno);
    }
  }
  for (const auto& [name, target] : kDevLinks) {
    if (::symlinkat(target, dev.get(), name) != 0)
      return ErrnoStatus(std::string("linking /dev/") + name, errno);
  }
  SR_RETURN_IF_ERROR(
      MountOn(dev.get(), "pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"));
  SR_RETURN_IF_ERROR(
      MountOn(dev.get(), "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"));
  return MountOn(dev.get(), "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
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

}  // namespace

Status EnterRoot(const std::string& root, bool in_memory_upper) {
  SR_ASSIGN_OR_RETURN(UniqueFd root_fd, MountRoot(root, in_memory_upper));
  SR_RETURN_IF_ERROR(MountOn(root_fd.get(), "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  SR_RETURN_IF_ERROR(PopulateDev(root_fd.get()));
  SR_RETURN_IF_ERROR(MountOn(root_fd.get(), "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  return PivotInto(root_fd.get()).WithContext("entering root " + root);
}

}  // namespace sealroot::boot
