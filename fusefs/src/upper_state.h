// The sealed state of a persistent upper (design/sealfs-upper.md "State"): every inode that
// differs from the lower, the listings of changed directories, and each upper file's block
// table. Written whole, atomically, sealed under a fresh key per write; its SHA-256 is the
// upper's root hash.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "fusefs/filesystem.h"
#include "fusefs/src/upper_file.h"
#include "fusefs/store_key.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

struct UpperNodeRecord {
  std::uint64_t ino = 0;
  std::uint64_t parent = 0;
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t nlink = 0;
  std::uint64_t rdev = 0;
  Timespec atime, mtime, ctime;
  bool from_lower = false;  // content/listing source is the lower node at lower_path
  std::string lower_path;
  std::uint64_t lower_size = 0;
  std::string target;
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::optional<UpperFileState> data;
  // Directories whose listing changed: the whole listing (an opaque directory).
  std::optional<std::vector<std::pair<std::string, std::uint64_t>>> listing;
};

struct UpperState {
  RootHash lower_root{};
  std::string owner;  // UpperOptions::owner
  std::uint64_t generation = 0;
  std::uint64_t next_ino = 0;
  std::uint64_t next_file_id = 1;
  std::vector<UpperNodeRecord> nodes;
};

// The bytes of the state file.
Result<std::vector<std::uint8_t>> SealUpperState(const StoreKey& key, const UpperState& state);
// Verifies and decodes a state file; kDataLoss for anything tampered or malformed.
Result<UpperState> OpenUpperState(const StoreKey& key, std::span<const std::uint8_t> file);

}  // namespace sealroot::fusefs
