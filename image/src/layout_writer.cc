// `sealroot pull`: a verified copy of one platform of an image into an OCI image layout.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "image/pull.h"
#include "image/src/progress.h"
#include "image/src/sources.h"
#include "image/stream.h"

namespace sealroot::image {
namespace {

constexpr std::string_view kRefName = "org.opencontainers.image.ref.name";

// True when the layout already holds the blob, verified (digest and size); a file that is not
// the blob is removed so that it is fetched anew.
bool HasVerifiedBlob(const std::string& layout, const Descriptor& d) {
  std::string path = layout + "/blobs/sha256/" + std::string(d.digest.hex());
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  Status s = Drain(*MakeVerifyingReader(MakeFdReader(std::move(fd)), d.digest, d.size, "blob"));
  if (!s.ok()) {
    SR_LOG(kWarning) << path << " is not blob " << d.digest.str() << " (" << s.message()
                     << "): fetching it again";
    ::unlink(path.c_str());
    return false;
  }
  return true;
}

// Streams a verified blob into blobs/sha256/<hex>: written under a temporary name, renamed only
// once the reader reached its end (where the digest is checked).
Status WriteBlob(const std::string& layout, Reader& blob, const Digest& digest) {
  std::string final_path = layout + "/blobs/sha256/" + std::string(digest.hex());
  std::string tmp = layout + "/blobs/sha256/.tmp-" + std::string(digest.hex()) + "-XXXXXX";
  UniqueFd fd(::mkstemp(tmp.data()));
  if (!fd) return ErrnoStatus("creating a blob in " + layout, errno);
  ScopeGuard remove([&] { ::unlink(tmp.c_str()); });
  std::vector<std::uint8_t> buf(1 << 20);
  while (true) {
    SR_ASSIGN_OR_RETURN(std::size_t n, blob.Read(buf));
    if (n == 0) break;
    SR_RETURN_IF_ERROR(WriteAll(fd.get(), std::span(buf).first(n)));
  }
  if (::fchmod(fd.get(), 0644) != 0 || ::fsync(fd.get()) != 0)
    return ErrnoStatus("writing blob " + digest.str(), errno);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0)
    return ErrnoStatus("naming blob " + digest.str(), errno);
  remove.Dismiss();
  return OkStatus();
}

Status WriteBytesBlob(const std::string& layout, std::string_view bytes, const Digest& digest) {
  std::string path = layout + "/blobs/sha256/" + std::string(digest.hex());
  return WriteFileAtomic(path, bytes, 0644);
}

Status InitLayout(const std::string& dir) {
  SR_RETURN_IF_ERROR(MakeDirs(dir + "/blobs/sha256"));
  std::string layout_file = dir + "/oci-layout";
  if (::access(layout_file.c_str(), F_OK) != 0) {
    SR_RETURN_IF_ERROR(WriteFileAtomic(layout_file, std::string_view(R"({"imageLayoutVersion":"1.0.0"})")));
  }
  return OkStatus();
}

// Adds (or retags) the manifest in index.json under `tag`.
Status TagInIndex(const std::string& dir, const ManifestBytes& manifest, const std::string& tag) {
  nlohmann::json index = {{"schemaVersion", 2}, {"manifests", nlohmann::json::array()}};
  if (auto existing = ReadFile(dir + "/index.json", internal::kMaxManifestSize); existing.ok()) {
    index = nlohmann::json::parse(*existing, nullptr, false);
    if (!index.is_object() || !index["manifests"].is_array())
      return InvalidArgument(dir + "/index.json is malformed");
  }
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& m : index["manifests"]) {
    bool same_tag = m.contains("annotations") && m["annotations"].value(std::string(kRefName), "") == tag;
    if (!(same_tag && !tag.empty())) kept.push_back(m);
  }
  nlohmann::json desc = {
      {"mediaType", manifest.media_type}, {"digest", manifest.digest.str()}, {"size", manifest.bytes.size()}};
  if (!tag.empty()) desc["annotations"] = {{std::string(kRefName), tag}};
  kept.push_back(desc);
  index["manifests"] = kept;
  return WriteFileAtomic(dir + "/index.json", index.dump());
}

}  // namespace

Status PullToLayout(const Reference& ref, const Reference& dest, const PullOptions& options) {
  std::string what = "pulling " + ref.ToString() + " into " + dest.ToString();
  if (dest.transport != Transport::kOciLayout)
    return InvalidArgument(what + ": the destination must be oci:DIR[:TAG]");
  auto run = [&]() -> Status {
    SR_ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> source, OpenImageSource(ref, options));
    SR_ASSIGN_OR_RETURN(ResolvedImage image, ResolveImage(*source, options));
    SR_RETURN_IF_ERROR(InitLayout(dest.path));
    const std::vector<Descriptor>& layers = image.parsed.layers;
    internal::ProgressSource counted(*source, layers, options.progress);
    // Blobs first, manifest last: the tag names only complete images. Blobs the layout already
    // holds (an earlier, interrupted pull; another image) are verified and kept.
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const Descriptor& layer = layers[i];
      std::uint64_t size = static_cast<std::uint64_t>(layer.size);
      if (HasVerifiedBlob(dest.path, layer)) {
        SR_LOG(kDebug) << "layer " << i + 1 << ": " << layer.digest.str() << " already in " << dest.path;
        internal::ReportProgress(options, ProgressEvent::Phase::kLayerSkipped, i, layers.size(), size);
        continue;
      }
      internal::ReportProgress(options, ProgressEvent::Phase::kLayerStarted, i, layers.size(), size);
      SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, counted.OpenBlob(layer));
      SR_RETURN_IF_ERROR_CTX(WriteBlob(dest.path, *blob, layer.digest), "layer " + std::to_string(i + 1));
      internal::ReportProgress(options, ProgressEvent::Phase::kLayerDone, i, layers.size(), size);
    }
    if (Interrupted()) return Cancelled("interrupted");
    SR_RETURN_IF_ERROR(WriteBytesBlob(dest.path, image.config_json, image.parsed.config.digest));
    SR_RETURN_IF_ERROR(WriteBytesBlob(dest.path, image.manifest.bytes, image.manifest.digest));
    std::string tag = !dest.tag.empty() ? dest.tag : ref.tag;
    SR_RETURN_IF_ERROR(TagInIndex(dest.path, image.manifest, tag));
    internal::ReportProgress(options, ProgressEvent::Phase::kFinished);
    return OkStatus();
  };
  return run().WithContext(what);
}

}  // namespace sealroot::image
