#include "base/mounts.h"

#include "base/file.h"

namespace sealroot {
namespace {

std::string Unescape(std::string_view field) {
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    bool octal = field[i] == '\\' && i + 3 < field.size();
    for (std::size_t d = 1; octal && d <= 3; ++d) octal = field[i + d] >= '0' && field[i + d] <= '7';
    if (!octal) {
      out.push_back(field[i]);
      continue;
    }
    out.push_back(
        static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0')));
    i += 3;
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  while (!line.empty()) {
    std::size_t end = line.find(' ');
    if (end != 0) fields.push_back(line.substr(0, end));
    if (end == std::string_view::npos) break;
    line.remove_prefix(end + 1);
  }
  return fields;
}

}  // namespace

std::vector<MountInfo> ParseMountInfo(std::string_view text) {
  std::vector<MountInfo> mounts;
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::vector<std::string_view> f = Fields(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    // id parent major:minor root mount-point options [optional fields...] - type source super-options
    std::size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 3 >= f.size()) continue;
    mounts.push_back({std::string(f[2]), Unescape(f[3]), Unescape(f[4]), std::string(f[dash + 1]),
                      std::string(f[dash + 3])});
  }
  return mounts;
}

Result<std::vector<MountInfo>> ReadMountInfo() {
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo"));
  return ParseMountInfo(text);
}

}  // namespace sealroot
