#include "agent/server/src/validate.h"

#include <algorithm>

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

Status ValidateSpec(const ::grpc::Spec& spec) {
  if (!spec.has_process()) return InvalidArgument("malformed OCI spec: no process");
  const ::grpc::Process& process = spec.process();
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
  if (!process.cwd().empty() && (process.cwd()[0] != '/' || process.cwd().find('\0') != std::string::npos)) {
    return InvalidArgument("malformed OCI spec: process.cwd \"" + process.cwd().substr(0, 64) +
                           "\" is not absolute");
  }
  for (const ::grpc::Mount& mount : spec.mounts()) {
    if (mount.destination().empty() || mount.destination()[0] != '/') {
      return InvalidArgument("malformed OCI spec: mount destination \"" + mount.destination().substr(0, 64) +
                             "\" is not absolute");
    }
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
