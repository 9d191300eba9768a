#define FUSE_USE_VERSION 312
#include "fusefs/fuse_mount.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/fd.h"
#include "base/file.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "base/mounts.h"
#include "fusefs/src/sibling_prefetch.h"

namespace sealroot::fusefs {
namespace {

constexpr double kReadOnlyTimeout = 86400;  // immutable tree: cache entries and attributes for a day
constexpr unsigned kMaxRequest = 1u << 20;
// Reads are asked for in 256 KiB requests, and the kernel reads 512 KiB ahead: two requests in
// flight, decrypted on two threads. One 1 MiB request in flight runs on one core, and its
// buffers no longer fit in that core's cache.
constexpr unsigned kMaxRead = 256u << 10;
constexpr unsigned kReadAheadKiB = 512;

using IdShift = FuseMountOptions::IdShift;

std::uint32_t ToHost(std::uint32_t id, std::uint32_t base, const IdShift& shift) {
  return id < shift.size ? base + id : id;
}
std::uint32_t FromHost(std::uint32_t id, std::uint32_t base, const IdShift& shift) {
  return id >= base && id - base < shift.size ? id - base : id;
}

struct stat ToStat(const Stat& full, const IdShift& shift) {
  const Attr& a = full.attr;
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = ToHost(a.uid, shift.host_uid, shift);
  st.st_gid = ToHost(a.gid, shift.host_gid, shift);
  st.st_size = static_cast<off_t>(a.size);
  st.st_rdev = a.rdev;
  st.st_blksize = 64 * 1024;
  st.st_blocks = static_cast<blkcnt_t>((full.allocated.value_or(a.size) + 511) / 512);
  st.st_mtim = {a.mtime_sec, static_cast<long>(a.mtime_nsec)};
  st.st_atim = {full.atime.sec, static_cast<long>(full.atime.nsec)};
  st.st_ctim = {full.ctime.sec, static_cast<long>(full.ctime.nsec)};
  return st;
}

Timespec Now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<std::uint32_t>(ts.tv_nsec)};
}

// This thread's reply buffer, `size` bytes (at most kMaxRequest). It only grows, and it is not
// zero-filled: every reply overwrites what it sends.
std::span<char> ThreadBuffer(size_t size) {
  thread_local std::unique_ptr<char[]> buffer;
  thread_local size_t capacity = 0;
  size = std::min<size_t>(size, kMaxRequest);
  if (capacity < size) {
    buffer = std::make_unique_for_overwrite<char[]>(size);
    capacity = size;
  }
  return {buffer.get(), size};
}

// The "major:minor" of the filesystem mounted last at `mountpoint` (a canonical path), from
// /proc/self/mountinfo: stat(2) on the mountpoint would wait for this daemon's own reply.
std::optional<std::string> DeviceOfMount(const std::string& mountpoint) {
  auto mounts = ReadMountInfo();
  if (!mounts.ok()) return std::nullopt;
  std::optional<std::string> device;
  for (const MountInfo& m : *mounts) {
    if (m.mount_point == mountpoint) device = m.device;
  }
  return device;
}

// The kernel starts a FUSE mount with 128 KiB of read-ahead, and FUSE_INIT can only lower it;
// the mount's entry in sysfs can raise it. Best effort: without root or sysfs the mount works,
// reading a large file one request at a time.
void WidenReadAhead(const std::string& mountpoint) {
  std::optional<std::string> device = DeviceOfMount(mountpoint);
  if (!device) {
    SR_LOG(kDebug) << mountpoint << " is not in /proc/self/mountinfo";
    return;
  }
  const std::string knob = "/sys/class/bdi/" + *device + "/read_ahead_kb";
  UniqueFd fd(open(knob.c_str(), O_WRONLY | O_CLOEXEC));
  const std::string value = std::to_string(kReadAheadKiB);
  Status s = fd.get() < 0
                 ? ErrnoStatus("opening " + knob, errno)
                 : WriteAll(fd.get(), {reinterpret_cast<const std::uint8_t*>(value.data()), value.size()});
  if (!s.ok()) {
    SR_LOG(kDebug) << "keeping the kernel's read-ahead: " << s.ToString();
  }
}

Caller CallerOf(fuse_req_t req, const IdShift& shift) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return {FromHost(ctx->uid, shift.host_uid, shift), FromHost(ctx->gid, shift.host_gid, shift)};
}

}  // namespace

// The userdata of the session: the Filesystem plus the reply policy. Every On* replies once.
struct FuseMount::Adapter {
  Filesystem& fs;
  double timeout;
  bool read_only;
  bool writeback_cache;
  IdShift shift;
  // Set by OnInit: the kernel opens files (and directories) without asking, so reads come with
  // no handle (Filesystem::ReadInode).
  bool open_free = false;
  bool opendir_free = false;
  // Set when the filesystem prefetches (Filesystem::Prefetch) and the mount asks for it.
  SiblingPrefetch* prefetch = nullptr;

  static Adapter& Of(fuse_req_t req) { return *static_cast<Adapter*>(fuse_req_userdata(req)); }

  static void OnInit(void* userdata, fuse_conn_info* conn) {
    Adapter& a = *static_cast<Adapter*>(userdata);
    conn->max_readahead = kReadAheadKiB << 10;
    conn->max_read = kMaxRead;  // must equal the max_read mount option, or libfuse aborts init
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    // Every listing answers the stats too (tar, ls -l and find stat every entry): the attributes
    // come with the same timeouts as a lookup's, and a lookup costs the filesystem no I/O.
    if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    // An open of a directory checks nothing the kernel has not: let the kernel open without a
    // request, with cache_readdir as the default. Safe on a writable mount too: every change goes
    // through this mount, and the kernel drops a cached listing when its directory changed (its
    // iversion, bumped by each create, unlink and rename here, or its mtime).
    a.opendir_free = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
    if (a.read_only) {
      // Likewise for the files of the immutable tree (the mount is ro), with keep_cache.
      a.open_free = a.fs.reads_without_open() && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
      return;
    }
    conn->max_write = kMaxRequest;
    // Safe because every change goes through this kernel mount: the page cache is the only
    // writer, and it sends mtime/size with its flushes.
    if (static_cast<Adapter*>(userdata)->writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
      conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  }

  static void ReplyEntry(fuse_req_t req, const Result<Stat>& stat) {
    if (!stat.ok()) return (void)fuse_reply_err(req, StatusToErrno(stat.status()));
    fuse_entry_param e{};
    e.attr_timeout = Of(req).timeout;
    e.entry_timeout = Of(req).timeout;
    e.ino = stat->attr.ino;
    e.generation = 1;
    e.attr = ToStat(*stat, Of(req).shift);
    // The filesystem counted a lookup reference; a lost reply must give it back.
    if (fuse_reply_entry(req, &e) != 0) Of(req).fs.Forget(e.ino, 1);
  }

  static void OnMkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    ReplyEntry(req, Of(req).fs.MakeNode(CallerOf(req, Of(req).shift), parent, name, mode, rdev));
  }
  static void OnMkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    ReplyEntry(req, Of(req).fs.MakeDir(CallerOf(req, Of(req).shift), parent, name, mode));
  }
  static void OnSymlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    ReplyEntry(req, Of(req).fs.MakeSymlink(CallerOf(req, Of(req).shift), parent, name, target));
  }
  static void OnLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
    ReplyEntry(req, Of(req).fs.Link(ino, parent, name));
  }
  static void OnUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    fuse_reply_err(req, StatusToErrno(Of(req).fs.Unlink(parent, name)));
  }
  static void OnRmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    fuse_reply_err(req, StatusToErrno(Of(req).fs.RemoveDir(parent, name)));
  }
  static void OnRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                       const char* new_name, unsigned flags) {
    fuse_reply_err(req, StatusToErrno(Of(req).fs.Rename(parent, name, new_parent, new_name, flags)));
  }

  static void OnSetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
    SetAttrRequest r;
    if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode & 07777;
    const IdShift& shift = Of(req).shift;
    if (to_set & FUSE_SET_ATTR_UID) r.uid = FromHost(attr->st_uid, shift.host_uid, shift);
    if (to_set & FUSE_SET_ATTR_GID) r.gid = FromHost(attr->st_gid, shift.host_gid, shift);
    if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<std::uint64_t>(attr->st_size);
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      r.atime = Now();
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      r.atime = Timespec{attr->st_atim.tv_sec, static_cast<std::uint32_t>(attr->st_atim.tv_nsec)};
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      r.mtime = Now();
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      r.mtime = Timespec{attr->st_mtim.tv_sec, static_cast<std::uint32_t>(attr->st_mtim.tv_nsec)};
    }
    if (fi != nullptr) r.handle = fi->fh;
    SetAttrAndReply(req, ino, r);
  }
  static void SetAttrAndReply(fuse_req_t req, fuse_ino_t ino, const SetAttrRequest& r) {
    Adapter& a = Of(req);
    auto stat = a.fs.SetAttr(ino, r);
    if (Deferred(req, ino, stat.status(), [req, ino, r] { SetAttrAndReply(req, ino, r); })) return;
    if (!stat.ok()) return (void)fuse_reply_err(req, StatusToErrno(stat.status()));
    struct stat st = ToStat(*stat, a.shift);
    fuse_reply_attr(req, &st, a.timeout);
  }

  // A change the filesystem turned back while a prefetch stores the file (kAborted,
  // Filesystem::Prefetch) is repeated once the store is done, on the prefetching thread: this
  // thread goes back to serving requests, among them the read the store may be waiting for.
  static bool Deferred(fuse_req_t req, fuse_ino_t ino, const Status& status, std::function<void()> repeat) {
    if (status.code() != Code::kAborted || Of(req).prefetch == nullptr) return false;
    Of(req).prefetch->AfterStore(ino, std::move(repeat));
    return true;
  }

  static void OnCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    Adapter& a = Of(req);
    auto created = a.fs.Create(CallerOf(req, Of(req).shift), parent, name, mode, fi->flags);
    if (!created.ok()) return (void)fuse_reply_err(req, StatusToErrno(created.status()));
    fuse_entry_param e{};
    e.attr_timeout = a.timeout;
    e.entry_timeout = a.timeout;
    e.ino = created->stat.attr.ino;
    e.generation = 1;
    e.attr = ToStat(created->stat, Of(req).shift);
    fi->fh = created->handle;
    fi->keep_cache = 1;
    if (fuse_reply_create(req, &e, fi) != 0) {
      a.fs.Release(created->handle);
      a.fs.Forget(e.ino, 1);
    }
  }

  static void OnWrite(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off,
                      fuse_file_info* fi) {
    auto n = Of(req).fs.Write(fi->fh, static_cast<std::uint64_t>(off),
                              {reinterpret_cast<const std::uint8_t*>(data), size});
    if (!n.ok()) return (void)fuse_reply_err(req, StatusToErrno(n.status()));
    fuse_reply_write(req, *n);
  }

  static void OnFsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
    fuse_reply_err(req, StatusToErrno(Of(req).fs.Fsync(fi->fh, datasync != 0)));
  }
  static void OnFsyncDir(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info*) {
    fuse_reply_err(req, StatusToErrno(Of(req).fs.Fsync(0, datasync != 0)));
  }

  static void OnSetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                         int flags) {
    fuse_reply_err(req, StatusToErrno(Of(req).fs.SetXattr(ino, name, {value, size}, flags)));
  }
  static void OnRemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    fuse_reply_err(req, StatusToErrno(Of(req).fs.RemoveXattr(ino, name)));
  }

  static void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Adapter& a = Of(req);
    auto attr = a.fs.LookupStat(parent, name);
    fuse_entry_param e{};
    e.attr_timeout = a.timeout;
    e.entry_timeout = a.timeout;
    if (!attr.ok()) {
      // A negative entry (ino 0) lets the kernel cache the miss; only for a definite "no".
      if (attr.status().code() == Code::kNotFound) {
        fuse_reply_entry(req, &e);
      } else {
        fuse_reply_err(req, StatusToErrno(attr.status()));
      }
      return;
    }
    e.ino = attr->attr.ino;
    e.generation = 1;
    e.attr = ToStat(*attr, Of(req).shift);
    if (fuse_reply_entry(req, &e) != 0) a.fs.Forget(e.ino, 1);
  }

  static void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    Of(req).fs.Forget(ino, nlookup);
    fuse_reply_none(req);
  }

  static void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    for (size_t i = 0; i < count; ++i) Of(req).fs.Forget(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
  }

  static void OnGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    Adapter& a = Of(req);
    auto attr = a.fs.GetStat(ino);
    if (!attr.ok()) return (void)fuse_reply_err(req, StatusToErrno(attr.status()));
    struct stat st = ToStat(*attr, Of(req).shift);
    fuse_reply_attr(req, &st, a.timeout);
  }

  static void OnReadLink(fuse_req_t req, fuse_ino_t ino) {
    auto target = Of(req).fs.ReadLink(ino);
    if (!target.ok()) return (void)fuse_reply_err(req, StatusToErrno(target.status()));
    fuse_reply_readlink(req, target->c_str());
  }

  static void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    // ENOSYS: this and every later open succeed in the kernel without a request.
    if (Of(req).open_free) return (void)fuse_reply_err(req, ENOSYS);
    OpenAndReply(req, ino, *fi);
  }
  // `fi` by value: libfuse's lives on the stack of the thread that received the request.
  static void OpenAndReply(fuse_req_t req, fuse_ino_t ino, fuse_file_info fi) {
    auto handle = Of(req).fs.Open(ino, fi.flags);
    if (Deferred(req, ino, handle.status(), [req, ino, fi] { OpenAndReply(req, ino, fi); })) return;
    if (!handle.ok()) {
      // The read-only tree answers a write open with kPermissionDenied: that is EROFS.
      int err = StatusToErrno(handle.status());
      if (Of(req).read_only && err == EACCES) err = EROFS;
      return (void)fuse_reply_err(req, err);
    }
    fi.fh = *handle;
    fi.keep_cache = 1;
    if (fuse_reply_open(req, &fi) != 0) Of(req).fs.Release(*handle);
  }

  static void OnRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    std::span<char> reply = ThreadBuffer(size);
    std::span buf(reinterpret_cast<std::uint8_t*>(reply.data()), reply.size());
    Adapter& a = Of(req);
    if (a.prefetch != nullptr && off == 0) a.prefetch->Reading(ino);
    auto n = a.open_free ? a.fs.ReadInode(ino, static_cast<std::uint64_t>(off), buf)
                         : a.fs.Read(fi->fh, static_cast<std::uint64_t>(off), buf);
    if (!n.ok()) return (void)fuse_reply_err(req, StatusToErrno(n.status()));
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), *n);
  }

  static void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Of(req).fs.Release(fi->fh);
    fuse_reply_err(req, 0);
  }

  static void OnOpenDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    if (Of(req).opendir_free) return (void)fuse_reply_err(req, ENOSYS);
    // What a zero-message open gives (OnInit says why a writable mount may cache listings too).
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
  }

  static void OnReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    std::span<char> buf = ThreadBuffer(size);
    size_t used = 0;
    Status s =
        Of(req).fs.ReadDir(ino, static_cast<std::uint64_t>(off), [&](const DirEntry& e, std::uint64_t next) {
          struct stat st {};
          st.st_ino = e.ino;
          st.st_mode = e.mode;
          std::string name(e.name);
          size_t need = fuse_add_direntry(req, buf.data() + used, buf.size() - used, name.c_str(), &st,
                                          static_cast<off_t>(next));
          if (need > buf.size() - used) return false;
          used += need;
          return true;
        });
    if (!s.ok()) return (void)fuse_reply_err(req, StatusToErrno(s));
    fuse_reply_buf(req, buf.data(), used);
  }

  // readdirplus answers the lstat that tar, ls -l and find -type do on every entry in the same
  // round trip as the listing. An entry that no longer fits in the reply gives its lookup back.
  static void OnReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    Adapter& a = Of(req);
    std::span<char> buf = ThreadBuffer(size);
    // The smallest entry (a fuse_entry_out, a dirent header, an 8-byte name) takes 160 bytes.
    auto entries = a.fs.ReadDirPlus(ino, static_cast<std::uint64_t>(off), buf.size() / 160 + 1);
    if (!entries.ok()) return (void)fuse_reply_err(req, StatusToErrno(entries.status()));
    size_t used = 0;
    bool full = false;
    thread_local std::vector<SiblingPrefetch::File> small_files;
    small_files.clear();
    for (const Filesystem::DirEntryPlus& e : *entries) {
      if (!full) {
        fuse_entry_param p{};
        p.attr = ToStat(e.stat, a.shift);
        if (e.counted) {
          p.ino = e.stat.attr.ino;
          p.generation = 1;
          p.attr_timeout = a.timeout;
          p.entry_timeout = a.timeout;
        }
        size_t need = fuse_add_direntry_plus(req, buf.data() + used, buf.size() - used, e.name.c_str(), &p,
                                             static_cast<off_t>(e.next_offset));
        full = need > buf.size() - used;
        if (!full) used += need;
        const Attr& attr = e.stat.attr;
        if (!full && e.counted && S_ISREG(attr.mode) && attr.size > 0 &&
            attr.size <= SiblingPrefetch::kMaxFileSize)
          small_files.push_back({attr.ino, attr.size});
      }
      if (full && e.counted) a.fs.Forget(e.stat.attr.ino, 1);
    }
    // Before the reply: the kernel may read one of these files as soon as it has the listing.
    if (a.prefetch != nullptr) a.prefetch->Listed(ino, small_files);
    fuse_reply_buf(req, buf.data(), used);
  }

  static void OnReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

  static void ReplySized(fuse_req_t req, size_t size, const std::string& value) {
    if (size == 0) return (void)fuse_reply_xattr(req, value.size());
    if (size < value.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, value.data(), value.size());
  }

  static void OnGetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    auto value = Of(req).fs.GetXattr(ino, name);
    if (!value.ok()) {
      int err = value.status().code() == Code::kNotFound ? ENODATA : StatusToErrno(value.status());
      return (void)fuse_reply_err(req, err);
    }
    ReplySized(req, size, *value);
  }

  static void OnListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    auto names = Of(req).fs.ListXattr(ino);
    if (!names.ok()) return (void)fuse_reply_err(req, StatusToErrno(names.status()));
    std::string list;
    for (const std::string& n : *names) list.append(n).push_back('\0');
    ReplySized(req, size, list);
  }

  static void OnStatFs(fuse_req_t req, fuse_ino_t) {
    FsStats stats = Of(req).fs.StatFs();
    struct statvfs st {};
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_blocks = stats.blocks;
    st.f_files = stats.files;
    st.f_bfree = stats.free_blocks;
    st.f_bavail = stats.free_blocks;
    st.f_ffree = stats.free_files;
    st.f_favail = stats.free_files;
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
  }
};

Result<std::unique_ptr<FuseMount>> FuseMount::Create(Filesystem& fs, const FuseMountOptions& options) {
  static const fuse_lowlevel_ops kOps = [] {
    fuse_lowlevel_ops ops{};
    ops.init = Adapter::OnInit;
    ops.lookup = Adapter::OnLookup;
    ops.forget = Adapter::OnForget;
    ops.forget_multi = Adapter::OnForgetMulti;
    ops.getattr = Adapter::OnGetAttr;
    ops.readlink = Adapter::OnReadLink;
    ops.open = Adapter::OnOpen;
    ops.read = Adapter::OnRead;
    ops.release = Adapter::OnRelease;
    ops.opendir = Adapter::OnOpenDir;
    ops.readdir = Adapter::OnReadDir;
    ops.readdirplus = Adapter::OnReadDirPlus;
    ops.releasedir = Adapter::OnReleaseDir;
    ops.getxattr = Adapter::OnGetXattr;
    ops.listxattr = Adapter::OnListXattr;
    ops.statfs = Adapter::OnStatFs;
    ops.mknod = Adapter::OnMkNod;
    ops.mkdir = Adapter::OnMkDir;
    ops.symlink = Adapter::OnSymlink;
    ops.link = Adapter::OnLink;
    ops.unlink = Adapter::OnUnlink;
    ops.rmdir = Adapter::OnRmDir;
    ops.rename = Adapter::OnRename;
    ops.setattr = Adapter::OnSetAttr;
    ops.create = Adapter::OnCreate;
    ops.write = Adapter::OnWrite;
    // No flush: close needs nothing of this filesystem (fsync makes data durable), and the
    // kernel stops sending FLUSH after the first ENOSYS libfuse answers for it.
    ops.fsync = Adapter::OnFsync;
    ops.fsyncdir = Adapter::OnFsyncDir;
    ops.setxattr = Adapter::OnSetXattr;
    ops.removexattr = Adapter::OnRemoveXattr;
    return ops;
  }();
  const std::string ctx = "mounting " + options.mountpoint;
  auto mount = std::unique_ptr<FuseMount>(new FuseMount());
  mount->adapter_ =
      std::make_unique<Adapter>(Adapter{fs, options.read_only ? kReadOnlyTimeout : 1.0, options.read_only,
                                        options.writeback_cache, options.id_shift});
  mount->max_threads_ = options.max_threads;

  std::string opts = "fsname=" + options.fsname + ",subtype=sealfs,max_read=" + std::to_string(kMaxRead);
  if (options.read_only) opts += ",ro";
  if (options.allow_other) opts += ",allow_other,default_permissions";
  if (options.suid_and_dev) opts += ",suid,dev";
  std::vector<std::string> argv = {"sealroot", "-o", opts};
  if (options.debug) argv.push_back("-d");
  std::vector<char*> cargv;
  for (std::string& s : argv) cargv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
  mount->session_ = fuse_session_new(&args, &kOps, sizeof kOps, mount->adapter_.get());
  fuse_opt_free_args(&args);
  if (mount->session_ == nullptr) return Internal(ctx + ": libfuse refused the session options");
  // Resolved before the mount: afterwards, resolving it would wait on this daemon.
  std::array<char, PATH_MAX> canonical{};
  const bool resolved = realpath(options.mountpoint.c_str(), canonical.data()) != nullptr;
  if (fuse_session_mount(mount->session_, options.mountpoint.c_str()) != 0) {
    return Unavailable(ctx + ": the kernel refused the FUSE mount (see the message above)");
  }
  mount->mounted_ = true;
  if (resolved) WidenReadAhead(canonical.data());
  mount->prefetch_siblings_ = options.prefetch_siblings && fs.prefetches();
  mount->stop_on_signal_ = options.stop_on_signal;
  // libfuse installs its handlers (which end the loop) only over SIG_DFL; the command's interrupt
  // flag would otherwise take the first signal and leave the mount serving.
  if (options.stop_on_signal) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
  }
  if (fuse_set_signal_handlers(mount->session_) != 0) return Internal(ctx + ": installing signal handlers");
  return mount;
}

FuseMount::~FuseMount() {
  if (session_ == nullptr) return;
  prefetch_.reset();  // its thread stores into the session
  fuse_remove_signal_handlers(session_);
  // Back to the flag: a signal while the caller saves the upper must not kill it half-way.
  if (stop_on_signal_) InstallInterruptHandler();
  if (mounted_) fuse_session_unmount(session_);
  fuse_session_destroy(session_);
}

Status FuseMount::Daemonize(const std::string& log_file) {
  int log_fd = -1;
  if (!log_file.empty()) {
    log_fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) return ErrnoStatus("opening log file " + log_file, errno);
  }
  // fuse_daemonize forks; the parent exits once the child is set up, and the mount already
  // exists, so `sealroot mount` returns with a usable mount.
  if (fuse_daemonize(0) != 0) return Internal("daemonizing the FUSE server");
  if (log_fd >= 0) {
    dup2(log_fd, STDERR_FILENO);
    close(log_fd);
  }
  return OkStatus();
}

Status FuseMount::Serve() {
  // Its threads start here, not in Create: Daemonize forks, and a fork keeps only its caller.
  if (prefetch_siblings_ && !prefetch_) {
    prefetch_ = std::make_unique<SiblingPrefetch>(adapter_->fs, session_);
    adapter_->prefetch = prefetch_.get();
  }
  fuse_loop_config* config = fuse_loop_cfg_create();
  if (config == nullptr) return Internal("creating the FUSE loop configuration");
  fuse_loop_cfg_set_max_threads(config, max_threads_);
  int rc = fuse_session_loop_mt(session_, config);
  fuse_loop_cfg_destroy(config);
  if (rc < 0) return Internal("the FUSE loop failed: " + std::string(std::strerror(-rc)));
  // libfuse returns the number of the signal that ended the loop.
  if (rc > 0) return Cancelled("stopped by SIG" + std::string(sigabbrev_np(rc) ? sigabbrev_np(rc) : "?"));
  return OkStatus();
}

}  // namespace sealroot::fusefs
