#include "image/config.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "image/src/root_fs.h"

namespace sealroot::image {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxAccountFile = 4u << 20;  // /etc/passwd, /etc/group

Result<std::string> StringField(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return InvalidArgument(std::string("image config: \"") + key + "\" is not a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> StringList(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return InvalidArgument(std::string("image config: \"") + key + "\" is not a list");
  for (const json& v : *it) {
    if (!v.is_string())
      return InvalidArgument(std::string("image config: \"") + key + "\" holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Status ParseProcessConfig(const json& c, ImageConfig& out) {
  if (!c.is_object()) return InvalidArgument("image config: \"config\" is not an object");
  SR_ASSIGN_OR_RETURN(out.user, StringField(c, "User"));
  SR_ASSIGN_OR_RETURN(out.env, StringList(c, "Env"));
  SR_ASSIGN_OR_RETURN(out.entrypoint, StringList(c, "Entrypoint"));
  SR_ASSIGN_OR_RETURN(out.cmd, StringList(c, "Cmd"));
  SR_ASSIGN_OR_RETURN(out.working_dir, StringField(c, "WorkingDir"));
  SR_ASSIGN_OR_RETURN(out.stop_signal, StringField(c, "StopSignal"));
  if (auto p = c.find("ExposedPorts"); p != c.end() && p->is_object()) {
    for (const auto& [port, unused] : p->items()) out.exposed_ports.push_back(port);
    std::sort(out.exposed_ports.begin(), out.exposed_ports.end());
  }
  if (auto l = c.find("Labels"); l != c.end() && !l->is_null()) {
    if (!l->is_object()) return InvalidArgument("image config: Labels is not an object");
    for (const auto& [k, v] : l->items()) {
      if (!v.is_string()) return InvalidArgument("image config: label '" + k + "' is not a string");
      out.labels[k] = v.get<std::string>();
    }
  }
  return OkStatus();
}

// One line of /etc/passwd or /etc/group split on ':'.
std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    std::size_t colon = line.find(':');
    fields.push_back(line.substr(0, colon));
    if (colon == std::string_view::npos) return fields;
    line.remove_prefix(colon + 1);
  }
}

template <typename F>
void ForEachLine(std::string_view text, F&& f) {
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.front() != '#') f(SplitFields(line));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

std::optional<std::uint32_t> ParseId(std::string_view s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string ReadAccountFile(int rootfs_fd, std::string_view path) {
  if (rootfs_fd < 0) return {};
  auto text = internal::ReadFileInRoot(rootfs_fd, path, kMaxAccountFile);
  return text.ok() ? *text : std::string();  // a missing file means "no named users", as in runc
}

}  // namespace

Result<ImageConfig> ParseImageConfig(std::string_view text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument("image config: not a JSON object");
  ImageConfig out;
  SR_ASSIGN_OR_RETURN(out.os, StringField(doc, "os"));
  SR_ASSIGN_OR_RETURN(out.architecture, StringField(doc, "architecture"));
  SR_ASSIGN_OR_RETURN(out.variant, StringField(doc, "variant"));
  SR_ASSIGN_OR_RETURN(out.author, StringField(doc, "author"));
  SR_ASSIGN_OR_RETURN(out.created, StringField(doc, "created"));
  if (auto c = doc.find("config"); c != doc.end() && !c->is_null())
    SR_RETURN_IF_ERROR(ParseProcessConfig(*c, out));
  auto rootfs = doc.find("rootfs");
  if (rootfs == doc.end() || !rootfs->is_object()) return InvalidArgument("image config: no rootfs");
  SR_ASSIGN_OR_RETURN(std::string type, StringField(*rootfs, "type"));
  if (type != "layers") return InvalidArgument("image config: rootfs.type is '" + type + "', want 'layers'");
  SR_ASSIGN_OR_RETURN(std::vector<std::string> ids, StringList(*rootfs, "diff_ids"));
  for (const std::string& id : ids) {
    auto d = Digest::Parse(id);
    if (!d.ok()) return std::move(d).status().WithContext("image config: rootfs.diff_ids");
    out.diff_ids.push_back(*d);
  }
  return out;
}

namespace {

// The /etc/passwd entry whose name is `user` or whose uid is `user` (numeric).
std::optional<std::pair<std::string, ProcessUser>> FindPasswdEntry(std::string_view user, int rootfs_fd) {
  std::optional<std::uint32_t> numeric = ParseId(user);
  std::optional<std::pair<std::string, ProcessUser>> match;
  ForEachLine(ReadAccountFile(rootfs_fd, "etc/passwd"), [&](const std::vector<std::string_view>& f) {
    if (match || f.size() < 6) return;
    auto uid = ParseId(f[2]);
    auto gid = ParseId(f[3]);
    if (uid && gid && (f[0] == user || (numeric && *uid == *numeric))) {
      match.emplace(std::string(f[0]), ProcessUser{*uid, *gid, {}, std::string(f[5])});
    }
  });
  return match;
}

// With an explicit group: its gid (a name must exist). Without: the supplementary groups that
// list `member`.
Status ApplyGroups(std::string_view spec, std::string_view group, const std::string& member, int rootfs_fd,
                   ProcessUser& out) {
  std::optional<std::uint32_t> numeric = ParseId(group);
  bool found = false;
  ForEachLine(ReadAccountFile(rootfs_fd, "etc/group"), [&](const std::vector<std::string_view>& f) {
    auto gid = f.size() >= 4 ? ParseId(f[2]) : std::nullopt;
    if (!gid) return;
    if (!group.empty()) {
      if (!found && (f[0] == group || (numeric && *gid == *numeric))) {
        found = true;
        out.gid = *gid;
      }
      return;
    }
    for (std::string_view members = f[3]; !members.empty();) {
      std::size_t comma = members.find(',');
      if (members.substr(0, comma) == member) out.additional_gids.push_back(*gid);
      members = comma == std::string_view::npos ? std::string_view() : members.substr(comma + 1);
    }
  });
  if (group.empty() || found) return OkStatus();
  if (!numeric) return NotFound("image user '" + std::string(spec) + "': no such group in /etc/group");
  out.gid = *numeric;
  return OkStatus();
}

}  // namespace

Result<ProcessUser> ResolveUser(std::string_view spec, int rootfs_fd) {
  std::size_t colon = spec.find(':');
  std::string_view user = spec.substr(0, colon);
  std::string_view group = colon == std::string_view::npos ? "" : spec.substr(colon + 1);
  if (user.empty()) user = "0";  // runc: no user is uid 0, still looked up for HOME
  ProcessUser out;
  std::string matched_name;
  if (auto entry = FindPasswdEntry(user, rootfs_fd)) {
    matched_name = entry->first;
    out = entry->second;
  } else if (auto numeric = ParseId(user)) {
    out.uid = *numeric;
  } else {
    return NotFound("image user '" + std::string(spec) + "': no such user in /etc/passwd");
  }
  if (group.empty() && matched_name.empty()) return out;
  SR_RETURN_IF_ERROR(ApplyGroups(spec, group, matched_name, rootfs_fd, out));
  return out;
}

}  // namespace sealroot::image
