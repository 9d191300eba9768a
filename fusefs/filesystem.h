// The filesystem interface the FUSE adapter (fuse_mount.h) calls: one method per operation,
// returning a Result that the adapter turns into exactly one reply. The read-only
// SealedTree implements it; the writable union (upper.h) implements the same interface (and adds the
// write operations) over a SealedTree lower.
//
// Inode numbers are the kernel's: Lookup adds one reference to the returned inode, Forget drops
// `count`; an implementation may drop an inode's cached state when its count reaches zero.
// Inode 1 is the root and is never forgotten.
//
// Write operations default to EROFS, so a read-only implementation overrides none of them.
// Errors become errnos through StatusToErrno (base/status.h): a Status made by
// Status::FromErrno(err, ...) answers with exactly `err` (ENOTEMPTY, EXDEV, ... have no Status
// code of their own); any other Status maps by code.
//
// Thread-safety: implementations are thread-safe; the adapter calls them from libfuse's threads.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

inline constexpr std::uint64_t kRootIno = 1;

struct DirEntry {
  std::string_view name;
  std::uint64_t ino = 0;
  std::uint32_t mode = 0;  // S_IFMT bits suffice
};

struct FsStats {
  std::uint64_t blocks = 0;  // in 4 KiB units
  std::uint64_t files = 0;
  std::uint64_t free_blocks = 0;
  std::uint64_t free_files = 0;
};

struct Timespec {
  std::int64_t sec = 0;
  std::uint32_t nsec = 0;
  friend bool operator==(const Timespec&, const Timespec&) = default;
};

// Attr plus the two times a writable filesystem keeps apart from mtime.
struct Stat {
  Attr attr;
  Timespec atime;
  Timespec ctime;
  // Bytes the content takes (st_blocks); none: as many as its size (no holes).
  std::optional<std::uint64_t> allocated;
};

// Who asks (for the owner of what it creates); the kernel checks permissions
// (default_permissions) before the call reaches the filesystem.
struct Caller {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

// The attributes a setattr changes; unset fields stay. Times are resolved ("now") by the adapter.
struct SetAttrRequest {
  std::optional<std::uint32_t> mode;  // permission bits only
  std::optional<std::uint32_t> uid;
  std::optional<std::uint32_t> gid;
  std::optional<std::uint64_t> size;
  std::optional<Timespec> atime;
  std::optional<Timespec> mtime;
  std::optional<std::uint64_t> handle;  // the open file it came through, if any
};

struct Created {
  Stat stat;
  std::uint64_t handle = 0;
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

  // ReadDir with every entry's full attributes (what readdirplus answers): at most `max_entries`
  // entries from `offset` on. Every entry but "." and ".." carries one lookup reference, as after
  // LookupStat; the caller Forgets those it does not pass on. Stops early at an entry whose stat
  // fails (an error only when no entry came before it); an entry gone since the listing is skipped.
  struct DirEntryPlus {
    std::string name;
    std::uint64_t next_offset = 0;
    Stat stat;
    bool counted = false;  // holds a lookup reference
  };
  virtual Result<std::vector<DirEntryPlus>> ReadDirPlus(std::uint64_t ino, std::uint64_t offset,
                                                        std::size_t max_entries);

  // Reads by inode, with no Open: only a filesystem whose files never change and whose opens
  // check nothing says yes, and the adapter then lets the kernel skip OPEN, FLUSH and RELEASE.
  virtual bool reads_without_open() const { return false; }
  virtual Result<std::size_t> ReadInode(std::uint64_t, std::uint64_t, std::span<std::uint8_t>) {
    return Status::FromErrno(ENOSYS, "reads need an open file");
  }

  // Read-ahead of small files into the kernel's page cache (fusefs/src/sibling_prefetch.h):
  // reads `ino` from its start into `buffer` and calls `store` with the bytes read, at a moment
  // when the file's content cannot change until `store` returns, so what the kernel caches is
  // never stale. A file whose content may change (one a writer has opened) is skipped: no call,
  // OkStatus. Meanwhile an Open for writing or a SetAttr of a size of that file returns
  // kAborted, and its caller repeats it once Prefetch has returned: it must not wait for it on a
  // thread that serves reads, because `store` can wait for the kernel's read of that file. By
  // default, the filesystems that read without open (they never change) prefetch.
  using PageStore = std::function<void(std::span<const std::uint8_t> bytes)>;
  virtual bool prefetches() const { return reads_without_open(); }
  virtual Status Prefetch(std::uint64_t ino, std::span<std::uint8_t> buffer, const PageStore& store);

  virtual Result<std::string> GetXattr(std::uint64_t ino, std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListXattr(std::uint64_t ino) = 0;
  virtual FsStats StatFs() = 0;

  // Full attributes; the read-only tree reports mtime for all three times.
  virtual Result<Stat> LookupStat(std::uint64_t parent, std::string_view name) {
    SR_ASSIGN_OR_RETURN(Attr attr, Lookup(parent, name));
    return WithMtimes(attr);
  }
  virtual Result<Stat> GetStat(std::uint64_t ino) {
    SR_ASSIGN_OR_RETURN(Attr attr, GetAttr(ino));
    return WithMtimes(attr);
  }

  // Write operations. Those returning a Stat add one lookup reference, like Lookup.
  // `mode` of MakeNode carries the file type (regular, fifo, socket, devices).
  virtual Result<Stat> MakeNode(const Caller&, std::uint64_t, std::string_view, std::uint32_t,
                                std::uint64_t) {
    return ReadOnly();
  }
  virtual Result<Stat> MakeDir(const Caller&, std::uint64_t, std::string_view, std::uint32_t) {
    return ReadOnly();
  }
  virtual Result<Stat> MakeSymlink(const Caller&, std::uint64_t, std::string_view, std::string_view) {
    return ReadOnly();
  }
  virtual Result<Stat> Link(std::uint64_t, std::uint64_t, std::string_view) { return ReadOnly(); }
  virtual Status Unlink(std::uint64_t, std::string_view) { return ReadOnly(); }
  virtual Status RemoveDir(std::uint64_t, std::string_view) { return ReadOnly(); }
  // `flags`: RENAME_NOREPLACE / RENAME_EXCHANGE as renameat2(2).
  virtual Status Rename(std::uint64_t, std::string_view, std::uint64_t, std::string_view, unsigned) {
    return ReadOnly();
  }
  virtual Result<Stat> SetAttr(std::uint64_t, const SetAttrRequest&) { return ReadOnly(); }
  // Creates and opens a regular file (O_CREAT): the handle is for Read/Write/Release.
  virtual Result<Created> Create(const Caller&, std::uint64_t, std::string_view, std::uint32_t, int) {
    return ReadOnly();
  }
  virtual Result<std::size_t> Write(std::uint64_t, std::uint64_t, std::span<const std::uint8_t>) {
    return ReadOnly();
  }
  // Makes the file's data and the filesystem's state durable (and, for an upper, its root fresh).
  virtual Status Fsync(std::uint64_t /*handle*/, bool /*datasync*/) { return OkStatus(); }
  // `flags`: XATTR_CREATE / XATTR_REPLACE.
  virtual Status SetXattr(std::uint64_t, std::string_view, std::string_view, int) { return ReadOnly(); }
  virtual Status RemoveXattr(std::uint64_t, std::string_view) { return ReadOnly(); }

 private:
  static Status ReadOnly() { return Status::FromErrno(EROFS, "the sealed root is read-only"); }
  static Stat WithMtimes(const Attr& attr) {
    Timespec t{attr.mtime_sec, attr.mtime_nsec};
    return Stat{attr, t, t, std::nullopt};
  }
};

}  // namespace sealroot::fusefs
