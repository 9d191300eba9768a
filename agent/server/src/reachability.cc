#include "agent/server/src/reachability.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "base/file.h"

namespace sealroot::agent {
namespace {

// The directories a container must not see: where the sockets and the state live.
std::vector<std::filesystem::path> ProtectedDirs(const AgentConfig& config) {
  std::vector<std::filesystem::path> dirs = {config.state_dir, config.store_dir};
  for (const auto* listeners : {&config.ttrpc, &config.grpc}) {
    for (const ListenAddress& address : *listeners) {
      if (address.kind == ListenAddress::Kind::kUnix) dirs.emplace_back(Dirname(address.path));
    }
  }
  return dirs;
}

// `path` lexically cleaned, then resolved as far as it exists (symlinks on the host included).
std::filesystem::path Resolve(const std::string& path) {
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
  return ec ? std::filesystem::path(path).lexically_normal() : resolved;
}

// Whether `a` is `b` or one of its ancestors.
bool Contains(const std::filesystem::path& a, const std::filesystem::path& b) {
  auto [end_a, end_b] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return end_a == a.end() || (std::next(end_a) == a.end() && (*end_a).empty());
}

bool IsBind(const ::grpc::Mount& mount) {
  return mount.type() == "bind" ||
         std::any_of(mount.options().begin(), mount.options().end(),
                     [](const std::string& o) { return o == "bind" || o == "rbind"; });
}

// Whether the spec gives the container a namespace of `type` other than the agent's own.
Status CheckOwnNamespace(const ::grpc::Linux& linux_spec, const std::string& type, const char* proc_name) {
  auto it = std::find_if(linux_spec.namespaces().begin(), linux_spec.namespaces().end(),
                         [&](const ::grpc::LinuxNamespace& ns) { return ns.type() == type; });
  if (it == linux_spec.namespaces().end())
    return PermissionDenied("the spec shares the agent's " + type + " namespace");
  if (it->path().empty()) return OkStatus();
  struct stat joined {
  }, own{};
  if (stat(it->path().c_str(), &joined) != 0) {
    int err = errno;
    return ErrnoStatus("checking namespace " + it->path(), err);
  }
  if (stat((std::string("/proc/self/ns/") + proc_name).c_str(), &own) != 0) {
    int err = errno;
    return ErrnoStatus("reading the agent's own namespace", err);
  }
  if (joined.st_dev == own.st_dev && joined.st_ino == own.st_ino) {
    return PermissionDenied("the spec joins the agent's own " + type + " namespace (" + it->path() + ")");
  }
  return OkStatus();
}

}  // namespace

Status CheckAgentUnreachable(const ::grpc::Spec& spec, const AgentConfig& config) {
  const std::vector<std::filesystem::path> dirs = ProtectedDirs(config);
  for (const ::grpc::Mount& mount : spec.mounts()) {
    if (!IsBind(mount)) continue;
    const std::filesystem::path source = Resolve(mount.source());
    for (const std::filesystem::path& dir : dirs) {
      const std::filesystem::path resolved = Resolve(dir);
      if (Contains(source, resolved) || Contains(resolved, source)) {
        return PermissionDenied("bind mount of " + mount.source() +
                                " would put the agent's sockets or state (" + dir.string() +
                                ") into the container");
      }
    }
  }
  if (!spec.has_linux()) return OkStatus();  // the defaults: new network and mount namespaces
  SR_RETURN_IF_ERROR(CheckOwnNamespace(spec.linux(), "mount", "mnt"));
  const bool tcp = std::any_of(config.ttrpc.begin(), config.ttrpc.end(),
                               [](const ListenAddress& a) { return a.kind == ListenAddress::Kind::kTcp; });
  if (tcp) {
    Status own = CheckOwnNamespace(spec.linux(), "network", "net");
    if (!own.ok()) return PermissionDenied(own.message() + " while the agent listens on loopback TCP");
  }
  return OkStatus();
}

}  // namespace sealroot::agent
