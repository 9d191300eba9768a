#include "fusefs/src/upper_file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/crypto.h"
#include "fusefs/filesystem.h"

namespace sealroot::fusefs {
namespace {

constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kAadSize = 20;
// Host slots per file: 256 TiB of written ciphertext (the table's bound, not the file size's).
constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << 32;
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

Status UpperFile::StartEpoch() {
  Hash32 salt;
  RandomBytes(salt);
  SR_ASSIGN_OR_RETURN(SecretBytes k, UpperKey(*key_, "sealfs v1 upper block key", salt));
  epoch_salts_.push_back(salt);
  epoch_keys_.push_back(std::move(k));
  epoch_started_ = true;
  counter_ = 0;
  return OkStatus();
}

std::uint64_t UpperFile::AllocateSlot() {
  if (free_slots_.empty()) return next_slot_++;
  const std::uint64_t slot = *free_slots_.begin();
  free_slots_.erase(free_slots_.begin());
  return slot;
}

// A freed slot's bytes go back to the host filesystem: below the end as a punched hole (best
// effort: the slot's bytes mean nothing either way), at the end by shrinking the file.
void UpperFile::FreeSlot(std::uint64_t slot) {
  free_slots_.insert(slot);
  while (next_slot_ > 0 && free_slots_.contains(next_slot_ - 1)) free_slots_.erase(--next_slot_);
  if (slot < next_slot_) {
    (void)fallocate(host_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(slot * kUpperBlockSize), kUpperBlockSize);
  }
}

void UpperFile::DropBlocks(std::uint64_t index) {
  dropped_from_ = std::min(dropped_from_, index);
  changed_blocks_.erase(changed_blocks_.lower_bound(index), changed_blocks_.end());
  for (auto it = blocks_.lower_bound(index); it != blocks_.end(); it = blocks_.erase(it))
    FreeSlot(it->second.slot);
  UpdateAllocated();
}

// What stat reports: the host bytes of the written blocks, but no more than the size rounded to
// a page (so a small file does not look larger than it is, and a file without holes is not sparse).
void UpperFile::UpdateAllocated() {
  const std::uint64_t size = size_.load(std::memory_order_relaxed);
  const std::uint64_t written = blocks_.size() * kUpperBlockSize;
  allocated_.store(std::min(written, (size + 4095) / 4096 * 4096), std::memory_order_release);
}

Status UpperFile::OpenBlock(std::uint64_t index, std::span<std::uint8_t> out) const {
  std::fill(out.begin(), out.end(), 0);
  auto found = blocks_.find(index);
  if (found == blocks_.end()) return OkStatus();
  const UpperBlock& b = found->second;
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
      EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, epoch_keys_[b.epoch].data(), nonce.data()) == 1 &&
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

// Seals consecutive blocks from `index` on (all full but maybe the last) and writes them, one
// pwrite per run of consecutive slots (a block keeps its slot; new blocks take free slots, or
// the next ones at the end, so sequential writes stay one pwrite); the table changes only once
// the bytes are written. A short last block is padded
// with random bytes to the full block on the host, so the host file's length and contents show
// the file's size only to the block (random padding looks like ciphertext; zeros would mark
// where the ciphertext ends).
Status UpperFile::SealBlocks(std::uint64_t index, std::span<const std::uint8_t> plain) {
  if (!epoch_started_) SR_RETURN_IF_ERROR(StartEpoch());
  const std::size_t count = (plain.size() + kUpperBlockSize - 1) / kUpperBlockSize;
  const std::size_t padded = count * kUpperBlockSize;
  thread_local std::vector<std::uint8_t> cipher;
  if (cipher.size() < padded) cipher.resize(padded);
  RandomBytes({cipher.data() + plain.size(), padded - plain.size()});
  thread_local std::vector<UpperBlock> sealed;
  sealed.assign(count, UpperBlock{});
  std::vector<std::uint64_t> allocated;  // new slots, returned if the write fails
  for (std::size_t k = 0; k < count; ++k) {
    auto existing = blocks_.find(index + k);
    if (existing != blocks_.end()) {
      sealed[k].slot = existing->second.slot;
    } else {
      sealed[k].slot = AllocateSlot();
      allocated.push_back(sealed[k].slot);
    }
  }
  if (next_slot_ > kMaxSlots) {
    for (std::uint64_t slot : allocated) FreeSlot(slot);
    return Status::FromErrno(EFBIG, name_ + ": too many written blocks");
  }
  EVP_CIPHER_CTX* ctx = ThreadCipher();
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t at = k * kUpperBlockSize;
    const std::size_t n = std::min(kUpperBlockSize, plain.size() - at);
    UpperBlock& b = sealed[k];
    b.epoch = static_cast<std::uint32_t>(epoch_salts_.size() - 1);
    b.len = static_cast<std::uint32_t>(n);
    b.counter = ++counter_;
    auto nonce = Nonce(b.epoch, b.counter);
    auto aad = Aad(id_, index + k, b.len);
    int len = 0;
    bool ok =
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, epoch_keys_[b.epoch].data(), nonce.data()) == 1 &&
        EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), kAadSize) == 1 &&
        EVP_EncryptUpdate(ctx, cipher.data() + at, &len, plain.data() + at, static_cast<int>(n)) == 1 &&
        EVP_EncryptFinal_ex(ctx, cipher.data() + at + len, &len) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, b.tag.data()) == 1;
    if (!ok) {
      for (std::uint64_t slot : allocated) FreeSlot(slot);
      return OpensslStatus(name_ + ": sealing block " + std::to_string(index + k));
    }
  }
  for (std::size_t k = 0; k < count;) {
    std::size_t run = 1;
    while (k + run < count && sealed[k + run].slot == sealed[k].slot + run) ++run;
    if (Status s = PwriteAll(env_, host_.get(), {cipher.data() + k * kUpperBlockSize, run * kUpperBlockSize},
                             sealed[k].slot * kUpperBlockSize);
        !s.ok()) {
      for (std::uint64_t slot : allocated) FreeSlot(slot);
      return s.WithContext(name_);
    }
    k += run;
  }
  for (std::size_t k = 0; k < count; ++k) {
    blocks_[index + k] = sealed[k];
    changed_blocks_.insert(index + k);
  }
  // Start the host's writeback of what is written so far, without waiting for it: the disk then
  // writes while the next blocks are sealed, and an fsync waits for the rest only, instead of
  // for every byte since the last one. Only a hint: a failure shows in the fsync.
  unstarted_bytes_ += padded;
  if (unstarted_bytes_ >= kWritebackBatch) {
    (void)sync_file_range(host_.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
    unstarted_bytes_ = 0;
  }
  return OkStatus();
}

Result<std::size_t> UpperFile::Read(std::uint64_t offset, std::span<std::uint8_t> out) const {
  MutexLock lock(mu_);
  const std::uint64_t size = size_.load(std::memory_order_relaxed);
  if (offset >= size) return std::size_t{0};
  const std::size_t total = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size - offset));
  thread_local std::vector<std::uint8_t> plain(kUpperBlockSize);
  std::size_t done = 0;
  while (done < total) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / kUpperBlockSize;
    const std::size_t in_block = pos % kUpperBlockSize;
    const std::size_t n = std::min(total - done, kUpperBlockSize - in_block);
    if (!blocks_.contains(index)) {
      std::memset(out.data() + done, 0, n);
    } else {
      SR_RETURN_IF_ERROR(OpenBlock(index, plain));
      std::memcpy(out.data() + done, plain.data() + in_block, n);
    }
    done += n;
  }
  return total;
}

Result<std::size_t> UpperFile::Write(std::uint64_t offset, std::span<const std::uint8_t> data) {
  MutexLock lock(mu_);
  thread_local std::vector<std::uint8_t> plain(kUpperBlockSize);
  std::size_t done = 0;
  while (done < data.size()) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / kUpperBlockSize;
    const std::size_t in_block = pos % kUpperBlockSize;
    std::size_t n = std::min(data.size() - done, kUpperBlockSize - in_block);
    if (in_block == 0 && n == kUpperBlockSize) {
      n = (data.size() - done) / kUpperBlockSize * kUpperBlockSize;  // every full block at once
      SR_RETURN_IF_ERROR(SealBlocks(index, data.subspan(done, n)));
    } else {
      // Partial block: read-modify-write; the sealed length covers the old and the new bytes.
      SR_RETURN_IF_ERROR(OpenBlock(index, plain));
      std::memcpy(plain.data() + in_block, data.data() + done, n);
      auto old = blocks_.find(index);
      std::size_t old_len = old == blocks_.end() ? 0 : old->second.len;
      std::size_t len = std::max(old_len, in_block + n);
      SR_RETURN_IF_ERROR(SealBlocks(index, {plain.data(), len}));
    }
    done += n;
  }
  const std::uint64_t end = offset + data.size();
  if (end > size_.load(std::memory_order_relaxed)) size_.store(end, std::memory_order_release);
  UpdateAllocated();
  return data.size();
}

Status UpperFile::Truncate(std::uint64_t size) {
  MutexLock lock(mu_);
  const std::uint64_t keep = size / kUpperBlockSize + (size % kUpperBlockSize != 0);
  // The last kept block must not carry bytes past the new end: growing again must show zeros.
  const std::size_t tail = size % kUpperBlockSize;
  if (auto last = blocks_.find(keep - 1); tail != 0 && last != blocks_.end() && last->second.len > tail) {
    thread_local std::vector<std::uint8_t> plain(kUpperBlockSize);
    SR_RETURN_IF_ERROR(OpenBlock(keep - 1, plain));
    SR_RETURN_IF_ERROR(SealBlocks(keep - 1, {plain.data(), tail}));
  }
  DropBlocks(keep);
  size_.store(size, std::memory_order_release);
  UpdateAllocated();
  // Growing writes nothing (the new range is a hole). The host file holds the slots in use and
  // stays a whole number of blocks (the size shows only to the block); shrinking it returns space.
  if (ftruncate(host_.get(), static_cast<off_t>(next_slot_ * kUpperBlockSize)) != 0)
    return ErrnoStatus(name_ + ": truncating the host file", errno);
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
