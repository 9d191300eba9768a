// gc and df over the store's untrusted hints (design/sealfs.md "gc and df"): roots/* list the
// layers and image-level objects of each committed root; layers/*/objects list each layer's.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <sstream>
#include <string>

#include "base/file.h"
#include "base/log.h"
#include "fusefs/store.h"

namespace sealroot::fusefs {

struct Store::Liveness {
  std::set<std::string, std::less<>> layers;   // diff ids
  std::set<std::string, std::less<>> objects;  // hex names
};

namespace {

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// Calls fn(name, dir_fd) for each entry of dir_fd/sub.
template <typename Fn>
Status ForEachEntry(int dir_fd, const std::string& sub, Fn fn) {
  int fd = openat(dir_fd, sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("listing " + sub, errno);
  std::unique_ptr<DIR, DirCloser> dir(fdopendir(fd));
  if (!dir) {
    close(fd);
    return ErrnoStatus("listing " + sub, errno);
  }
  while (dirent* e = readdir(dir.get())) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    SR_RETURN_IF_ERROR(fn(std::string(n), dirfd(dir.get())));
  }
  return OkStatus();
}

Result<std::string> ReadHint(const std::string& path) {
  return ReadFile(path, 256u << 20);
}

}  // namespace

Result<Store::Liveness> Store::ComputeLiveness() const {
  Liveness live;
  SR_RETURN_IF_ERROR(ForEachEntry(dir_fd_.get(), "roots", [&](const std::string& name, int) -> Status {
    if (name.size() != 64) return OkStatus();  // a temporary file of an atomic write
    live.objects.insert(name);
    SR_ASSIGN_OR_RETURN(std::string text, ReadHint(JoinPath(dir_, "roots/" + name)));
    std::istringstream lines(text);
    std::string kind, value;
    while (lines >> kind >> value) {
      if (kind == "layer") live.layers.insert(value);
      if (kind == "object") live.objects.insert(value);
    }
    return OkStatus();
  }));
  for (const std::string& layer : live.layers) {
    auto text = ReadHint(JoinPath(dir_, "layers/" + layer + "/objects"));
    if (!text.ok()) {
      SR_LOG(kWarning) << "store " << dir_ << ": a root lists layer " << layer << ", which is missing";
      continue;
    }
    std::istringstream lines(*text);
    std::string value;
    while (lines >> value) live.objects.insert(value);
  }
  return live;
}

namespace {

// Calls fn(hex_name, fd_of_its_directory, file_name) for every object file.
template <typename Fn>
Status ForEachObject(int dir_fd, Fn fn) {
  auto in_prefix = [&](const std::string& prefix, int) -> Status {
    return ForEachEntry(dir_fd, "objects/" + prefix,
                        [&](const std::string& rest, int fd) { return fn(prefix + rest, fd, rest); });
  };
  return ForEachEntry(dir_fd, "objects", in_prefix);
}

std::uint64_t FileSize(int dir_fd, const std::string& name) {
  struct stat st {};
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace

Result<GcReport> Store::CollectGarbage(const GcOptions& options) const {
  if (lock_ != StoreLock::kExclusive) return FailedPrecondition("gc needs the store's exclusive lock");
  const std::string ctx = "collecting garbage in store " + dir_;
  GcReport report;
  if (options.prune_roots) {
    // Roots neither kept nor pinned go first; what only they used is then unreferenced.
    SR_ASSIGN_OR_RETURN(std::set<RootHash> pinned, PinnedRoots());
    SR_ASSIGN_OR_RETURN(std::vector<RootHash> roots, ListRoots());
    for (const RootHash& root : roots) {
      if (options.keep.contains(root) || pinned.contains(root)) continue;
      std::string rel = "roots/" + HashHex(root);
      if (unlinkat(dir_fd_.get(), rel.c_str(), 0) != 0 && errno != ENOENT)
        return ErrnoStatus(ctx + ": removing root " + HashHex(root), errno);
      ++report.roots_removed;
    }
  }
  SR_ASSIGN_OR_RETURN(Liveness live, ComputeLiveness());
  auto remove_layer = [&](const std::string& name, int) -> Status {
    if (live.layers.contains(name)) return OkStatus();
    ++report.layers_removed;
    return RemoveTree(JoinPath(dir_, "layers/" + name));
  };
  // Live objects are exactly those reachable from a root (directly or through its layers).
  auto remove_object = [&](const std::string& hex, int fd, const std::string& file) -> Status {
    if (live.objects.contains(hex)) return OkStatus();
    report.bytes_removed += FileSize(fd, file);
    if (unlinkat(fd, file.c_str(), 0) != 0) return ErrnoStatus("removing object " + hex, errno);
    ++report.objects_removed;
    return OkStatus();
  };
  auto remove_staged = [&](const std::string& name, int) -> Status {
    ++report.staging_removed;
    return RemoveTree(JoinPath(dir_, "staging/" + name));
  };
  SR_RETURN_IF_ERROR_CTX(ForEachEntry(dir_fd_.get(), "layers", remove_layer), ctx);
  SR_RETURN_IF_ERROR_CTX(ForEachObject(dir_fd_.get(), remove_object), ctx);
  SR_RETURN_IF_ERROR_CTX(ForEachEntry(dir_fd_.get(), "staging", remove_staged), ctx);
  return report;
}

Result<UsageReport> Store::Usage() const {
  const std::string ctx = "measuring store " + dir_;
  SR_ASSIGN_OR_RETURN(Liveness live, ComputeLiveness());
  UsageReport report;
  auto count_root = [&](const std::string& name, int) -> Status {
    report.roots += name.size() == 64;
    return OkStatus();
  };
  auto count_layer = [&](const std::string&, int) -> Status {
    ++report.layers;
    return OkStatus();
  };
  // Objects of layers no root uses count as reclaimable, as gc would remove them.
  auto count_object = [&](const std::string& hex, int fd, const std::string& file) -> Status {
    std::uint64_t size = FileSize(fd, file);
    ++report.objects;
    report.bytes += size;
    if (!live.objects.contains(hex)) {
      ++report.unreferenced_objects;
      report.unreferenced_bytes += size;
    }
    return OkStatus();
  };
  SR_RETURN_IF_ERROR_CTX(ForEachEntry(dir_fd_.get(), "roots", count_root), ctx);
  SR_RETURN_IF_ERROR_CTX(ForEachEntry(dir_fd_.get(), "layers", count_layer), ctx);
  SR_RETURN_IF_ERROR_CTX(ForEachObject(dir_fd_.get(), count_object), ctx);
  return report;
}

}  // namespace sealroot::fusefs
