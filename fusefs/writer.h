// The streaming writer of the sealed store (design/sealfs.md "Layers" and "Image roots").
//
//   auto w = LayerWriter::Create(store, key, "sha256:...");   // one per layer, one thread each
//   w->Add(entry, &content) ...;  w->Commit()  (or Abort())
//   BuildImageRoot(*store, *key, image) -> root hash            // once every layer is committed
//
// A layer is visible (HasLayer) only after Commit; an image only after BuildImageRoot returns.
// Anything a failed or killed writer leaves behind is unreferenced and removed by gc.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/reader.h"
#include "base/status.h"
#include "fusefs/store.h"
#include "fusefs/store_key.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

// One entry of a layer, as the image's tar stream describes it.
struct LayerEntry {
  NodeType type = NodeType::kRegular;
  std::string path;        // cleaned, relative, no "..": "" is the root directory
  std::uint32_t mode = 0;  // permission bits (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime_sec = 0;
  std::int64_t mtime_nsec = 0;
  std::uint64_t size = 0;   // regular files: exactly this many content bytes
  std::string link_target;  // symlink target, or the linked path of a hard link
  std::uint32_t dev_major = 0;
  std::uint32_t dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// Seals one layer in one pass with bounded memory (about 4 MiB). Not thread-safe; distinct
// LayerWriters may run in parallel on one store.
class LayerWriter {
 public:
  static Result<std::unique_ptr<LayerWriter>> Create(std::shared_ptr<const Store> store,
                                                     std::shared_ptr<const StoreKey> key,
                                                     std::string diff_id);
  virtual ~LayerWriter() = default;
  // `content` (where a regular file's content comes from) is required for kRegular and must yield exactly
  // entry.size bytes.
  virtual Status Add(const LayerEntry& entry, Reader* content) = 0;
  // Makes the layer durable and visible under its DiffID.
  virtual Status Commit() = 0;
  // Removes what was written. Must not fail.
  virtual void Abort() = 0;
};

struct ImageMetadata {
  std::string manifest_digest;
  std::string config_digest;
  std::string config_json;
  std::vector<std::string> diff_ids;  // bottom layer first; each must be committed
};

// Flattens the committed layers (whiteouts, opaque directories, hard links), writes the image's
// directory objects and root object, commits the root, and returns its root hash.
Result<RootHash> BuildImageRoot(const Store& store, const StoreKey& key, const ImageMetadata& image);

}  // namespace sealroot::fusefs
