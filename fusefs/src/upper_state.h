// The sealed state of a persistent upper (design/sealfs-upper.md "State"): every inode that
// differs from the lower, the listings of changed directories, and each upper file's block
// table. A snapshot holds it whole (written atomically); a journal of sealed records, each
// holding what changed since the one before and bound to it, extends the snapshot. Each is
// sealed under a fresh key; the upper's root hash is the snapshot's SHA-256 chained through
// the journal's records.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <array>
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
  // Directories whose listing changed: the whole listing (an opaque directory), or in a
  // journal record (listing_full false) the names that changed since (inode 0: removed).
  std::optional<std::vector<std::pair<std::string, std::uint64_t>>> listing;
  bool listing_full = true;
};

struct UpperState {
  RootHash lower_root{};
  std::string owner;  // UpperOptions::owner
  std::uint64_t generation = 0;
  std::uint64_t next_ino = 0;
  std::uint64_t next_file_id = 1;
  std::vector<UpperNodeRecord> nodes;
  std::vector<std::uint64_t> removed;  // journal records: inodes the state no longer holds
};

// The bytes of a journal's header: magic and the root of the snapshot it extends.
inline constexpr std::size_t kJournalHeaderSize = 40;
std::array<std::uint8_t, kJournalHeaderSize> JournalHeader(const Hash32& base_root);
// The snapshot root a journal header names; none if it is not a journal header.
std::optional<Hash32> JournalBase(std::span<const std::uint8_t> journal);
// The length of the record at the start of `rest` (its 4-byte length included); none if `rest`
// holds no whole record (a torn append).
std::optional<std::size_t> JournalRecordSize(std::span<const std::uint8_t> rest);
// The root after appending `record` (whole, length included) to a state whose root is `previous`.
Hash32 NextUpperRoot(const Hash32& previous, std::span<const std::uint8_t> record);

// The bytes of the state file.
Result<std::vector<std::uint8_t>> SealUpperState(const StoreKey& key, const UpperState& state);
// Verifies and decodes a state file; kDataLoss for anything tampered or malformed.
Result<UpperState> OpenUpperState(const StoreKey& key, std::span<const std::uint8_t> file);

// A journal record of `change` (nodes changed since the state whose root is `previous`).
Result<std::vector<std::uint8_t>> SealJournalRecord(const StoreKey& key, const Hash32& previous,
                                                    const UpperState& change);
// Verifies a record (whole, length included) as the one that follows `previous`: a record of
// another position (reordered, replayed, from another upper) fails authentication (kDataLoss).
Result<UpperState> OpenJournalRecord(const StoreKey& key, const Hash32& previous,
                                     std::span<const std::uint8_t> record);
// Applies journal records, oldest first, to a snapshot; kDataLoss if one does not fit it.
Result<UpperState> ReplayUpperJournal(UpperState base, std::vector<UpperState> records);

}  // namespace sealroot::fusefs
