// The node record: one entry of a layer index (keyed by path) or of a directory object (keyed
// by name), carrying the whole inode so that its parent object authenticates all of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fusefs/src/codec.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

// Regular files up to this size live inside their directory object (no object of their own).
inline constexpr std::size_t kInlineMax = 2048;

struct Record {
  NodeType type = NodeType::kRegular;
  std::string name;        // layer index: the path; directory object: the entry name
  std::uint64_t ino = 0;   // directory objects only
  std::uint32_t mode = 0;  // permission bits (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t nlink = 1;
  std::uint64_t size = 0;  // regular files: content size
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
  std::uint32_t dev_major = 0;
  std::uint32_t dev_minor = 0;
  std::string target;            // symlink target; hard link: the linked path
  std::string inline_data;       // small regular files
  std::optional<ObjectRef> ref;  // regular file data, or a directory's object
  std::vector<std::pair<std::string, std::string>> xattrs;
};

void EncodeRecord(const Record& r, ByteWriter& w);
// False on malformed or out-of-limit input.
bool DecodeRecord(ByteReader& r, Record& out);

// The POSIX attributes a record describes.
Attr RecordAttr(const Record& r);

}  // namespace sealroot::fusefs

namespace sealroot::fusefs {

// A directory object's payload: a count, then records sorted by name with unique, valid names
// and inode numbers in [2, max_ino]. Anything else is kDataLoss.
Result<std::vector<Record>> DecodeDirectory(std::span<const std::uint8_t> bytes, std::uint64_t max_ino);

}  // namespace sealroot::fusefs
