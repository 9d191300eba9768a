// Reading and writing cgroup control files, with errors that name the file and the value.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace sealroot::boot {

Status WriteCgroupFile(const std::string& dir, std::string_view file, std::string_view value);
// The file's content without its trailing newline.
Result<std::string> ReadCgroupFile(const std::string& dir, std::string_view file);
bool CgroupFileExists(const std::string& dir, std::string_view file);
// The number after `key` in a "key value" per line file (memory.stat, memory.events, cpu.stat...);
// 0 when the key is absent.
Result<std::uint64_t> ReadKeyedValue(const std::string& dir, std::string_view file, std::string_view key);

}  // namespace sealroot::boot
