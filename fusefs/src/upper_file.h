// One regular file of the writable upper (design/sealfs-upper.md "Data files"): fixed 64 KiB
// blocks, each AES-256-GCM sealed on its own, stored in 64 KiB slots of a host file that holds
// ciphertext only. The block table — per written block its host slot, key epoch, sealed length,
// write counter and tag — lives in enclave memory (and in the sealed upper state), never on the
// host: a block the host changes, replays from an earlier write or moves from another file or
// position fails its tag. The table holds written blocks only: a hole costs nothing in memory or
// on the host, so a file's size is bounded by the table, not by the host filesystem.
//
// Keys: one key per (file, epoch); an epoch starts at the first write of each mount, with a
// fresh random salt. Within an epoch the nonce is a counter that only grows, so no (key, nonce)
// pair is ever used twice, even when the host rolls the persisted state back between mounts.
//
// Thread-safety: thread-safe (one lock per file around its table and host I/O, so a read never
// sees a block between its table entry and its bytes; size() is lock-free).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/fd.h"
#include "base/secret.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "fusefs/store_key.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

inline constexpr std::size_t kUpperBlockSize = 64 * 1024;

// One entry of the block table: a written block (a block without an entry is a hole).
struct UpperBlock {
  std::uint64_t slot = 0;  // where its ciphertext is on the host: slot * kUpperBlockSize
  std::uint32_t epoch = 0;
  std::uint32_t len = 0;
  std::uint64_t counter = 0;
  std::array<std::uint8_t, 16> tag{};
};

inline constexpr std::uint64_t kNoDrop = ~std::uint64_t{0};

// What the sealed state keeps of a file: its whole table, or (a journal record's change) the
// blocks written since the last record, after dropping those from `drop_from` on.
struct UpperFileState {
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::vector<Hash32> epoch_salts;
  std::uint64_t drop_from = 0;                 // 0: `blocks` is the whole table
  std::map<std::uint64_t, UpperBlock> blocks;  // by block index
};

class UpperFile {
 public:
  // `host` holds the ciphertext (a file in the upper directory, or a memfd), written and synced
  // through `env` (which must outlive the file). `state` is trusted (from the sealed state:
  // `persisted`, or empty for a new file); `name` is for error messages.
  static Result<std::unique_ptr<UpperFile>> Open(std::shared_ptr<const StoreKey> key, Env& env, UniqueFd host,
                                                 UpperFileState state, std::string name,
                                                 bool persisted = false);

  // Reads [offset, offset + out.size()) clamped to the size. kDataLoss if a block fails its tag.
  Result<std::size_t> Read(std::uint64_t offset, std::span<std::uint8_t> out) const;
  Result<std::size_t> Write(std::uint64_t offset, std::span<const std::uint8_t> data);
  Status Truncate(std::uint64_t size);
  Status Sync() const;
  std::uint64_t size() const { return size_.load(std::memory_order_acquire); }
  // Plaintext bytes the written blocks hold (what the file costs; holes are free).
  std::uint64_t allocated() const { return allocated_.load(std::memory_order_acquire); }
  // The whole table, for a snapshot; what is written from now on is the next change.
  UpperFileState TakeFull();
  // What changed since the last TakeFull/TakeChange (the whole table if none was persisted).
  UpperFileState TakeChange();
  std::uint64_t id() const { return id_; }

 private:
  UpperFile(std::shared_ptr<const StoreKey> key, Env& env, UniqueFd host, UpperFileState state,
            std::string name);
  Status StartEpoch() SR_REQUIRES(mu_);
  // Decrypts block `index` into `out` (kUpperBlockSize bytes; zero beyond its length).
  Status OpenBlock(std::uint64_t index, std::span<std::uint8_t> out) const SR_REQUIRES(mu_);
  Status SealBlocks(std::uint64_t index, std::span<const std::uint8_t> plain) SR_REQUIRES(mu_);
  // Drops the blocks from `index` on; their slots are free for reuse.
  void DropBlocks(std::uint64_t index) SR_REQUIRES(mu_);
  std::uint64_t AllocateSlot() SR_REQUIRES(mu_);
  void FreeSlot(std::uint64_t slot) SR_REQUIRES(mu_);
  void UpdateAllocated() SR_REQUIRES(mu_);

  const std::shared_ptr<const StoreKey> key_;
  Env& env_;
  const UniqueFd host_;
  const std::uint64_t id_;
  const std::string name_;
  mutable Mutex mu_;
  std::vector<Hash32> epoch_salts_ SR_GUARDED_BY(mu_);
  std::vector<SecretBytes> epoch_keys_ SR_GUARDED_BY(mu_);
  std::map<std::uint64_t, UpperBlock> blocks_ SR_GUARDED_BY(mu_);
  std::set<std::uint64_t> free_slots_ SR_GUARDED_BY(mu_);  // below next_slot_, reused lowest first
  std::uint64_t next_slot_ SR_GUARDED_BY(mu_) = 0;         // the host file holds this many slots
  bool epoch_started_ SR_GUARDED_BY(mu_) = false;
  std::uint64_t counter_ SR_GUARDED_BY(mu_) = 0;
  // Since the last TakeFull/TakeChange: blocks sealed, the lowest index dropped.
  bool persisted_ SR_GUARDED_BY(mu_) = false;
  std::set<std::uint64_t> changed_blocks_ SR_GUARDED_BY(mu_);
  std::uint64_t dropped_from_ SR_GUARDED_BY(mu_) = kNoDrop;
  std::uint64_t unstarted_bytes_ SR_GUARDED_BY(mu_) = 0;  // written since the host's writeback was started
  std::atomic<std::uint64_t> size_{0};
  std::atomic<std::uint64_t> allocated_{0};
};

// The key of one (file, epoch): HKDF of the store key with a salt that no lower object can have.
Result<SecretBytes> UpperKey(const StoreKey& key, std::string_view purpose, const Hash32& salt);

}  // namespace sealroot::fusefs
