#include "boot/spec/process_spec.h"

#include <sys/resource.h>

#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "boot/spec/src/oci_linux.h"
#include "boot/spec/src/spec_json.h"

namespace sealroot::boot {
namespace {

using namespace spec_json;

// A boot spec is a few kilobytes; the cap keeps a hostile host from making the boot parse
// megabytes inside the enclave.
constexpr std::size_t kMaxSpecBytes = 1u << 20;

constexpr std::array<std::pair<std::string_view, int>, 16> kRlimitNames = {{
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
}};

Status CheckEnv(const std::vector<std::string>& env, std::string_view field) {
  for (const std::string& entry : env) {
    std::size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0)
      return FieldError(field, "entry '" + entry + "' is not KEY=VALUE");
  }
  return OkStatus();
}

Result<SpecProcess::User> ParseUser(const json& user) {
  if (!user.is_object()) return FieldError("process.user", "must be an object");
  SpecProcess::User out;
  SR_ASSIGN_OR_RETURN(out.uid, GetUnsigned<uid_t>(user, "uid", "process.user.uid"));
  SR_ASSIGN_OR_RETURN(out.gid, GetUnsigned<gid_t>(user, "gid", "process.user.gid"));
  if (auto it = user.find("additionalGids"); it != user.end() && !it->is_null()) {
    if (!it->is_array()) return FieldError("process.user.additionalGids", "must be an array");
    for (const json& gid : *it) {
      if (!gid.is_number_unsigned() || gid.get<std::uint64_t>() > std::numeric_limits<gid_t>::max()) {
        return FieldError("process.user.additionalGids", "must hold gids");
      }
      out.additional_gids.push_back(gid.get<gid_t>());
    }
  }
  return out;
}

Result<std::vector<Rlimit>> ParseRlimits(const json& rlimits) {
  if (!rlimits.is_array()) return FieldError("process.rlimits", "must be an array");
  std::vector<Rlimit> out;
  for (const json& item : rlimits) {
    if (!item.is_object()) return FieldError("process.rlimits", "entries must be objects");
    SR_ASSIGN_OR_RETURN(std::string type, GetString(item, "type", "process.rlimits.type"));
    Rlimit limit;
    std::optional<int> resource = RlimitFromName(type);
    if (!resource) return FieldError("process.rlimits.type", "unknown rlimit '" + type + "'");
    limit.resource = *resource;
    SR_ASSIGN_OR_RETURN(limit.soft, GetUnsigned<std::uint64_t>(item, "soft", "process.rlimits.soft"));
    SR_ASSIGN_OR_RETURN(limit.hard, GetUnsigned<std::uint64_t>(item, "hard", "process.rlimits.hard"));
    if (limit.soft > limit.hard) return FieldError("process.rlimits", type + ": soft limit above hard limit");
    out.push_back(limit);
  }
  return out;
}

Result<SpecProcess> ParseSpecProcess(const json& process) {
  if (!process.is_object()) return FieldError("process", "must be an object");
  SpecProcess out;
  SR_ASSIGN_OR_RETURN(out.args, GetStrings(process, "args", "process.args"));
  SR_ASSIGN_OR_RETURN(out.env, GetStrings(process, "env", "process.env"));
  SR_RETURN_IF_ERROR(CheckEnv(out.env, "process.env"));
  SR_ASSIGN_OR_RETURN(out.cwd, GetString(process, "cwd", "process.cwd"));
  if (!out.cwd.empty() && out.cwd[0] != '/') return FieldError("process.cwd", "must be an absolute path");
  if (auto it = process.find("user"); it != process.end() && !it->is_null()) {
    SR_ASSIGN_OR_RETURN(out.user, ParseUser(*it));
  }
  if (auto it = process.find("rlimits"); it != process.end() && !it->is_null()) {
    SR_ASSIGN_OR_RETURN(out.rlimits, ParseRlimits(*it));
  }
  SR_ASSIGN_OR_RETURN(out.no_new_privileges, GetBool(process, "noNewPrivileges", "process.noNewPrivileges"));
  SR_ASSIGN_OR_RETURN(out.terminal, GetBool(process, "terminal", "process.terminal"));
  if (const json* size = Find(process, "consoleSize")) {
    if (!size->is_object()) return FieldError("process.consoleSize", "must be an object");
    SR_ASSIGN_OR_RETURN(out.console_height,
                        GetUnsigned<std::uint16_t>(*size, "height", "process.consoleSize"));
    SR_ASSIGN_OR_RETURN(out.console_width, GetUnsigned<std::uint16_t>(*size, "width", "process.consoleSize"));
  }
  if (const json* caps = Find(process, "capabilities")) {
    SR_ASSIGN_OR_RETURN(out.capabilities, ParseCapabilities(*caps));
  }
  if (const json* user = Find(process, "user"); user != nullptr && Find(*user, "umask")) {
    SR_ASSIGN_OR_RETURN(mode_t umask, GetUnsigned<std::uint32_t>(*user, "umask", "process.user.umask"));
    if (umask > 0777) return FieldError("process.user.umask", "above 0777");
    out.umask = umask;
  }
  if (const json* adj = Find(process, "oomScoreAdj")) {
    if (!adj->is_number_integer() || adj->get<std::int64_t>() < -1000 || adj->get<std::int64_t>() > 1000) {
      return FieldError("process.oomScoreAdj", "must be an integer in -1000..1000");
    }
    out.oom_score_adj = adj->get<int>();
  }
  return out;
}

Result<ImageProcess> ParseImageProcess(const json& image) {
  if (!image.is_object()) return FieldError("image", "must be an object");
  ImageProcess out;
  SR_ASSIGN_OR_RETURN(out.entrypoint, GetStrings(image, "Entrypoint", "image.Entrypoint"));
  SR_ASSIGN_OR_RETURN(out.cmd, GetStrings(image, "Cmd", "image.Cmd"));
  SR_ASSIGN_OR_RETURN(out.env, GetStrings(image, "Env", "image.Env"));
  SR_RETURN_IF_ERROR(CheckEnv(out.env, "image.Env"));
  SR_ASSIGN_OR_RETURN(out.working_dir, GetString(image, "WorkingDir", "image.WorkingDir"));
  if (!out.working_dir.empty() && out.working_dir[0] != '/') {
    return FieldError("image.WorkingDir", "must be an absolute path");
  }
  SR_ASSIGN_OR_RETURN(out.user, GetString(image, "User", "image.User"));
  return out;
}

// Image env first, in its order, with values the spec overrides replaced in place; then the
// spec's new keys in the spec's order.
std::vector<std::string> MergeEnv(const std::vector<std::string>& image,
                                  const std::vector<std::string>& spec) {
  auto key_of = [](const std::string& entry) { return std::string_view(entry).substr(0, entry.find('=')); };
  std::vector<std::string> out;
  auto upsert = [&](const std::string& entry) {
    for (std::string& existing : out) {
      if (key_of(existing) == key_of(entry)) {
        existing = entry;
        return;
      }
    }
    out.push_back(entry);
  };
  for (const std::string& entry : image) upsert(entry);
  for (const std::string& entry : spec) upsert(entry);
  return out;
}

UserRef ImageUser(const std::string& user) {
  UserRef out;
  out.add_group_memberships = true;
  if (user.empty()) {
    out.user = "0";
    return out;
  }
  std::size_t colon = user.find(':');
  out.user = user.substr(0, colon);
  if (colon != std::string::npos) out.group = user.substr(colon + 1);
  if (out.user.empty()) out.user = "0";
  return out;
}

std::string_view RlimitName(int resource) {
  for (const auto& [name, value] : kRlimitNames) {
    if (value == resource) return name;
  }
  return "";
}

}  // namespace

std::optional<int> RlimitFromName(std::string_view name) {
  for (const auto& [known, resource] : kRlimitNames) {
    if (known == name) return resource;
  }
  return std::nullopt;
}

std::string EncodeBootSpec(const BootSpec& spec) {
  const SpecProcess& p = spec.process;
  json process = {{"args", p.args}, {"env", p.env}, {"noNewPrivileges", p.no_new_privileges}};
  if (!p.cwd.empty()) process["cwd"] = p.cwd;
  if (p.user) {
    process["user"] = {
        {"uid", p.user->uid}, {"gid", p.user->gid}, {"additionalGids", p.user->additional_gids}};
  }
  json rlimits = json::array();
  for (const Rlimit& limit : p.rlimits) {
    rlimits.push_back({{"type", RlimitName(limit.resource)}, {"soft", limit.soft}, {"hard", limit.hard}});
  }
  process["rlimits"] = std::move(rlimits);
  json doc = {{"process", std::move(process)}, {"pinToImage", spec.pin_to_image}};
  if (!spec.hostname.empty()) doc["hostname"] = spec.hostname;
  const ImageProcess& image = spec.image;
  if (!image.entrypoint.empty() || !image.cmd.empty() || !image.env.empty() || !image.working_dir.empty() ||
      !image.user.empty()) {
    doc["image"] = {{"Entrypoint", image.entrypoint},
                    {"Cmd", image.cmd},
                    {"Env", image.env},
                    {"WorkingDir", image.working_dir},
                    {"User", image.user}};
  }
  return doc.dump();
}

Result<BootSpec> ParseBootSpec(std::string_view text) {
  if (text.size() > kMaxSpecBytes) return FieldError("document", "larger than 1 MiB");
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("boot spec: not valid JSON");
  if (!doc.is_object()) return FieldError("document", "must be a JSON object");
  SR_RETURN_IF_ERROR(RefuseUnsupported(doc));
  BootSpec out;
  SR_ASSIGN_OR_RETURN(out.hostname, GetString(doc, "hostname", "hostname"));
  if (out.hostname.size() > 64) return FieldError("hostname", "longer than 64 bytes");
  SR_ASSIGN_OR_RETURN(out.domainname, GetString(doc, "domainname", "domainname"));
  if (out.domainname.size() > 64) return FieldError("domainname", "longer than 64 bytes");
  if (const json* root = Find(doc, "root")) {
    if (!root->is_object()) return FieldError("root", "must be an object");
    SR_ASSIGN_OR_RETURN(out.root_readonly, GetBool(*root, "readonly", "root.readonly"));
  }
  if (const json* mounts = Find(doc, "mounts")) {
    SR_ASSIGN_OR_RETURN(out.mounts, ParseMounts(*mounts));
  }
  if (const json* linux = Find(doc, "linux")) {
    SR_ASSIGN_OR_RETURN(out.linux, ParseLinux(*linux));
  }
  if (auto it = doc.find("process"); it != doc.end() && !it->is_null()) {
    SR_ASSIGN_OR_RETURN(out.process, ParseSpecProcess(*it));
  }
  if (auto it = doc.find("image"); it != doc.end() && !it->is_null()) {
    SR_ASSIGN_OR_RETURN(out.image, ParseImageProcess(*it));
  }
  if (auto it = doc.find("pinToImage"); it != doc.end() && !it->is_null()) {
    if (!it->is_boolean()) return FieldError("pinToImage", "must be a boolean");
    out.pin_to_image = it->get<bool>();
  }
  return out;
}

Result<ImageProcess> ParseImageConfig(std::string_view config_json) {
  if (config_json.size() > kMaxSpecBytes) return InvalidArgument("image config: larger than 1 MiB");
  json doc = json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument("image config: not a JSON object");
  auto it = doc.find("config");
  if (it == doc.end() || it->is_null()) return ImageProcess{};
  return ParseImageProcess(*it);
}

Result<ProcessSpec> ResolveProcess(const BootSpec& spec) {
  const SpecProcess& p = spec.process;
  const ImageProcess& image = spec.image;
  const bool use_spec = !spec.pin_to_image;
  ProcessSpec out;
  if (use_spec && !p.args.empty()) {
    out.args = p.args;
  } else {
    out.args = image.entrypoint;
    out.args.insert(out.args.end(), image.cmd.begin(), image.cmd.end());
  }
  if (out.args.empty())
    return InvalidArgument("boot spec: no command: neither the spec's args nor the image's Entrypoint/Cmd");
  out.env = use_spec ? MergeEnv(image.env, p.env) : MergeEnv(image.env, {});
  out.cwd = use_spec && !p.cwd.empty() ? p.cwd : image.working_dir;
  if (out.cwd.empty()) out.cwd = "/";
  if (use_spec && p.user) {
    out.user.user = std::to_string(p.user->uid);
    out.user.group = std::to_string(p.user->gid);
    out.user.additional_gids = p.user->additional_gids;
  } else {
    out.user = ImageUser(image.user);
  }
  out.rlimits = p.rlimits;
  out.no_new_privileges = p.no_new_privileges;
  out.capabilities = p.capabilities;
  out.umask = p.umask;
  out.oom_score_adj = p.oom_score_adj;
  out.terminal = p.terminal;
  out.console_height = p.console_height;
  out.console_width = p.console_width;
  return out;
}

Sha256Digest BootSpecDigest(std::string_view json) {
  return Sha256Of(json);
}

}  // namespace sealroot::boot
