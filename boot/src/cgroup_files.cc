#include "boot/src/cgroup_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>

#include "base/fd.h"
#include "base/file.h"

namespace sealroot::boot {

Status WriteCgroupFile(const std::string& dir, std::string_view file, std::string_view value) {
  std::string path = dir + "/" + std::string(file);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  // A control file takes one value per write(2): WriteAll's retries would split it.
  if (!fd || ::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return ErrnoStatus("writing '" + std::string(value) + "' to " + path, errno);
  }
  return OkStatus();
}

Result<std::string> ReadCgroupFile(const std::string& dir, std::string_view file) {
  SR_ASSIGN_OR_RETURN(std::string content, ReadFile(dir + "/" + std::string(file), 1u << 20));
  while (!content.empty() && content.back() == '\n') content.pop_back();
  return content;
}

bool CgroupFileExists(const std::string& dir, std::string_view file) {
  return ::access((dir + "/" + std::string(file)).c_str(), F_OK) == 0;
}

Result<std::uint64_t> ReadKeyedValue(const std::string& dir, std::string_view file, std::string_view key) {
  SR_ASSIGN_OR_RETURN(std::string content, ReadCgroupFile(dir, file));
  std::string_view rest = content;
  while (!rest.empty()) {
    std::size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      std::uint64_t value = 0;
      std::string_view number = line.substr(key.size() + 1);
      std::from_chars(number.data(), number.data() + number.size(), value);
      return value;
    }
  }
  return std::uint64_t{0};
}

}  // namespace sealroot::boot
