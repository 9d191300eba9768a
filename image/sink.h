// The layer sink: where the pipeline delivers an image's layers (design/image.md).
//
//   ImageSink::OpenLayer(info) -> LayerSink
//   LayerSink::AddEntry(entry, content)...  then exactly one of Commit() or Abort(reason)
//   ImageSink::Finish(image) once every layer committed (or Abort(reason))
//
// Commit() is called only after every check of that layer passed (blob digest, HMAC and
// plaintext digest when encrypted, DiffID) — these complete only at the end of the stream, so a
// sink stages what it receives and makes it visible only on Commit. After Abort nothing of the
// layer may look complete. Implementations: the directory sink (image/dir_sink.h, applies
// whiteouts) and the sealed-store sink (agent/, records them per layer).
//
// Thread-safety: one LayerSink is used by one thread; an ImageSink gets its layers in order, from
// one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/reader.h"
#include "base/status.h"
#include "image/digest.h"

namespace sealroot::image {

enum class EntryType {
  kDirectory,
  kRegular,   // content streamed through the Reader passed to AddEntry
  kSymlink,   // link_target verbatim, never resolved
  kHardLink,  // link_target: a cleaned path inside the image root
  kCharDevice,
  kBlockDevice,
  kFifo,
  kWhiteout,  // path: what to delete from lower layers (".wh.<name>" already stripped)
  kOpaque,    // path: the directory whose lower children are hidden (".wh..wh..opq")
};

struct Entry {
  EntryType type = EntryType::kRegular;
  // Cleaned, relative to the image root, no leading or trailing '/', never ".." components;
  // "" is the root directory itself.
  std::string path;
  std::uint32_t mode = 0;  // permission bits including setuid/setgid/sticky (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime_sec = 0;
  std::int64_t mtime_nsec = 0;
  std::uint64_t size = 0;  // regular files: exactly this many bytes will be readable
  std::string link_target;
  std::uint32_t dev_major = 0;
  std::uint32_t dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // name -> raw value
};

// What is known about a layer when it is opened.
struct LayerInfo {
  std::size_t index = 0;  // position in the manifest (0 = bottom)
  std::size_t count = 0;  // layers in the image
  Descriptor descriptor;  // as in the manifest (digest of the possibly encrypted blob)
  Digest diff_id;         // from the config's rootfs.diff_ids (checked at end of stream)
};

class LayerSink {
 public:
  virtual ~LayerSink() = default;
  // `content` is non-null exactly for kRegular entries and yields entry.size bytes; the sink
  // must consume it fully (or fail).
  virtual Status AddEntry(const Entry& entry, Reader* content) = 0;
  // Every check of the layer passed: make it durable and visible.
  virtual Status Commit() = 0;
  // The layer failed (`reason` says why): discard everything staged. Must not fail.
  virtual void Abort(const Status& reason) = 0;
};

// What is known about the whole image when it is finished.
struct ImageInfo {
  std::string reference;  // as the user gave it
  Digest manifest_digest;
  std::string manifest_json;  // exact bytes
  Digest config_digest;
  std::string config_json;  // exact bytes
  std::vector<Digest> diff_ids;
};

class ImageSink {
 public:
  virtual ~ImageSink() = default;
  // True if the sink already holds this layer (same DiffID), so the pipeline skips fetching it.
  virtual bool HasLayer(const Digest& /*diff_id*/) const { return false; }
  virtual Result<std::unique_ptr<LayerSink>> OpenLayer(const LayerInfo& info) = 0;
  // True if the sink keeps each layer apart until Finish (nothing a layer holds depends on the
  // layers below it): then layers with different DiffIDs may be opened, written and committed
  // at the same time, each on its own thread, and HasLayer may be called meanwhile.
  virtual bool LayersIndependent() const { return false; }
  // All layers committed: make the image visible (e.g. rename the staged bundle into place).
  virtual Status Finish(const ImageInfo& image) = 0;
  // The image failed: remove anything staged. Must not fail.
  virtual void Abort(const Status& reason) = 0;
};

}  // namespace sealroot::image
