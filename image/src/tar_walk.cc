#include "image/src/tar_walk.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include "image/stream.h"

namespace sealroot::image::internal {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

constexpr la_int64_t kBlock = 512;

// libarchive pulls from the pipeline through this callback; the Status of a failed stage is kept
// so the error the user sees is ours ("layer 1 DiffID: digest mismatch"), not libarchive's.
//
// A stream that ends inside the block padding after the current entry's data (umoci 0.4 writes
// such layers, without padding or end-of-archive blocks) ends the archive there, as Go's
// archive/tar and so umoci read it: the missing padding is supplied as zeros. The digest stages
// upstream saw only the real bytes. A stream cut inside a header or an entry's data stays an
// error.
struct Feed {
  Reader* reader = nullptr;
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(256 * 1024);
  Status error;
  la_int64_t fed = 0;           // bytes handed to libarchive
  la_int64_t data_end = -1;     // stream offset where the current entry's data ends
  la_int64_t padding_end = -1;  // ... and where its block padding ends
  bool ended = false;

  static la_ssize_t Read(archive* a, void* self, const void** out) {
    auto* feed = static_cast<Feed*>(self);
    *out = feed->buffer.data();
    if (feed->ended) return 0;
    auto n = feed->reader->Read(feed->buffer);
    if (!n.ok()) {
      feed->error = n.status();
      archive_set_error(a, EIO, "%s", "layer stream failed");
      return -1;
    }
    if (*n == 0) {
      feed->ended = true;
      if (feed->fed < feed->data_end || feed->fed >= feed->padding_end) return 0;
      auto missing = static_cast<std::size_t>(feed->padding_end - feed->fed);
      std::fill_n(feed->buffer.begin(), missing, std::uint8_t{0});
      feed->fed = feed->padding_end;
      return static_cast<la_ssize_t>(missing);
    }
    feed->fed += static_cast<la_int64_t>(*n);
    return static_cast<la_ssize_t>(*n);
  }

  // Called right after a header is read, when libarchive has consumed exactly the header blocks.
  void EnterEntry(archive* a, std::uint64_t data_size) {
    data_end = archive_filter_bytes(a, 0) + static_cast<la_int64_t>(data_size);
    padding_end = (data_end + kBlock - 1) / kBlock * kBlock;
  }
};

// The content of the current regular-file entry.
class EntryContent final : public Reader {
 public:
  EntryContent(archive* a, const Feed& feed) : a_(a), feed_(feed) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    la_ssize_t n = archive_read_data(a_, out.data(), out.size());
    if (n < 0) {
      if (!feed_.error.ok()) return feed_.error;
      return DataLoss(std::string("reading tar entry data: ") + ArchiveError(a_));
    }
    return static_cast<std::size_t>(n);
  }

 private:
  archive* a_;
  const Feed& feed_;
};

Result<Entry> ConvertEntry(archive_entry* ae) {
  const char* raw = archive_entry_pathname(ae);
  if (raw == nullptr) raw = archive_entry_pathname_utf8(ae);
  if (raw == nullptr) return InvalidArgument("tar entry without a name");
  Entry e;
  SR_ASSIGN_OR_RETURN(e.path, CleanEntryPath(raw));
  auto fail = [&](std::string why) {
    return InvalidArgument("tar entry '" + std::string(raw) + "': " + why);
  };
  la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
  constexpr la_int64_t kMaxId = std::numeric_limits<std::uint32_t>::max() - 1;
  if (uid < 0 || gid < 0 || uid > kMaxId || gid > kMaxId) return fail("uid/gid out of range");
  e.uid = static_cast<std::uint32_t>(uid);
  e.gid = static_cast<std::uint32_t>(gid);
  e.mode = archive_entry_mode(ae) & 07777;
  e.mtime_sec = archive_entry_mtime(ae);
  e.mtime_nsec = archive_entry_mtime_nsec(ae);
  archive_entry_xattr_reset(ae);
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
    e.xattrs.emplace_back(name, std::string(static_cast<const char*>(value), size));
  }
  if (const char* hardlink = archive_entry_hardlink(ae)) {
    e.type = EntryType::kHardLink;
    SR_ASSIGN_OR_RETURN(e.link_target, CleanEntryPath(hardlink));
    if (e.link_target.empty()) return fail("hard link to the root directory");
    return e;
  }
  switch (archive_entry_filetype(ae)) {
    case AE_IFREG: {
      la_int64_t sz = archive_entry_size(ae);
      if (sz < 0) return fail("negative size");
      e.type = EntryType::kRegular;
      e.size = static_cast<std::uint64_t>(sz);
      break;
    }
    case AE_IFDIR:
      e.type = EntryType::kDirectory;
      break;
    case AE_IFLNK: {
      e.type = EntryType::kSymlink;
      const char* target = archive_entry_symlink(ae);
      if (target == nullptr) target = archive_entry_symlink_utf8(ae);
      if (target == nullptr) return fail("symlink without a target");
      e.link_target = target;
      break;
    }
    case AE_IFCHR:
      e.type = EntryType::kCharDevice;
      break;
    case AE_IFBLK:
      e.type = EntryType::kBlockDevice;
      break;
    case AE_IFIFO:
      e.type = EntryType::kFifo;
      break;
    default:
      return fail("unsupported entry type (sockets cannot be unpacked)");
  }
  if (e.type == EntryType::kCharDevice || e.type == EntryType::kBlockDevice) {
    e.dev_major = archive_entry_rdevmajor(ae);
    e.dev_minor = archive_entry_rdevminor(ae);
  }
  if (e.path.empty() && e.type != EntryType::kDirectory) return fail("the root must be a directory");
  return e;
}

// ".wh.<name>" -> whiteout of <name>; ".wh..wh..opq" -> opaque parent; other entries unchanged.
Status ConvertWhiteout(Entry& e) {
  std::size_t slash = e.path.rfind('/');
  std::string_view base =
      slash == std::string::npos ? std::string_view(e.path) : std::string_view(e.path).substr(slash + 1);
  if (!base.starts_with(kWhiteoutPrefix)) return OkStatus();
  std::string parent = slash == std::string::npos ? "" : e.path.substr(0, slash);
  if (base == kOpaqueMarker) {
    e.type = EntryType::kOpaque;
    e.path = parent;
    return OkStatus();
  }
  std::string_view victim = base.substr(kWhiteoutPrefix.size());
  if (victim.empty() || victim == "." || victim == "..") {
    return InvalidArgument("tar entry '" + e.path + "': malformed whiteout");
  }
  e.type = EntryType::kWhiteout;
  e.path = parent.empty() ? std::string(victim) : parent + "/" + std::string(victim);
  return OkStatus();
}

}  // namespace

std::string ArchiveError(archive* a) {
  const char* message = archive_error_string(a);
  return message != nullptr ? message : "unknown libarchive error";
}

Result<std::string> CleanEntryPath(std::string_view name) {
  std::string original(name);
  if (name.starts_with('/')) return InvalidArgument("tar entry '" + original + "': absolute path");
  std::string out;
  while (!name.empty()) {
    std::size_t slash = name.find('/');
    std::string_view part = name.substr(0, slash);
    name = slash == std::string_view::npos ? std::string_view() : name.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return InvalidArgument("tar entry '" + original + "': '..' component (path escape)");
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

Status WalkTar(Reader& tar, LayerSink& sink) {
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  if (!a) return Internal("libarchive: out of memory");
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  Feed feed;
  feed.reader = &tar;
  if (archive_read_open(a.get(), &feed, nullptr, &Feed::Read, nullptr) != ARCHIVE_OK) {
    if (!feed.error.ok()) return feed.error;
    return DataLoss(std::string("not a tar stream: ") + ArchiveError(a.get()));
  }
  while (true) {
    archive_entry* ae = nullptr;
    int rc = archive_read_next_header(a.get(), &ae);
    if (rc == ARCHIVE_EOF) break;
    if (!feed.error.ok()) return feed.error;
    if (rc < ARCHIVE_WARN) return DataLoss(std::string("malformed tar: ") + ArchiveError(a.get()));
    SR_ASSIGN_OR_RETURN(Entry entry, ConvertEntry(ae));
    feed.EnterEntry(a.get(), entry.type == EntryType::kRegular ? entry.size : 0);
    SR_RETURN_IF_ERROR(ConvertWhiteout(entry));
    EntryContent content(a.get(), feed);
    Status s = sink.AddEntry(entry, entry.type == EntryType::kRegular ? &content : nullptr);
    if (!feed.error.ok()) return feed.error;
    SR_RETURN_IF_ERROR_CTX(s, "'" + entry.path + "'");
  }
  // The tar end marker may be followed by padding; the DiffID covers every byte.
  return Drain(tar);
}

}  // namespace sealroot::image::internal
