#include "agent/server/src/validate.h"

#include <algorithm>
#include <array>
#include <set>

#include "boot/spec/process_spec.h"

namespace sealroot::agent {
namespace {

constexpr std::size_t kMaxIdSize = 128;
constexpr std::size_t kMaxArgs = 4096;

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool HasControlBytes(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool IsAbsolute(std::string_view path) {
  return !path.empty() && path[0] == '/' && path.find('\0') == std::string_view::npos;
}

Status CheckAbsolute(const std::string& path, std::string_view what) {
  if (IsAbsolute(path)) return OkStatus();
  return InvalidArgument("malformed OCI spec: " + std::string(what) + " \"" + path.substr(0, 64) +
                         "\" is not absolute");
}

constexpr std::array<std::string_view, 7> kNamespaceTypes = {"pid", "network", "mount", "ipc",
                                                             "uts", "user",    "cgroup"};

}  // namespace

Status ValidateContainerId(std::string_view id) {
  if (id.size() < 2 || id.size() > kMaxIdSize || !IsAlnum(id[0]) ||
      !std::all_of(id.begin(), id.end(),
                   [](char c) { return IsAlnum(c) || c == '_' || c == '.' || c == '-'; })) {
    std::string shown(id.substr(0, 64));
    std::replace_if(
        shown.begin(), shown.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }, '?');
    return InvalidArgument("invalid container id \"" + shown +
                           "\": expected [A-Za-z0-9][A-Za-z0-9_.-]{1,127}");
  }
  return OkStatus();
}

Status ValidateProcess(const ::grpc::Process& process) {
  if (process.args_size() > static_cast<int>(kMaxArgs) || process.env_size() > static_cast<int>(kMaxArgs)) {
    return InvalidArgument("malformed OCI spec: too many args or env entries");
  }
  for (const std::string& arg : process.args()) {
    if (arg.find('\0') != std::string::npos)
      return InvalidArgument("malformed OCI spec: NUL byte in process.args");
  }
  for (const std::string& env : process.env()) {
    std::size_t eq = env.find('=');
    if (eq == std::string::npos || eq == 0 || env.find('\0') != std::string::npos) {
      return InvalidArgument("malformed OCI spec: process.env entry \"" + env.substr(0, 64) +
                             "\" is not NAME=VALUE");
    }
  }
  if (!process.cwd().empty() && !IsAbsolute(process.cwd())) {
    return InvalidArgument("malformed OCI spec: process.cwd \"" + process.cwd().substr(0, 64) +
                           "\" is not absolute");
  }
  for (const ::grpc::POSIXRlimit& limit : process.rlimits()) {
    if (!boot::RlimitFromName(limit.type()))
      return InvalidArgument("malformed OCI spec: process.rlimits: unknown type \"" +
                             limit.type().substr(0, 64) + "\"");
  }
  return OkStatus();
}

Status ValidateSpec(const ::grpc::Spec& spec) {
  if (!spec.has_process()) return InvalidArgument("malformed OCI spec: no process");
  SR_RETURN_IF_ERROR(ValidateProcess(spec.process()));
  for (const ::grpc::Mount& mount : spec.mounts()) {
    SR_RETURN_IF_ERROR(CheckAbsolute(mount.destination(), "mount destination"));
  }
  const ::grpc::Linux& linux_spec = spec.linux();
  for (const auto* paths : {&linux_spec.maskedpaths(), &linux_spec.readonlypaths()}) {
    for (const std::string& path : *paths)
      SR_RETURN_IF_ERROR(CheckAbsolute(path, "masked or read-only path"));
  }
  for (const ::grpc::LinuxDevice& device : linux_spec.devices()) {
    SR_RETURN_IF_ERROR(CheckAbsolute(device.path(), "linux.devices path"));
  }
  std::set<std::string_view> seen;
  for (const ::grpc::LinuxNamespace& ns : linux_spec.namespaces()) {
    if (std::find(kNamespaceTypes.begin(), kNamespaceTypes.end(), ns.type()) == kNamespaceTypes.end()) {
      return InvalidArgument("malformed OCI spec: unknown namespace type \"" + ns.type().substr(0, 64) +
                             "\"");
    }
    if (!seen.insert(ns.type()).second)
      return InvalidArgument("malformed OCI spec: namespace " + ns.type() + " listed twice");
    if (!ns.path().empty()) SR_RETURN_IF_ERROR(CheckAbsolute(ns.path(), "namespace path"));
  }
  return OkStatus();
}

Status ValidateImageRef(std::string_view image, std::size_t max_size) {
  if (image.empty()) return InvalidArgument("no image reference given");
  if (image.size() > max_size)
    return InvalidArgument("image reference longer than " + std::to_string(max_size));
  if (HasControlBytes(image) || image.find(' ') != std::string_view::npos) {
    return InvalidArgument("image reference contains spaces or control characters");
  }
  return OkStatus();
}

Result<std::string> GuestPullImage(const ::grpc::CreateContainerRequest& request) {
  std::string image;
  for (const ::grpc::Storage& storage : request.storages()) {
    if (storage.driver() != "image_guest_pull") continue;
    if (!image.empty()) return InvalidArgument("more than one image_guest_pull storage");
    image = storage.source();
    if (image.empty()) return InvalidArgument("image_guest_pull storage without a source image");
  }
  return image;
}

}  // namespace sealroot::agent
