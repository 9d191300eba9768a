#include "fusefs/src/upper_file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>

#include "base/crypto.h"
#include "fusefs/filesystem.h"

namespace sealroot::fusefs {
namespace {

constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kAadSize = 20;
// Host slots per file: 256 TiB of written ciphertext (the table's bound, not the file size's).
constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << 32;
// The block range of a truncate: to the end of any file.
constexpr std::uint64_t kLastBlock = ~std::uint64_t{0};
// Bytes written to a host file before its writeback is started (below).
constexpr std::uint64_t kWritebackBatch = 8u << 20;

std::array<std::uint8_t, kNonceSize> Nonce(std::uint32_t epoch, std::uint64_t counter) {
  std::array<std::uint8_t, kNonceSize> n{};
  for (int i = 0; i < 4; ++i) n[i] = static_cast<std::uint8_t>(epoch >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(counter >> (56 - 8 * i));
  return n;
}

// Binds a block to its file and position (and length); the counter is in the nonce.
std::array<std::uint8_t, kAadSize> Aad(std::uint64_t file, std::uint64_t index, std::uint32_t len) {
  std::array<std::uint8_t, kAadSize> a{};
  for (int i = 0; i < 8; ++i) a[i] = static_cast<std::uint8_t>(file >> (8 * i));
  for (int i = 0; i < 8; ++i) a[8 + i] = static_cast<std::uint8_t>(index >> (8 * i));
  for (int i = 0; i < 4; ++i) a[16 + i] = static_cast<std::uint8_t>(len >> (8 * i));
  return a;
}

// One cipher context per thread, re-keyed per block (the key schedule is cheap next to 64 KiB).
EVP_CIPHER_CTX* ThreadCipher() {
  thread_local EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  return ctx.get();
}

// This thread's buffer for the ciphertext of `blocks` blocks, kept for its next request. It
// starts large enough for a 1 MiB request that does not start on a block edge (17 blocks), and
// is never zeroed or copied: every byte of it is sealed over.
std::span<std::uint8_t> ThreadCipherBuffer(std::size_t blocks) {
  thread_local std::unique_ptr<std::uint8_t[]> buffer;
  thread_local std::size_t capacity = 0;
  if (capacity < blocks) {
    capacity = std::max<std::size_t>(blocks, 17);
    buffer = std::make_unique_for_overwrite<std::uint8_t[]>(capacity * kUpperBlockSize);
  }
  return {buffer.get(), blocks * kUpperBlockSize};
}

}  // namespace

Result<SecretBytes> UpperKey(const StoreKey& key, std::string_view purpose, const Hash32& salt) {
  Sha256 h;
  h.Update(purpose);
  h.Update(salt);
  Hash32 derived = h.Finish();
  return key.ObjectKey(derived);
}

UpperFile::UpperFile(std::shared_ptr<const StoreKey> key, Env& env, UniqueFd host, UpperFileState state,
                     std::string name)
    : key_(std::move(key)), env_(env), host_(std::move(host)), id_(state.id), name_(std::move(name)) {
  MutexLock lock(mu_);
  epoch_salts_ = std::move(state.epoch_salts);
  blocks_ = std::move(state.blocks);
  size_.store(state.size, std::memory_order_release);
  // Slots not in the table (left by truncation) are free; the host file ends at the last in use.
  std::set<std::uint64_t> used;
  for (const auto& [index, b] : blocks_) used.insert(b.slot);
  next_slot_ = used.empty() ? 0 : *used.rbegin() + 1;
  for (std::uint64_t slot = 0; slot < next_slot_; ++slot) {
    if (!used.contains(slot)) free_slots_.insert(slot);
  }
  UpdateAllocated();
}

Result<std::unique_ptr<UpperFile>> UpperFile::Open(std::shared_ptr<const StoreKey> key, Env& env,
                                                   UniqueFd host, UpperFileState state, std::string name,
                                                   bool persisted) {
  const std::uint64_t max_blocks = state.size / kUpperBlockSize + (state.size % kUpperBlockSize != 0);
  std::set<std::uint64_t> slots;
  for (const auto& [index, b] : state.blocks) {
    if (index >= max_blocks) return DataLoss(name + ": block table longer than the file");
    if (b.len == 0 || b.len > kUpperBlockSize || b.epoch >= state.epoch_salts.size() || b.slot >= kMaxSlots ||
        !slots.insert(b.slot).second)
      return DataLoss(name + ": malformed block table");
  }
  auto file =
      std::unique_ptr<UpperFile>(new UpperFile(std::move(key), env, std::move(host), std::move(state), name));
  MutexLock lock(file->mu_);
  file->persisted_ = persisted;
  for (const Hash32& salt : file->epoch_salts_) {
    SR_ASSIGN_OR_RETURN(SecretBytes k, UpperKey(*file->key_, "sealfs v1 upper block key", salt));
    file->epoch_keys_.push_back(std::move(k));
  }
  return file;
}

UpperFile::BlockRange::BlockRange(const UpperFile& file, std::uint64_t first, std::uint64_t last)
    : file_(file), first_(first) {
  MutexLock lock(file_.mu_);
  while (file_.RangeBusy(first, last)) file_.range_released_.wait(file_.mu_);
  file_.busy_ranges_.emplace(first, last);
}

UpperFile::BlockRange::~BlockRange() {
  {
    MutexLock lock(file_.mu_);
    file_.busy_ranges_.erase(first_);
  }
  file_.range_released_.notify_all();
}

bool UpperFile::RangeBusy(std::uint64_t first, std::uint64_t last) const {
  // The ranges held are disjoint: if any reaches into [first, last], the last one starting at
  // or before `last` does.
  auto after = busy_ranges_.upper_bound(last);
  return after != busy_ranges_.begin() && std::prev(after)->second >= first;
}

// The first write of each mount starts an epoch: a fresh salt, so a fresh key, and the counter
// from zero. The key is derived outside mu_; of two writes racing here, the first to install one
// wins.
Status UpperFile::StartEpochOnce() {
  {
    MutexLock lock(mu_);
    if (epoch_started_) return OkStatus();
  }
  Hash32 salt;
  RandomBytes(salt);
  SR_ASSIGN_OR_RETURN(SecretBytes epoch_key, UpperKey(*key_, "sealfs v1 upper block key", salt));
  MutexLock lock(mu_);
  if (epoch_started_) return OkStatus();
  epoch_salts_.push_back(salt);
  epoch_keys_.push_back(std::move(epoch_key));
  epoch_started_ = true;
  counter_ = 0;
  return OkStatus();
}

std::optional<UpperFile::WrittenBlock> UpperFile::Find(std::uint64_t index) const {
  auto found = blocks_.find(index);
  if (found == blocks_.end()) return std::nullopt;
  return WrittenBlock{found->second, &epoch_keys_[found->second.epoch]};
}

std::uint64_t UpperFile::AllocateSlot() {
  if (free_slots_.empty()) return next_slot_++;
  const std::uint64_t slot = *free_slots_.begin();
  free_slots_.erase(free_slots_.begin());
  return slot;
}

// The slots' bytes go back to the host filesystem: those that stay below the host file's end
// are punched out (best effort: the slots' bytes mean nothing either way) while they are still
// this call's — once free, a write may take one at once — and the host file is cut after the
// last slot still in use or taken.
void UpperFile::FreeSlots(std::span<const std::uint64_t> slots) {
  if (slots.empty()) return;
  std::vector<std::uint64_t> sorted(slots.begin(), slots.end());
  std::sort(sorted.begin(), sorted.end());
  auto freed = [&](std::uint64_t slot) SR_REQUIRES(mu_) {
    return free_slots_.contains(slot) || std::binary_search(sorted.begin(), sorted.end(), slot);
  };
  std::uint64_t end = 0;
  {
    MutexLock lock(mu_);
    end = next_slot_;
    while (end > 0 && freed(end - 1)) --end;
  }
  for (std::uint64_t slot : sorted) {
    if (slot >= end) break;
    (void)fallocate(host_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(slot * kUpperBlockSize), kUpperBlockSize);
  }
  MutexLock lock(mu_);
  free_slots_.insert(sorted.begin(), sorted.end());
  const std::uint64_t old_end = next_slot_;
  while (next_slot_ > 0 && free_slots_.contains(next_slot_ - 1)) free_slots_.erase(--next_slot_);
  // Under mu_: a slot taken past the new end once mu_ is released would be cut off.
  if (next_slot_ < old_end) (void)ftruncate(host_.get(), static_cast<off_t>(next_slot_ * kUpperBlockSize));
}

std::vector<std::uint64_t> UpperFile::DetachBlocks(std::uint64_t index) {
  dropped_from_ = std::min(dropped_from_, index);
  changed_blocks_.erase(changed_blocks_.lower_bound(index), changed_blocks_.end());
  std::vector<std::uint64_t> slots;
  for (auto it = blocks_.lower_bound(index); it != blocks_.end(); it = blocks_.erase(it))
    slots.push_back(it->second.slot);
  return slots;
}

// What stat reports: the host bytes of the written blocks, but no more than the size rounded to
// a page (so a small file does not look larger than it is, and a file without holes is not sparse).
void UpperFile::UpdateAllocated() {
  const std::uint64_t size = size_.load(std::memory_order_relaxed);
  const std::uint64_t written = blocks_.size() * kUpperBlockSize;
  allocated_.store(std::min(written, (size + 4095) / 4096 * 4096), std::memory_order_release);
}

Status UpperFile::OpenBlock(std::uint64_t index, const std::optional<WrittenBlock>& block,
                            std::span<std::uint8_t> out) const {
  std::fill(out.begin(), out.end(), 0);
  if (!block) return OkStatus();
  const UpperBlock& b = block->entry;
  thread_local std::vector<std::uint8_t> cipher(kUpperBlockSize);
  std::size_t got = 0;
  while (got < b.len) {
    ssize_t n = pread(host_.get(), cipher.data() + got, b.len - got,
                      static_cast<off_t>(b.slot * kUpperBlockSize + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(name_ + ": reading block " + std::to_string(index), errno);
    if (n == 0)
      return DataLoss(name_ + ": block " + std::to_string(index) + " is missing from the host file");
    got += static_cast<std::size_t>(n);
  }
  EVP_CIPHER_CTX* ctx = ThreadCipher();
  auto nonce = Nonce(b.epoch, b.counter);
  auto aad = Aad(id_, index, b.len);
  int len = 0;
  bool ok =
      EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, block->key->data(), nonce.data()) == 1 &&
      EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), kAadSize) == 1 &&
      EVP_DecryptUpdate(ctx, out.data(), &len, cipher.data(), static_cast<int>(b.len)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, const_cast<std::uint8_t*>(b.tag.data())) == 1 &&
      EVP_DecryptFinal_ex(ctx, out.data() + len, &len) == 1;
  if (!ok) {
    std::fill(out.begin(), out.end(), 0);
    return DataLoss(name_ + ": block " + std::to_string(index) + ": authentication failed");
  }
  return OkStatus();
}

// The patched block's length covers the old and the new bytes.
Result<std::size_t> UpperFile::PatchBlock(std::uint64_t index, std::size_t at,
                                          std::span<const std::uint8_t> bytes,
                                          std::span<std::uint8_t> out) const {
  std::optional<WrittenBlock> old;
  {
    MutexLock lock(mu_);
    old = Find(index);
  }
  SR_RETURN_IF_ERROR(OpenBlock(index, old, out));
  std::memcpy(out.data() + at, bytes.data(), bytes.size());
  return std::max<std::size_t>(old ? old->entry.len : 0, at + bytes.size());
}

Result<UpperFile::SealedBlocks> UpperFile::TakeNonces(std::uint64_t first, std::size_t count) {
  SR_RETURN_IF_ERROR(StartEpochOnce());
  SealedBlocks sealed{.first = first,
                      .blocks = std::vector<UpperBlock>(count),
                      .key = nullptr,
                      .cipher = ThreadCipherBuffer(count),
                      .new_slots = {}};
  MutexLock lock(mu_);
  sealed.key = &epoch_keys_.back();
  for (UpperBlock& b : sealed.blocks) {
    b.epoch = static_cast<std::uint32_t>(epoch_keys_.size() - 1);
    // Each (epoch, counter) is taken here once and never given back, so none repeats, whether
    // the write succeeds or not.
    b.counter = ++counter_;
  }
  return sealed;
}

// A short block is padded with random bytes to the full slot, so the host file's length and
// contents show the file's size only to the block (random padding looks like ciphertext; zeros
// would mark where the ciphertext ends).
Status UpperFile::SealBlock(SealedBlocks& sealed, std::size_t k, std::span<const std::uint8_t> plain) const {
  UpperBlock& b = sealed.blocks[k];
  b.len = static_cast<std::uint32_t>(plain.size());
  std::uint8_t* out = sealed.cipher.data() + k * kUpperBlockSize;
  auto nonce = Nonce(b.epoch, b.counter);
  auto aad = Aad(id_, sealed.first + k, b.len);
  EVP_CIPHER_CTX* ctx = ThreadCipher();
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, sealed.key->data(), nonce.data()) == 1 &&
            EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), kAadSize) == 1 &&
            EVP_EncryptUpdate(ctx, out, &len, plain.data(), static_cast<int>(b.len)) == 1 &&
            EVP_EncryptFinal_ex(ctx, out + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, b.tag.data()) == 1;
  if (!ok) return OpensslStatus(name_ + ": sealing block " + std::to_string(sealed.first + k));
  RandomBytes({out + b.len, kUpperBlockSize - b.len});
  return OkStatus();
}

// One pwrite per run of consecutive slots: a new block takes the lowest free slot or the next at
// the end, so sequential writes stay one pwrite. A failure gives the new slots back.
Status UpperFile::WriteBlocks(SealedBlocks& sealed) {
  bool too_many_slots = false;
  {
    MutexLock lock(mu_);
    for (std::size_t k = 0; k < sealed.blocks.size(); ++k) {
      UpperBlock& b = sealed.blocks[k];
      if (auto existing = blocks_.find(sealed.first + k); existing != blocks_.end()) {
        b.slot = existing->second.slot;
      } else {
        b.slot = AllocateSlot();
        sealed.new_slots.push_back(b.slot);
      }
    }
    too_many_slots = next_slot_ > kMaxSlots;
  }
  ScopeGuard give_back([&] { FreeSlots(sealed.new_slots); });
  if (too_many_slots) return Status::FromErrno(EFBIG, name_ + ": too many written blocks");
  for (std::size_t k = 0; k < sealed.blocks.size();) {
    std::size_t run = 1;
    while (k + run < sealed.blocks.size() && sealed.blocks[k + run].slot == sealed.blocks[k].slot + run)
      ++run;
    SR_RETURN_IF_ERROR_CTX(
        PwriteAll(env_, host_.get(), sealed.cipher.subspan(k * kUpperBlockSize, run * kUpperBlockSize),
                  sealed.blocks[k].slot * kUpperBlockSize),
        name_);
    k += run;
  }
  give_back.Dismiss();
  return OkStatus();
}

bool UpperFile::CommitBlocks(const SealedBlocks& sealed) {
  for (std::size_t k = 0; k < sealed.blocks.size(); ++k) {
    blocks_[sealed.first + k] = sealed.blocks[k];
    changed_blocks_.insert(sealed.first + k);
  }
  unstarted_bytes_ += sealed.blocks.size() * kUpperBlockSize;
  if (unstarted_bytes_ < kWritebackBatch) return false;
  unstarted_bytes_ = 0;
  return true;
}

// Starts the host's writeback of what is written so far, without waiting for it: the disk then
// writes while the next blocks are sealed, and an fsync waits for the rest only, instead of for
// every byte since the last one. Only a hint: a failure shows in the fsync.
void UpperFile::StartWriteback() const {
  (void)sync_file_range(host_.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
}

Result<std::size_t> UpperFile::Read(std::uint64_t offset, std::span<std::uint8_t> out) const {
  const std::uint64_t size_before = size();
  if (offset >= size_before || out.empty()) return std::size_t{0};
  std::uint64_t end = offset + std::min<std::uint64_t>(out.size(), size_before - offset);
  const std::uint64_t first = offset / kUpperBlockSize;
  BlockRange range(*this, first, (end - 1) / kUpperBlockSize);
  // A truncate may have cut the file while this call waited for its blocks.
  end = std::min(end, size());
  if (offset >= end) return std::size_t{0};
  std::vector<std::optional<WrittenBlock>> blocks((end - 1) / kUpperBlockSize - first + 1);
  {
    MutexLock lock(mu_);
    for (std::size_t k = 0; k < blocks.size(); ++k) blocks[k] = Find(first + k);
  }
  thread_local std::vector<std::uint8_t> plain(kUpperBlockSize);
  for (std::uint64_t pos = offset; pos < end;) {
    const std::uint64_t index = pos / kUpperBlockSize;
    const std::size_t in_block = pos % kUpperBlockSize;
    const std::size_t n = std::min<std::uint64_t>(end - pos, kUpperBlockSize - in_block);
    if (const auto& block = blocks[index - first]; !block) {
      std::memset(out.data() + (pos - offset), 0, n);
    } else {
      SR_RETURN_IF_ERROR(OpenBlock(index, block, plain));
      std::memcpy(out.data() + (pos - offset), plain.data() + in_block, n);
    }
    pos += n;
  }
  return static_cast<std::size_t>(end - offset);
}

Result<std::size_t> UpperFile::Write(std::uint64_t offset, std::span<const std::uint8_t> data) {
  if (data.empty()) return std::size_t{0};  // changes nothing, not even the size
  const std::uint64_t end = offset + data.size();
  const std::uint64_t first = offset / kUpperBlockSize, last = (end - 1) / kUpperBlockSize;
  // The new bytes of block `index`, and where they go in it.
  auto bytes_of = [&](std::uint64_t index) {
    const std::uint64_t from = std::max(offset, index * kUpperBlockSize);
    const std::uint64_t to = std::min(end, (index + 1) * kUpperBlockSize);
    return std::pair{data.subspan(from - offset, to - from),
                     static_cast<std::size_t>(from % kUpperBlockSize)};
  };
  SR_ASSIGN_OR_RETURN(SealedBlocks sealed, TakeNonces(first, last - first + 1));
  // A whole block's ciphertext depends on its new bytes, index and nonce only, not on what the
  // file holds: whole blocks are sealed before the range is taken. Requests that share a partial
  // block at their edges (writeback does not always send aligned ones) then wait only for each
  // other's patch and pwrite.
  for (std::uint64_t index = first; index <= last; ++index) {
    if (auto [bytes, at] = bytes_of(index); bytes.size() == kUpperBlockSize)
      SR_RETURN_IF_ERROR(SealBlock(sealed, index - first, bytes));
  }
  bool writeback_due = false;
  {
    BlockRange range(*this, first, last);
    // A partial block (the first, the last) is read, modified and sealed again.
    thread_local std::vector<std::uint8_t> patched(kUpperBlockSize);
    for (std::uint64_t index : {first, last}) {
      if (auto [bytes, at] = bytes_of(index); bytes.size() < kUpperBlockSize) {
        SR_ASSIGN_OR_RETURN(std::size_t len, PatchBlock(index, at, bytes, patched));
        SR_RETURN_IF_ERROR(SealBlock(sealed, index - first, {patched.data(), len}));
      }
      if (last == first) break;
    }
    SR_RETURN_IF_ERROR(WriteBlocks(sealed));
    MutexLock lock(mu_);
    writeback_due = CommitBlocks(sealed);
    if (end > size_.load(std::memory_order_relaxed)) size_.store(end, std::memory_order_release);
    UpdateAllocated();
  }
  if (writeback_due) StartWriteback();
  return data.size();
}

Status UpperFile::Truncate(std::uint64_t size) {
  // From the block that holds the new end: it may be sealed again shorter, those after it go.
  BlockRange range(*this, size / kUpperBlockSize, kLastBlock);
  const std::uint64_t keep = size / kUpperBlockSize + (size % kUpperBlockSize != 0);
  // The last kept block must not carry bytes past the new end: growing again must show zeros.
  const std::size_t tail = size % kUpperBlockSize;
  std::optional<SealedBlocks> shortened;
  if (tail != 0) {
    std::optional<WrittenBlock> last;
    {
      MutexLock lock(mu_);
      last = Find(keep - 1);
    }
    if (last && last->entry.len > tail) {
      thread_local std::vector<std::uint8_t> plain(kUpperBlockSize);
      SR_RETURN_IF_ERROR(OpenBlock(keep - 1, last, plain));
      SR_ASSIGN_OR_RETURN(shortened, TakeNonces(keep - 1, 1));
      SR_RETURN_IF_ERROR(SealBlock(*shortened, 0, {plain.data(), tail}));
      SR_RETURN_IF_ERROR(WriteBlocks(*shortened));
    }
  }
  std::vector<std::uint64_t> dropped;
  bool writeback_due = false;
  {
    MutexLock lock(mu_);
    if (shortened) writeback_due = CommitBlocks(*shortened);
    dropped = DetachBlocks(keep);
    size_.store(size, std::memory_order_release);
    UpdateAllocated();
  }
  // Growing writes nothing (the new range is a hole); shrinking returns the dropped blocks'
  // space to the host, and the host file stays a whole number of slots.
  FreeSlots(dropped);
  if (writeback_due) StartWriteback();
  return OkStatus();
}

Status UpperFile::Sync() const {
  return env_.Fsync(host_.get()).WithContext(name_ + ": syncing the host file");
}

UpperFileState UpperFile::TakeFull() {
  MutexLock lock(mu_);
  persisted_ = true;
  changed_blocks_.clear();
  dropped_from_ = kNoDrop;
  return UpperFileState{id_, size_.load(std::memory_order_relaxed), epoch_salts_, 0, blocks_};
}

UpperFileState UpperFile::TakeChange() {
  MutexLock lock(mu_);
  if (!persisted_) {
    persisted_ = true;
    changed_blocks_.clear();
    dropped_from_ = kNoDrop;
    return UpperFileState{id_, size_.load(std::memory_order_relaxed), epoch_salts_, 0, blocks_};
  }
  UpperFileState change{id_, size_.load(std::memory_order_relaxed), epoch_salts_, dropped_from_, {}};
  for (std::uint64_t index : changed_blocks_) {
    if (auto it = blocks_.find(index); it != blocks_.end())
      change.blocks.emplace_hint(change.blocks.end(), *it);
  }
  changed_blocks_.clear();
  dropped_from_ = kNoDrop;
  return change;
}

}  // namespace sealroot::fusefs
