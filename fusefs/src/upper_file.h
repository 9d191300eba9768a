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
// Thread-safety: thread-safe, and calls on disjoint blocks run in parallel (the writeback cache
// keeps many 1 MiB writes of one file in flight). Each Read, Write and Truncate first takes its
// range of blocks (a Truncate: from the block that holds the new end on); calls whose ranges
// overlap take turns. So no call sees a block between its new bytes and its new table entry, and
// two read-modify-writes of one block never interleave. The file's mutex guards the bookkeeping
// only (table, free slots, epoch keys, nonce counter) and is never held while a block is sealed,
// opened or written: a write takes its nonces and slots under it, seals and writes without it,
// then enters its blocks and the size in one step — so TakeFull/TakeChange see each call whole or
// not at all, and a failed write gives its slots back and leaves the table as it was. Whole
// blocks are sealed before the range is taken (their ciphertext does not depend on the file), so
// requests that share a partial block at their edges wait only for each other's patch and pwrite.
// size() and allocated() are lock-free.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
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
  Result<std::size_t> Read(std::uint64_t offset, std::span<std::uint8_t> out) const SR_EXCLUDES(mu_);
  // A failed write changes neither the table nor the size.
  Result<std::size_t> Write(std::uint64_t offset, std::span<const std::uint8_t> data) SR_EXCLUDES(mu_);
  Status Truncate(std::uint64_t size) SR_EXCLUDES(mu_);
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
  // Blocks [first, last] of the file, held by one Read, Write or Truncate for its whole call;
  // waits while another call holds any of them.
  class BlockRange {
   public:
    BlockRange(const UpperFile& file, std::uint64_t first, std::uint64_t last);
    ~BlockRange();
    BlockRange(const BlockRange&) = delete;
    BlockRange& operator=(const BlockRange&) = delete;

   private:
    const UpperFile& file_;
    const std::uint64_t first_;
  };
  // A written block as a call needs it outside mu_: its entry and its epoch's key (epoch keys
  // never move or change once made).
  struct WrittenBlock {
    UpperBlock entry;
    const SecretBytes* key = nullptr;
  };
  // Blocks first, first + 1, ... on their way into the table: nonces taken, then sealed into this
  // thread's `cipher`, then written to their slots.
  struct SealedBlocks {
    std::uint64_t first = 0;
    std::vector<UpperBlock> blocks;
    const SecretBytes* key = nullptr;      // of the current epoch
    std::span<std::uint8_t> cipher;        // a slot's worth per block
    std::vector<std::uint64_t> new_slots;  // taken for blocks that had none
  };

  UpperFile(std::shared_ptr<const StoreKey> key, Env& env, UniqueFd host, UpperFileState state,
            std::string name);
  bool RangeBusy(std::uint64_t first, std::uint64_t last) const SR_REQUIRES(mu_);
  Status StartEpochOnce() SR_EXCLUDES(mu_);
  std::optional<WrittenBlock> Find(std::uint64_t index) const SR_REQUIRES(mu_);
  // Decrypts block `index` into `out` (kUpperBlockSize bytes; zero beyond its length, all zero
  // for a hole).
  Status OpenBlock(std::uint64_t index, const std::optional<WrittenBlock>& block,
                   std::span<std::uint8_t> out) const;
  // Block `index` with `bytes` put at `at`, into `out`; returns its new length.
  Result<std::size_t> PatchBlock(std::uint64_t index, std::size_t at, std::span<const std::uint8_t> bytes,
                                 std::span<std::uint8_t> out) const SR_EXCLUDES(mu_);
  // Nonces for `count` blocks from `first` on: the only place one is taken.
  Result<SealedBlocks> TakeNonces(std::uint64_t first, std::size_t count) SR_EXCLUDES(mu_);
  // Seals the `k`th block of `sealed` (`plain`: at most a block).
  Status SealBlock(SealedBlocks& sealed, std::size_t k, std::span<const std::uint8_t> plain) const;
  // Writes sealed blocks to their slots (a block keeps its slot; a new one takes a free slot).
  Status WriteBlocks(SealedBlocks& sealed) SR_EXCLUDES(mu_);
  // Enters blocks that are on the host into the table; true when the host's writeback is due.
  bool CommitBlocks(const SealedBlocks& sealed) SR_REQUIRES(mu_);
  void StartWriteback() const;
  // Takes the blocks from `index` on out of the table; returns their slots, to be freed.
  std::vector<std::uint64_t> DetachBlocks(std::uint64_t index) SR_REQUIRES(mu_);
  std::uint64_t AllocateSlot() SR_REQUIRES(mu_);
  // Gives back slots that no table entry names and no other call uses.
  void FreeSlots(std::span<const std::uint64_t> slots) SR_EXCLUDES(mu_);
  void UpdateAllocated() SR_REQUIRES(mu_);

  const std::shared_ptr<const StoreKey> key_;
  Env& env_;
  const UniqueFd host_;
  const std::uint64_t id_;
  const std::string name_;
  mutable Mutex mu_;
  // The block ranges held (first -> last; disjoint), and a wakeup for calls waiting for one.
  mutable std::map<std::uint64_t, std::uint64_t> busy_ranges_ SR_GUARDED_BY(mu_);
  mutable std::condition_variable_any range_released_;
  std::vector<Hash32> epoch_salts_ SR_GUARDED_BY(mu_);
  std::deque<SecretBytes> epoch_keys_ SR_GUARDED_BY(mu_);  // a deque: elements never move
  std::map<std::uint64_t, UpperBlock> blocks_ SR_GUARDED_BY(mu_);
  std::set<std::uint64_t> free_slots_ SR_GUARDED_BY(mu_);  // below next_slot_, reused lowest first
  std::uint64_t next_slot_ SR_GUARDED_BY(mu_) = 0;         // slots in use or taken are below this
  bool epoch_started_ SR_GUARDED_BY(mu_) = false;
  std::uint64_t counter_ SR_GUARDED_BY(mu_) = 0;  // the last nonce counter taken in this epoch
  // Since the last TakeFull/TakeChange: blocks sealed, the lowest index dropped.
  bool persisted_ SR_GUARDED_BY(mu_) = false;
  std::set<std::uint64_t> changed_blocks_ SR_GUARDED_BY(mu_);
  std::uint64_t dropped_from_ SR_GUARDED_BY(mu_) = kNoDrop;
  std::uint64_t unstarted_bytes_ SR_GUARDED_BY(mu_) = 0;  // written since the host's writeback was started
  std::atomic<std::uint64_t> size_{0};                    // changed under mu_ only
  std::atomic<std::uint64_t> allocated_{0};               // changed under mu_ only
};

// The key of one (file, epoch): HKDF of the store key with a salt that no lower object can have.
Result<SecretBytes> UpperKey(const StoreKey& key, std::string_view purpose, const Hash32& salt);

}  // namespace sealroot::fusefs
