// OCI image layout (oci:DIR[:TAG]) and oci-archive (a tar of one) sources.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "image/manifest.h"
#include "image/src/sources.h"
#include "image/src/tar_walk.h"
#include "image/stream.h"

namespace sealroot::image::internal {
namespace {

constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

class OciLayoutSource : public ImageSource {
 public:
  OciLayoutSource(Reference ref, std::string dir) : ref_(std::move(ref)), dir_(std::move(dir)) {}

  const Reference& reference() const override { return ref_; }

  Result<ManifestBytes> GetManifest(std::string_view tag_or_digest) override {
    auto found = tag_or_digest.starts_with("sha256:") ? ByDigest(tag_or_digest) : FindTag(tag_or_digest);
    SR_ASSIGN_OR_RETURN(Descriptor desc, std::move(found));
    SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, OpenBlob(desc));
    auto bytes = ReadAll(*blob, kMaxManifestSize);
    if (!bytes.ok()) return std::move(bytes).status().WithContext("manifest " + desc.digest.str());
    SR_ASSIGN_OR_RETURN(std::string media_type, DetectManifestMediaType(*bytes, desc.media_type));
    return ManifestBytes{std::move(*bytes), std::move(media_type), desc.digest};
  }

  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& desc) override {
    // desc.digest is validated, so the path cannot leave blobs/sha256/.
    std::string path = dir_ + "/blobs/sha256/" + std::string(desc.digest.hex());
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return ErrnoStatus("opening blob " + desc.digest.str() + " in " + ref_.ToString(), errno);
    return MakeVerifyingReader(MakeFdReader(std::move(fd)), desc.digest, desc.size,
                               "blob " + desc.digest.str());
  }

 private:
  // A manifest named by digest only: its size is not known up front.
  static Result<Descriptor> ByDigest(std::string_view digest) {
    SR_ASSIGN_OR_RETURN(Digest d, Digest::Parse(digest));
    return Descriptor{"", std::move(d), -1, {}};
  }

  Result<Descriptor> FindTag(std::string_view tag) {
    SR_ASSIGN_OR_RETURN(std::string text, ReadFile(dir_ + "/index.json", kMaxManifestSize));
    SR_ASSIGN_OR_RETURN(Index index, ParseIndex(text, kOciIndex));
    std::string tags;
    for (const IndexEntry& e : index.manifests) {
      auto name = e.descriptor.annotations.find(std::string(kRefNameAnnotation));
      std::string entry_tag = name == e.descriptor.annotations.end() ? "" : name->second;
      if (entry_tag == tag || (tag.empty() && index.manifests.size() == 1)) return e.descriptor;
      tags += (tags.empty() ? "" : ", ") + (entry_tag.empty() ? e.descriptor.digest.str() : entry_tag);
    }
    if (tag.empty())
      return NotFound(ref_.ToString() + ": the layout holds several images; name one of: " + tags);
    return NotFound(ref_.ToString() + ": no image tagged '" + std::string(tag) +
                    "' (the layout has: " + (tags.empty() ? "nothing" : tags) + ")");
  }

  Reference ref_;
  std::string dir_;
};

// An oci-archive: the layout extracted into a private temporary directory.
class OciArchiveSource final : public OciLayoutSource {
 public:
  OciArchiveSource(Reference ref, std::string tmp)
      : OciLayoutSource(std::move(ref), tmp), tmp_(std::move(tmp)) {}
  ~OciArchiveSource() override { (void)RemoveTree(tmp_); }

 private:
  std::string tmp_;
};

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

// Only the names an OCI layout has; everything else (links, devices, "..") is refused.
bool AllowedArchiveName(std::string_view name) {
  if (name.starts_with("./")) name.remove_prefix(2);
  if (name == "index.json" || name == "oci-layout") return true;
  if (!name.starts_with("blobs/sha256/")) return false;
  return Digest::Parse("sha256:" + std::string(name.substr(13))).ok();
}

Status ExtractLayoutArchive(const std::string& file, const std::string& dir) {
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  archive_read_support_filter_all(a.get());
  // A missing or unreadable file is said as the OS says it (a missing one is kNotFound, as for
  // a missing layout); libarchive's words are for files that are there but not archives.
  UniqueFd probe(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!probe) return ErrnoStatus("opening oci-archive " + file, errno);
  if (archive_read_open_filename(a.get(), file.c_str(), 1 << 20) != ARCHIVE_OK) {
    return InvalidArgument("opening oci-archive " + file + ": " + internal::ArchiveError(a.get()));
  }
  SR_RETURN_IF_ERROR(MakeDirs(dir + "/blobs/sha256", 0700));
  std::vector<std::uint8_t> buf(1 << 20);
  while (true) {
    archive_entry* ae = nullptr;
    int rc = archive_read_next_header(a.get(), &ae);
    if (rc == ARCHIVE_EOF) return OkStatus();
    if (rc < ARCHIVE_WARN)
      return DataLoss("reading oci-archive " + file + ": " + internal::ArchiveError(a.get()));
    std::string_view name = archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "";
    if (archive_entry_filetype(ae) == AE_IFDIR) continue;
    if (archive_entry_filetype(ae) != AE_IFREG || archive_entry_hardlink(ae) || !AllowedArchiveName(name)) {
      return InvalidArgument("oci-archive " + file + ": unexpected member '" + std::string(name) + "'");
    }
    if (name.starts_with("./")) name.remove_prefix(2);
    std::string out = dir + "/" + std::string(name);
    UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return ErrnoStatus("oci-archive " + file + ": writing '" + std::string(name) + "'", errno);
    while (true) {
      la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n < 0) return DataLoss("reading oci-archive " + file + ": " + internal::ArchiveError(a.get()));
      if (n == 0) break;
      SR_RETURN_IF_ERROR(WriteAll(fd.get(), std::span(buf).first(static_cast<std::size_t>(n))));
    }
  }
}

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenOciLayoutSource(const Reference& ref) {
  auto layout = ReadFile(ref.path + "/oci-layout", 4096);
  if (!layout.ok())
    return std::move(layout).status().WithContext(ref.ToString() + ": not an OCI image layout");
  auto doc = nlohmann::json::parse(*layout, nullptr, false);
  if (!doc.is_object() || doc.value("imageLayoutVersion", "") != "1.0.0") {
    return InvalidArgument(ref.ToString() + ": unsupported oci-layout (want imageLayoutVersion 1.0.0)");
  }
  return std::unique_ptr<ImageSource>(std::make_unique<OciLayoutSource>(ref, ref.path));
}

Result<std::unique_ptr<ImageSource>> OpenOciArchiveSource(const Reference& ref, const PullOptions& options) {
  std::string base = options.spool_dir.empty() ? (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp")
                                               : options.spool_dir;
  std::string tmpl = base + "/sealroot-archive-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    return ErrnoStatus("creating a directory for " + ref.ToString(), errno);
  ScopeGuard cleanup([&] { (void)RemoveTree(tmpl); });
  SR_RETURN_IF_ERROR(ExtractLayoutArchive(ref.path, tmpl));
  Reference as_layout = ref;
  as_layout.path = tmpl;
  SR_RETURN_IF_ERROR(OpenOciLayoutSource(as_layout).status());
  cleanup.Dismiss();
  return std::unique_ptr<ImageSource>(std::make_unique<OciArchiveSource>(ref, tmpl));
}

}  // namespace sealroot::image::internal
