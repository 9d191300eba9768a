// Value types shared by the sealed store's writer, reader and tools (design/sealfs.md).
//
// Thread-safety: value types.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sealroot::fusefs {

using Hash32 = std::array<std::uint8_t, 32>;

// An image's root hash: the name (content address) of its image root object.
using RootHash = Hash32;

// Parses 64 lowercase hex characters.
Result<Hash32> ParseHash(std::string_view hex);
std::string HashHex(const Hash32& hash);

// How a parent names a child object: where it is (name), which key opens it (salt, through
// HKDF of the store key) and how many plaintext bytes it holds. A ref is only trustworthy inside
// a verified parent.
struct ObjectRef {
  Hash32 name{};
  Hash32 salt{};
  std::uint64_t size = 0;
  friend bool operator==(const ObjectRef&, const ObjectRef&) = default;
};

enum class ObjectKind : std::uint8_t { kData = 1, kLayerIndex = 2, kDirectory = 3, kImageRoot = 4 };

// What a node in the tree is. kHardLink, kWhiteout and kOpaque appear only in layer indexes;
// flattening resolves them.
enum class NodeType : std::uint8_t {
  kDirectory = 1,
  kRegular = 2,
  kSymlink = 3,
  kCharDevice = 4,
  kBlockDevice = 5,
  kFifo = 6,
  kHardLink = 7,
  kWhiteout = 8,
  kOpaque = 9,
};

// POSIX attributes of one inode as the reader reports them (times: mtime for all three).
struct Attr {
  std::uint64_t ino = 0;
  std::uint32_t mode = 0;  // S_IFMT | permission bits
  std::uint32_t nlink = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
  std::uint64_t rdev = 0;
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
};

}  // namespace sealroot::fusefs
