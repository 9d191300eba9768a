#include "image/src/extractor.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>

#include "base/file.h"
#include "base/log.h"
#include "image/src/root_fs.h"

namespace sealroot::image::internal {
namespace {

constexpr std::size_t kWriteBuffer = 1 << 20;
constexpr std::uint32_t kRootlessNoopId = 0xFFFFFFFFu;

struct DirDeleter {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirDeleter>;

// Lists a directory's entries (without "." and ".."), reading through a dup of `dir_fd`.
Result<std::vector<std::string>> ListDir(int dir_fd) {
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening directory", errno);
  DirPtr dir(::fdopendir(fd));
  if (!dir) {
    ::close(fd);
    return ErrnoStatus("reading directory", errno);
  }
  std::vector<std::string> names;
  while (dirent* d = ::readdir(dir.get())) {
    std::string_view n = d->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  return names;
}

timespec ToTimespec(const Entry& e) {
  return timespec{e.mtime_sec, e.mtime_nsec};
}

// The rootlesscontainers.io Resource protobuf: uint32 uid = 1, uint32 gid = 2 (proto3, zero
// fields omitted; NoopID means "unchanged").
std::string RootlessXattr(std::uint32_t uid, std::uint32_t gid) {
  std::string out;
  auto varint = [&](std::uint8_t tag, std::uint32_t v) {
    if (v == 0) return;
    out.push_back(static_cast<char>(tag));
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  };
  varint(0x08, uid == 0 ? kRootlessNoopId : uid);
  varint(0x10, gid == 0 ? kRootlessNoopId : gid);
  return out;
}

class EmptyReader final : public Reader {
 public:
  Result<std::size_t> Read(std::span<std::uint8_t>) override { return std::size_t{0}; }
};

std::string JoinEntryPath(std::string_view parent, std::string_view name) {
  return parent.empty() ? std::string(name) : std::string(parent) + "/" + std::string(name);
}

}  // namespace

Status RemoveAt(int dir_fd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? OkStatus() : ErrnoStatus("stat '" + name + "'", errno);
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) return ErrnoStatus("opening '" + name + "'", errno);
    SR_ASSIGN_OR_RETURN(std::vector<std::string> children, ListDir(sub.get()));
    for (const std::string& child : children) SR_RETURN_IF_ERROR_CTX(RemoveAt(sub.get(), child), name);
    if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0)
      return ErrnoStatus("removing '" + name + "'", errno);
    return OkStatus();
  }
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT)
    return ErrnoStatus("removing '" + name + "'", errno);
  return OkStatus();
}

Extractor::Extractor(int root_fd, ExtractorOptions options)
    : root_fd_(root_fd), options_(options), buffer_(kWriteBuffer) {}

Result<UniqueFd> Extractor::OpenParent(std::string_view parent, bool create) {
  auto fd = OpenInRoot(root_fd_, parent, O_PATH | O_DIRECTORY);
  if (fd.ok() || !create || fd.status().code() != Code::kNotFound) return fd;
  // Create missing parents one component at a time (umoci's MkdirAll inside the root). A
  // component that is a dangling symlink is an error: creating its target would let a link
  // decide where new directories appear.
  UniqueFd dir;
  SR_ASSIGN_OR_RETURN(dir, OpenInRoot(root_fd_, "", O_PATH | O_DIRECTORY));
  std::string prefix;
  for (std::string_view rest = parent; !rest.empty();) {
    std::size_t slash = rest.find('/');
    std::string part(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    std::string parent_of_part = prefix;
    prefix = JoinEntryPath(prefix, part);
    auto next = OpenInRoot(root_fd_, prefix, O_PATH | O_DIRECTORY);
    if (!next.ok() && next.status().code() == Code::kNotFound) {
      struct stat st {};
      if (::fstatat(dir.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        return FailedPrecondition("parent '" + prefix +
                                  "' is a link to something that does not exist in the root");
      }
      RememberDirTimes(dir.get(), parent_of_part);
      if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("creating parent directory '" + prefix + "'", errno);
      }
      next = OpenInRoot(root_fd_, prefix, O_PATH | O_DIRECTORY);
    }
    if (!next.ok()) return std::move(next).status();
    dir = std::move(next).value();
  }
  return dir;
}

void Extractor::RememberDirTimes(int dir_fd, const std::string& path) {
  if (dir_times_.count(path)) return;
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) return;
  dir_times_[path] = {st.st_atim, st.st_mtim};
}

Result<bool> Extractor::PrepareTarget(int parent_fd, const std::string& name, const Entry& entry) {
  struct stat st {};
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus("stat", errno);
  }
  if (S_ISDIR(st.st_mode) && entry.type == EntryType::kDirectory) return true;
  SR_RETURN_IF_ERROR(RemoveAt(parent_fd, name));
  return false;
}

Status Extractor::SetOwnerModeXattrs(int fd, const Entry& entry) {
  // chown first: it clears setuid/setgid, which chmod then sets.
  if (!options_.rootless) {
    if (::fchown(fd, entry.uid, entry.gid) != 0) return ErrnoStatus("chown", errno);
  } else if (entry.uid != 0 || entry.gid != 0) {
    std::string value = RootlessXattr(entry.uid, entry.gid);
    if (::fsetxattr(fd, "user.rootlesscontainers", value.data(), value.size(), 0) != 0) {
      return ErrnoStatus("recording ownership (user.rootlesscontainers)", errno);
    }
  }
  if (::fchmod(fd, entry.mode) != 0) return ErrnoStatus("chmod", errno);
  for (const auto& [key, value] : entry.xattrs) {
    if (::fsetxattr(fd, key.c_str(), value.data(), value.size(), 0) != 0) {
      return ErrnoStatus("setting xattr '" + key + "'", errno);
    }
  }
  return OkStatus();
}

Status Extractor::Apply(const Entry& entry, Reader* content) {
  if (entry.type == EntryType::kWhiteout) return ApplyWhiteout(entry);
  if (entry.type == EntryType::kOpaque) return ApplyOpaque(entry);
  if (entry.path.empty()) {  // the root itself (a "./" entry): attributes only
    dir_times_[""] = {ToTimespec(entry), ToTimespec(entry)};
    SR_ASSIGN_OR_RETURN(UniqueFd root, OpenInRoot(root_fd_, "", O_RDONLY | O_DIRECTORY));
    return SetOwnerModeXattrs(root.get(), entry);
  }
  auto [parent_path, name_view] = SplitParent(entry.path);
  std::string parent(parent_path), name(name_view);
  SR_ASSIGN_OR_RETURN(UniqueFd parent_fd, OpenParent(parent, /*create=*/true));
  RememberDirTimes(parent_fd.get(), parent);
  SR_ASSIGN_OR_RETURN(bool keep_dir, PrepareTarget(parent_fd.get(), name, entry));
  upper_.insert(entry.path);
  switch (entry.type) {
    case EntryType::kRegular:
      return WriteRegular(parent_fd.get(), name, entry, *content);
    case EntryType::kDirectory:
      return MakeDirectory(parent_fd.get(), name, entry, keep_dir);
    case EntryType::kSymlink:
      return MakeSymlink(parent_fd.get(), name, entry);
    case EntryType::kHardLink:
      return MakeHardLink(parent_fd.get(), name, entry);
    default:
      return MakeNode(parent_fd.get(), name, entry);
  }
}

Status Extractor::WriteRegular(int parent_fd, const std::string& name, const Entry& entry, Reader& content) {
  UniqueFd fd(::openat(parent_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus("creating file", errno);
  std::uint64_t written = 0;
  while (true) {
    SR_ASSIGN_OR_RETURN(std::size_t n, content.Read(buffer_));
    if (n == 0) break;
    SR_RETURN_IF_ERROR(WriteAll(fd.get(), std::span(buffer_).first(n)));
    written += n;
  }
  if (written != entry.size) {
    return DataLoss("file content is " + std::to_string(written) + " bytes, header says " +
                    std::to_string(entry.size));
  }
  SR_RETURN_IF_ERROR(SetOwnerModeXattrs(fd.get(), entry));
  timespec times[2] = {ToTimespec(entry), ToTimespec(entry)};
  if (::futimens(fd.get(), times) != 0) return ErrnoStatus("setting times", errno);
  return OkStatus();
}

Status Extractor::MakeDirectory(int parent_fd, const std::string& name, const Entry& entry, bool exists) {
  if (!exists && ::mkdirat(parent_fd, name.c_str(), 0700) != 0)
    return ErrnoStatus("creating directory", errno);
  UniqueFd fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus("opening directory", errno);
  SR_RETURN_IF_ERROR(SetOwnerModeXattrs(fd.get(), entry));
  // Children created later change the mtime: the tar's value is restored at the end.
  dir_times_[entry.path] = {ToTimespec(entry), ToTimespec(entry)};
  return OkStatus();
}

Status Extractor::MakeSymlink(int parent_fd, const std::string& name, const Entry& entry) {
  if (::symlinkat(entry.link_target.c_str(), parent_fd, name.c_str()) != 0)
    return ErrnoStatus("creating symlink", errno);
  if (!options_.rootless &&
      ::fchownat(parent_fd, name.c_str(), entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chown symlink", errno);
  }
  if (!entry.xattrs.empty()) {
    SR_LOG(kDebug) << "'" << entry.path << "': xattrs on a symlink are not applied";
  }
  timespec times[2] = {ToTimespec(entry), ToTimespec(entry)};
  if (::utimensat(parent_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return ErrnoStatus("setting symlink times", errno);
  return OkStatus();
}

Status Extractor::MakeHardLink(int parent_fd, const std::string& name, const Entry& entry) {
  if (entry.link_target == entry.path) return InvalidArgument("hard link to itself");
  auto [target_parent, target_name] = SplitParent(entry.link_target);
  auto target_dir = OpenInRoot(root_fd_, target_parent, O_PATH | O_DIRECTORY);
  if (!target_dir.ok())
    return std::move(target_dir).status().WithContext("hard link target '" + entry.link_target + "'");
  // Flags 0: the target's last component is never followed (a link to a symlink links the
  // symlink), so a link cannot reach through a symlink out of the root.
  if (::linkat(target_dir->get(), std::string(target_name).c_str(), parent_fd, name.c_str(), 0) != 0) {
    return ErrnoStatus("hard link to '" + entry.link_target + "'", errno);
  }
  return OkStatus();
}

Status Extractor::MakeNode(int parent_fd, const std::string& name, const Entry& entry) {
  mode_t type = entry.type == EntryType::kFifo         ? S_IFIFO
                : entry.type == EntryType::kCharDevice ? S_IFCHR
                                                       : S_IFBLK;
  if (type != S_IFIFO && options_.rootless) {
    // As umoci --rootless: an empty file with the device's mode stands in for it.
    Entry placeholder = entry;
    placeholder.type = EntryType::kRegular;
    placeholder.size = 0;
    ++skipped_devices_;
    EmptyReader empty;
    return WriteRegular(parent_fd, name, placeholder, empty);
  }
  if (type != S_IFIFO && !options_.can_mknod) {
    ++skipped_devices_;
    SR_LOG(kWarning) << "'" << entry.path << "': device node skipped (creating devices needs root)";
    return OkStatus();
  }
  if (::mknodat(parent_fd, name.c_str(), type | 0600, makedev(entry.dev_major, entry.dev_minor)) != 0) {
    return ErrnoStatus("creating device node", errno);
  }
  // Device nodes and fifos cannot be opened safely (a fifo blocks, a device has side effects):
  // set attributes by name, never following a link at `name`.
  if (!options_.rootless &&
      ::fchownat(parent_fd, name.c_str(), entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chown node", errno);
  }
  if (::fchmodat(parent_fd, name.c_str(), entry.mode, 0) != 0) return ErrnoStatus("chmod node", errno);
  timespec times[2] = {ToTimespec(entry), ToTimespec(entry)};
  if (::utimensat(parent_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return ErrnoStatus("setting node times", errno);
  return OkStatus();
}

Status Extractor::ApplyWhiteout(const Entry& entry) {
  if (upper_.count(entry.path)) return OkStatus();  // hides lower layers only
  auto [parent_path, name] = SplitParent(entry.path);
  auto parent = OpenInRoot(root_fd_, parent_path, O_PATH | O_DIRECTORY);
  if (!parent.ok()) return parent.status().code() == Code::kNotFound ? OkStatus() : parent.status();
  RememberDirTimes(parent->get(), std::string(parent_path));
  return RemoveAt(parent->get(), std::string(name));
}

Status Extractor::ApplyOpaque(const Entry& entry) {
  auto dir = OpenInRoot(root_fd_, entry.path, O_RDONLY | O_DIRECTORY);
  if (!dir.ok()) return dir.status().code() == Code::kNotFound ? OkStatus() : dir.status();
  return HideLowerChildren(dir->get(), entry.path);
}

Status Extractor::HideLowerChildren(int dir_fd, const std::string& dir_path) {
  SR_ASSIGN_OR_RETURN(std::vector<std::string> children, ListDir(dir_fd));
  RememberDirTimes(dir_fd, dir_path);
  for (const std::string& child : children) {
    std::string path = JoinEntryPath(dir_path, child);
    if (!upper_.count(path)) {
      SR_RETURN_IF_ERROR(RemoveAt(dir_fd, child));
      continue;
    }
    // Written by this layer: keep it, but a directory's lower children are still hidden.
    UniqueFd sub(::openat(dir_fd, child.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub) SR_RETURN_IF_ERROR(HideLowerChildren(sub.get(), path));
  }
  return OkStatus();
}

Status Extractor::FinishLayer() {
  // Deepest first; restoring a directory's times does not touch its parent's.
  for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
    auto dir = OpenInRoot(root_fd_, it->first, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!dir.ok()) continue;  // removed later in the same layer
    if (::futimens(dir->get(), it->second.data()) != 0)
      return ErrnoStatus("setting times of '" + it->first + "'", errno);
  }
  dir_times_.clear();
  upper_.clear();
  return OkStatus();
}

}  // namespace sealroot::image::internal
