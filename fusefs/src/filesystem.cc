#include "fusefs/filesystem.h"

#include <sys/stat.h>

namespace sealroot::fusefs {

// The listing first (an implementation may hold its lock while it calls back), then one
// LookupStat per entry outside of it.
Result<std::vector<Filesystem::DirEntryPlus>> Filesystem::ReadDirPlus(std::uint64_t ino, std::uint64_t offset,
                                                                      std::size_t max_entries) {
  std::vector<DirEntryPlus> entries;
  SR_RETURN_IF_ERROR(ReadDir(ino, offset, [&](const DirEntry& e, std::uint64_t next) {
    if (entries.size() == max_entries) return false;
    DirEntryPlus& p = entries.emplace_back();
    p.name = e.name;
    p.next_offset = next;
    p.stat.attr.ino = e.ino;
    p.stat.attr.mode = e.mode;
    return true;
  }));
  std::vector<DirEntryPlus> out;
  out.reserve(entries.size());
  for (DirEntryPlus& p : entries) {
    if (p.name != "." && p.name != "..") {
      auto stat = LookupStat(ino, p.name);
      if (!stat.ok() && StatusToErrno(stat.status()) == ENOENT) continue;  // removed since the listing
      if (!stat.ok()) {
        if (out.empty()) return stat.status();
        break;
      }
      p.stat = *stat;
      p.counted = true;
    }
    out.push_back(std::move(p));
  }
  return out;
}

Status Filesystem::Prefetch(std::uint64_t ino, std::span<std::uint8_t> buffer, const PageStore& store) {
  SR_ASSIGN_OR_RETURN(std::size_t n, ReadInode(ino, 0, buffer));
  if (n > 0) store(buffer.first(n));
  return OkStatus();
}

}  // namespace sealroot::fusefs
