// The image root object's payload (design/sealfs.md "Image roots").
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "fusefs/src/records.h"

namespace sealroot::fusefs {

inline constexpr std::uint32_t kImageRootVersion = 1;

struct ImageRoot {
  std::string manifest_digest;
  std::string config_digest;
  std::string config_json;
  std::vector<std::pair<std::string, ObjectRef>> layers;  // diff id, layer index
  std::uint64_t max_ino = 1;
  Record root;  // the root directory (type kDirectory, ino 1, ref = its directory object)
};

std::vector<std::uint8_t> EncodeImageRoot(const ImageRoot& root);
Result<ImageRoot> DecodeImageRoot(std::span<const std::uint8_t> bytes);

}  // namespace sealroot::fusefs
