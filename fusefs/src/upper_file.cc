#include "fusefs/src/upper_file.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/crypto.h"

namespace sealroot::fusefs {
namespace {

constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kAadSize = 20;

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

Status FullPwrite(int fd, std::span<const std::uint8_t> data, std::uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("writing to the upper's host file", errno);
    data = data.subspan(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return OkStatus();
}

}  // namespace

Result<SecretBytes> UpperKey(const StoreKey& key, std::string_view purpose, const Hash32& salt) {
  Sha256 h;
  h.Update(purpose);
  h.Update(salt);
  Hash32 derived = h.Finish();
  return key.ObjectKey(derived);
}

UpperFile::UpperFile(std::shared_ptr<const StoreKey> key, UniqueFd host, UpperFileState state,
                     std::string name)
    : key_(std::move(key)), host_(std::move(host)), id_(state.id), name_(std::move(name)) {
  MutexLock lock(mu_);
  epoch_salts_ = std::move(state.epoch_salts);
  blocks_ = std::move(state.blocks);
  size_.store(state.size, std::memory_order_release);
}

Result<std::unique_ptr<UpperFile>> UpperFile::Open(std::shared_ptr<const StoreKey> key, UniqueFd host,
                                                   UpperFileState state, std::string name) {
  const std::uint64_t max_blocks = (state.size + kUpperBlockSize - 1) / kUpperBlockSize;
  if (state.blocks.size() > max_blocks) return DataLoss(name + ": block table longer than the file");
  for (const UpperBlock& b : state.blocks) {
    if (b.len > kUpperBlockSize || (b.len > 0 && b.epoch >= state.epoch_salts.size()))
      return DataLoss(name + ": malformed block table");
  }
  auto file =
      std::unique_ptr<UpperFile>(new UpperFile(std::move(key), std::move(host), std::move(state), name));
  MutexLock lock(file->mu_);
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

Status UpperFile::OpenBlock(std::uint64_t index, std::span<std::uint8_t> out) const {
  std::fill(out.begin(), out.end(), 0);
  if (index >= blocks_.size() || blocks_[index].len == 0) return OkStatus();
  const UpperBlock& b = blocks_[index];
  thread_local std::vector<std::uint8_t> cipher(kUpperBlockSize);
  std::size_t got = 0;
  while (got < b.len) {
    ssize_t n = pread(host_.get(), cipher.data() + got, b.len - got,
                      static_cast<off_t>(index * kUpperBlockSize + got));
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

// Seals consecutive blocks from `index` on (all full but maybe the last) and writes them with
// one pwrite; the table changes only once the bytes are written. A short last block is padded
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
    if (!ok) return OpensslStatus(name_ + ": sealing block " + std::to_string(index + k));
  }
  SR_RETURN_IF_ERROR_CTX(FullPwrite(host_.get(), {cipher.data(), padded}, index * kUpperBlockSize), name_);
  if (index + count > blocks_.size()) blocks_.resize(index + count);
  std::copy(sealed.begin(), sealed.end(), blocks_.begin() + static_cast<std::ptrdiff_t>(index));
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
    if (index >= blocks_.size() || blocks_[index].len == 0) {
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
      std::size_t old_len = index < blocks_.size() ? blocks_[index].len : 0;
      std::size_t len = std::max(old_len, in_block + n);
      SR_RETURN_IF_ERROR(SealBlocks(index, {plain.data(), len}));
    }
    done += n;
  }
  const std::uint64_t end = offset + data.size();
  if (end > size_.load(std::memory_order_relaxed)) size_.store(end, std::memory_order_release);
  return data.size();
}

Status UpperFile::Truncate(std::uint64_t size) {
  MutexLock lock(mu_);
  const std::uint64_t keep = (size + kUpperBlockSize - 1) / kUpperBlockSize;
  if (blocks_.size() > keep) blocks_.resize(keep);
  // The last kept block must not carry bytes past the new end: growing again must show zeros.
  const std::size_t tail = size % kUpperBlockSize;
  if (tail != 0 && keep > 0 && keep - 1 < blocks_.size() && blocks_[keep - 1].len > tail) {
    thread_local std::vector<std::uint8_t> plain(kUpperBlockSize);
    SR_RETURN_IF_ERROR(OpenBlock(keep - 1, plain));
    SR_RETURN_IF_ERROR(SealBlocks(keep - 1, {plain.data(), tail}));
  }
  size_.store(size, std::memory_order_release);
  // The host file's length means nothing to readers; shrinking it only returns space, and it stays
  // a whole number of blocks (the size shows only to the block).
  if (ftruncate(host_.get(), static_cast<off_t>(keep * kUpperBlockSize)) != 0)
    return ErrnoStatus(name_ + ": truncating the host file", errno);
  return OkStatus();
}

Status UpperFile::Sync() const {
  if (fdatasync(host_.get()) != 0) return ErrnoStatus(name_ + ": syncing the host file", errno);
  return OkStatus();
}

UpperFileState UpperFile::Snapshot() const {
  MutexLock lock(mu_);
  return UpperFileState{id_, size_.load(std::memory_order_relaxed), epoch_salts_, blocks_};
}

}  // namespace sealroot::fusefs
