// The filesystem interface the FUSE adapter (fuse_mount.h) calls: one method per operation,
// returning a Result that the adapter turns into exactly one reply. Part 1 implements it with
// the read-only SealedTree; part 2's writable union implements the same interface (and adds the
// write operations) over a SealedTree lower.
//
// Inode numbers are the kernel's: Lookup adds one reference to the returned inode, Forget drops
// `count`; an implementation may drop an inode's cached state when its count reaches zero.
// Inode 1 is the root and is never forgotten.
//
// Thread-safety: implementations are thread-safe; the adapter calls them from libfuse's threads.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "fusefs/types.h"

namespace sealroot::sealfs {

inline constexpr std::uint64_t kRootIno = 1;

struct DirEntry {
  std::string_view name;
  std::uint64_t ino = 0;
  std::uint32_t mode = 0;  // S_IFMT bits suffice
};

struct FsStats {
  std::uint64_t blocks = 0;  // in 4 KiB units
  std::uint64_t files = 0;
};

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  virtual Result<Attr> Lookup(std::uint64_t parent, std::string_view name) = 0;
  virtual void Forget(std::uint64_t ino, std::uint64_t count) = 0;
  virtual Result<Attr> GetAttr(std::uint64_t ino) = 0;
  virtual Result<std::string> ReadLink(std::uint64_t ino) = 0;

  // Returns a file handle for Read/Release.
  virtual Result<std::uint64_t> Open(std::uint64_t ino, int flags) = 0;
  virtual Result<std::size_t> Read(std::uint64_t handle, std::uint64_t offset,
                                   std::span<std::uint8_t> out) = 0;
  virtual void Release(std::uint64_t handle) = 0;

  // Calls `add(entry, next_offset)` for entries from `offset` on ("." and ".." first) until it
  // returns false (the reply is full). Offsets are stable positions in the directory.
  using DirFiller = std::function<bool(const DirEntry& entry, std::uint64_t next_offset)>;
  virtual Status ReadDir(std::uint64_t ino, std::uint64_t offset, const DirFiller& add) = 0;

  virtual Result<std::string> GetXattr(std::uint64_t ino, std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListXattr(std::uint64_t ino) = 0;
  virtual FsStats StatFs() = 0;
};

}  // namespace sealroot::sealfs
