#include "fusefs/src/image_root.h"

namespace sealroot::fusefs {
namespace {
constexpr std::size_t kMaxConfig = 16u << 20;
constexpr std::uint32_t kMaxLayers = 4096;
}  // namespace

std::vector<std::uint8_t> EncodeImageRoot(const ImageRoot& root) {
  ByteWriter w;
  w.U32(kImageRootVersion);
  w.Blob(root.manifest_digest);
  w.Blob(root.config_digest);
  w.Blob(root.config_json);
  w.U32(static_cast<std::uint32_t>(root.layers.size()));
  for (const auto& [diff_id, ref] : root.layers) {
    w.Blob(diff_id);
    w.Bytes(ref.name);
    w.Bytes(ref.salt);
    w.U64(ref.size);
  }
  w.U64(root.max_ino);
  EncodeRecord(root.root, w);
  return std::move(w.bytes());
}

Result<ImageRoot> DecodeImageRoot(std::span<const std::uint8_t> bytes) {
  ByteReader r(bytes);
  ImageRoot root;
  std::uint32_t version = 0, layers = 0;
  if (!r.U32(version)) return DataLoss("image root is truncated");
  if (version != kImageRootVersion) {
    return FailedPrecondition("image root has format version " + std::to_string(version) + ", expected 1");
  }
  if (!r.Blob(root.manifest_digest, 256) || !r.Blob(root.config_digest, 256) ||
      !r.Blob(root.config_json, kMaxConfig) || !r.U32(layers) || layers > kMaxLayers) {
    return DataLoss("malformed image root");
  }
  for (std::uint32_t i = 0; i < layers; ++i) {
    std::string diff_id;
    ObjectRef ref;
    if (!r.Blob(diff_id, 256) || !r.Bytes(ref.name) || !r.Bytes(ref.salt) || !r.U64(ref.size)) {
      return DataLoss("malformed image root layer list");
    }
    root.layers.emplace_back(std::move(diff_id), ref);
  }
  if (!r.U64(root.max_ino) || !DecodeRecord(r, root.root) || !r.done() ||
      root.root.type != NodeType::kDirectory || !root.root.ref || root.root.ino != 1) {
    return DataLoss("malformed image root directory");
  }
  return root;
}

}  // namespace sealroot::fusefs
