#include "fusefs/src/records.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace sealroot::fusefs {
namespace {

constexpr std::size_t kMaxPath = 4096;
constexpr std::size_t kMaxXattrs = 1024;
constexpr std::size_t kMaxXattrName = 255;
constexpr std::size_t kMaxXattrValue = 64 * 1024;

constexpr std::uint8_t kHasRef = 1;

}  // namespace

void EncodeRecord(const Record& r, ByteWriter& w) {
  w.U8(static_cast<std::uint8_t>(r.type));
  w.U8(r.ref ? kHasRef : 0);
  w.Blob(r.name);
  w.U64(r.ino);
  w.U32(r.mode);
  w.U32(r.uid);
  w.U32(r.gid);
  w.U32(r.nlink);
  w.U64(r.size);
  w.I64(r.mtime_sec);
  w.U32(r.mtime_nsec);
  w.U32(r.dev_major);
  w.U32(r.dev_minor);
  w.Blob(r.target);
  w.Blob(r.inline_data);
  if (r.ref) {
    w.Bytes(r.ref->name);
    w.Bytes(r.ref->salt);
    w.U64(r.ref->size);
  }
  w.U32(static_cast<std::uint32_t>(r.xattrs.size()));
  for (const auto& [name, value] : r.xattrs) {
    w.Blob(name);
    w.Blob(value);
  }
}

bool DecodeRecord(ByteReader& r, Record& out) {
  std::uint8_t type = 0, flags = 0;
  if (!r.U8(type) || type < 1 || type > static_cast<std::uint8_t>(NodeType::kOpaque)) return false;
  out.type = static_cast<NodeType>(type);
  if (!r.U8(flags) || (flags & ~kHasRef) != 0) return false;
  if (!r.Blob(out.name, kMaxPath) || !r.U64(out.ino) || !r.U32(out.mode) || (out.mode & ~07777u) != 0 ||
      !r.U32(out.uid) || !r.U32(out.gid) || !r.U32(out.nlink) || !r.U64(out.size) || !r.I64(out.mtime_sec) ||
      !r.U32(out.mtime_nsec) || out.mtime_nsec >= 1000000000u || !r.U32(out.dev_major) ||
      !r.U32(out.dev_minor) || !r.Blob(out.target, kMaxPath) || !r.Blob(out.inline_data, kInlineMax)) {
    return false;
  }
  out.ref.reset();
  if (flags & kHasRef) {
    ObjectRef ref;
    if (!r.Bytes(ref.name) || !r.Bytes(ref.salt) || !r.U64(ref.size)) return false;
    out.ref = ref;
  }
  std::uint32_t count = 0;
  if (!r.U32(count) || count > kMaxXattrs) return false;
  out.xattrs.clear();
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string name, value;
    if (!r.Blob(name, kMaxXattrName) || !r.Blob(value, kMaxXattrValue)) return false;
    out.xattrs.emplace_back(std::move(name), std::move(value));
  }
  // A regular file's content is either inline or in an object, and the sizes agree.
  if (out.type == NodeType::kRegular) {
    std::uint64_t have = out.ref ? out.ref->size : out.inline_data.size();
    if (have != out.size || (out.ref && !out.inline_data.empty())) return false;
  }
  return true;
}

Attr RecordAttr(const Record& r) {
  Attr a;
  a.ino = r.ino;
  std::uint32_t fmt = 0;
  switch (r.type) {
    case NodeType::kDirectory:
      fmt = S_IFDIR;
      break;
    case NodeType::kSymlink:
      fmt = S_IFLNK;
      break;
    case NodeType::kCharDevice:
      fmt = S_IFCHR;
      break;
    case NodeType::kBlockDevice:
      fmt = S_IFBLK;
      break;
    case NodeType::kFifo:
      fmt = S_IFIFO;
      break;
    default:
      fmt = S_IFREG;
      break;
  }
  a.mode = fmt | r.mode;
  a.nlink = r.nlink;
  a.uid = r.uid;
  a.gid = r.gid;
  a.size = r.type == NodeType::kSymlink ? r.target.size() : r.size;
  a.rdev = makedev(r.dev_major, r.dev_minor);
  a.mtime_sec = r.mtime_sec;
  a.mtime_nsec = r.mtime_nsec;
  return a;
}

}  // namespace sealroot::fusefs

namespace sealroot::fusefs {

Result<std::vector<Record>> DecodeDirectory(std::span<const std::uint8_t> bytes, std::uint64_t max_ino) {
  ByteReader r(bytes);
  std::uint32_t count = 0;
  if (!r.U32(count) || count > r.remaining()) return DataLoss("malformed directory");
  std::vector<Record> entries(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    Record& e = entries[i];
    if (!DecodeRecord(r, e)) return DataLoss("malformed directory entry");
    bool valid_name = !e.name.empty() && e.name != "." && e.name != ".." && e.name.size() <= 255 &&
                      e.name.find('/') == std::string::npos && e.name.find('\0') == std::string::npos;
    if (!valid_name || (i > 0 && !(entries[i - 1].name < e.name)))
      return DataLoss("malformed directory names");
    if (e.ino < 2 || e.ino > max_ino) return DataLoss("directory entry with a bad inode number");
    bool has_content_ref = e.type == NodeType::kDirectory || e.type == NodeType::kRegular;
    if (e.type > NodeType::kFifo || (e.type == NodeType::kDirectory && !e.ref) ||
        (e.ref && !has_content_ref)) {
      return DataLoss("malformed directory entry " + e.name);
    }
  }
  if (!r.done()) return DataLoss("directory has trailing bytes");
  return entries;
}

}  // namespace sealroot::fusefs
