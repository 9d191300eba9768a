#include "boot/src/user.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>

namespace sealroot::boot {
namespace {

std::vector<std::string_view> Split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    std::size_t pos = line.find(sep);
    out.push_back(line.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    line.remove_prefix(pos + 1);
  }
}

std::optional<std::uint32_t> ParseId(std::string_view text) {
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Calls `fn(fields)` for each well-formed line of a colon-separated database with at least
// `min_fields` fields; comments and malformed lines are skipped, as libc does.
template <typename Fn>
void ForEachEntry(std::string_view db, std::size_t min_fields, Fn fn) {
  for (std::string_view line : Split(db, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string_view> fields = Split(line, ':');
    if (fields.size() >= min_fields && ParseId(fields[2])) {
      if (fn(fields)) return;
    }
  }
}

}  // namespace

Result<Credentials> ResolveUser(const UserRef& ref, std::string_view passwd, std::string_view group) {
  Credentials out;
  std::optional<std::uint32_t> uid = ParseId(ref.user);
  std::optional<std::uint32_t> passwd_gid;
  std::string user_name;
  // passwd: name:password:uid:gid:gecos:home:shell
  ForEachEntry(passwd, 7, [&](const std::vector<std::string_view>& f) {
    bool match = uid ? ParseId(f[2]) == uid : f[0] == ref.user;
    if (!match) return false;
    uid = ParseId(f[2]);
    passwd_gid = ParseId(f[3]);
    user_name = f[0];
    if (!f[5].empty()) out.home = f[5];
    return true;
  });
  if (!uid) return NotFound("user '" + ref.user + "' is not in the container's /etc/passwd");
  out.uid = *uid;

  if (ref.group.empty()) {
    out.gid = passwd_gid.value_or(0);
  } else if (auto gid = ParseId(ref.group)) {
    out.gid = *gid;
  } else {
    std::optional<std::uint32_t> found;
    // group: name:password:gid:member,member
    ForEachEntry(group, 3, [&](const std::vector<std::string_view>& f) {
      if (f[0] != ref.group) return false;
      found = ParseId(f[2]);
      return true;
    });
    if (!found) return NotFound("group '" + ref.group + "' is not in the container's /etc/group");
    out.gid = *found;
  }

  out.groups = ref.additional_gids;
  if (ref.add_group_memberships && !user_name.empty()) {
    ForEachEntry(group, 4, [&](const std::vector<std::string_view>& f) {
      for (std::string_view member : Split(f[3], ',')) {
        if (member == user_name) out.groups.push_back(*ParseId(f[2]));
      }
      return false;
    });
  }
  std::sort(out.groups.begin(), out.groups.end());
  out.groups.erase(std::unique(out.groups.begin(), out.groups.end()), out.groups.end());
  return out;
}

}  // namespace sealroot::boot
