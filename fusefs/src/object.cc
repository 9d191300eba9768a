#include "fusefs/src/object.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "base/file.h"
#include "fusefs/src/codec.h"

namespace sealroot::fusefs {
namespace {

constexpr std::uint8_t kMagic[8] = {'S', 'F', 'O', 'B', 'J', 0, 0, 2};
constexpr std::size_t kBufferChunks = 16;  // 1 MiB of plaintext per write(2)

std::array<std::uint8_t, kHeaderSize> MakeHeader(ObjectKind kind, const Hash32& salt, std::uint64_t size) {
  std::array<std::uint8_t, kHeaderSize> h{};
  std::memcpy(h.data(), kMagic, sizeof kMagic);
  h[8] = static_cast<std::uint8_t>(kind);
  std::memcpy(h.data() + 16, salt.data(), salt.size());
  for (int i = 0; i < 8; ++i) h[48 + i] = static_cast<std::uint8_t>(size >> (8 * i));
  return h;
}

Hash32 NameOf(std::span<const std::uint8_t> header, Sha256& tags) {
  Sha256Digest t = tags.Finish();
  Sha256 name;
  name.Update(header);
  name.Update(t);
  return name.Finish();
}

std::array<std::uint8_t, 12> Nonce(std::uint64_t index) {
  std::array<std::uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(index >> (8 * (7 - i)));
  return n;
}

Status PreadExactly(int fd, std::span<std::uint8_t> out, std::uint64_t offset, std::string_view what) {
  Status read = PreadFull(fd, out, offset);
  if (read.code() == Code::kOutOfRange) return DataLoss(std::string(what) + " is truncated");
  if (!read.ok()) return std::move(read).WithContext(std::string("reading ") + std::string(what));
  return OkStatus();
}

// Checks the stored header against what the parent says the object is.
Status CheckHeader(std::span<const std::uint8_t> h, ObjectKind kind, const Hash32* salt,
                   std::uint64_t* size) {
  if (std::memcmp(h.data(), kMagic, 5) != 0) return DataLoss("not a sealfs object");
  if (std::memcmp(h.data() + 5, kMagic + 5, 3) != 0) return DataLoss("unknown object format version");
  if (h[8] != static_cast<std::uint8_t>(kind)) return DataLoss("object of the wrong kind");
  if (salt != nullptr && std::memcmp(h.data() + 16, salt->data(), 32) != 0)
    return DataLoss("object salt mismatch");
  std::uint64_t stored = 0;
  ByteReader r(h.subspan(48, 8));
  (void)r.U64(stored);
  if (*size == UINT64_MAX) {
    *size = stored;
  } else if (stored != *size) {
    return DataLoss("object size mismatch");
  }
  return OkStatus();
}

}  // namespace

std::uint64_t ChunkCount(std::uint64_t object_size) {
  return (object_size + kChunkSize - 1) / kChunkSize;
}

std::size_t StoredChunkLength(std::uint64_t object_size, std::uint64_t index) {
  const std::uint64_t len = std::min<std::uint64_t>(kChunkSize, object_size - index * kChunkSize);
  auto round_up = [](std::uint64_t n) { return (n + kPadding - 1) / kPadding * kPadding; };
  // The only chunk of a small object also makes room for the header and the tag, so that the
  // whole object fills whole 4 KiB blocks: a 2.5 KiB file takes one block, not two.
  if (object_size <= kChunkSize) {
    const std::uint64_t padded = round_up(len + kHeaderSize + kTagSize) - kHeaderSize - kTagSize;
    if (padded <= kChunkSize) return static_cast<std::size_t>(padded);
  }
  return static_cast<std::size_t>(round_up(len));
}

ChunkCipher::ChunkCipher() : ctx_(EVP_CIPHER_CTX_new()) {}

Status ChunkCipher::Reset(const StoreKey& key, std::span<const std::uint8_t> header) {
  SR_ASSIGN_OR_RETURN(SecretBytes k, key.ObjectKey(header.subspan(16, 32)));
  return Reset(k.span(), header);
}

Status ChunkCipher::Reset(std::span<const std::uint8_t> object_key, std::span<const std::uint8_t> header) {
  std::copy_n(header.begin(), kAadSize, aad_.begin());
  if (!ctx_ || object_key.size() != 32 ||
      EVP_CipherInit_ex(ctx_.get(), EVP_aes_256_gcm(), nullptr, object_key.data(), nullptr, -1) != 1) {
    return OpensslStatus("initializing AES-256-GCM");
  }
  return OkStatus();
}

Status ChunkCipher::Seal(std::uint64_t index, std::span<const std::uint8_t> plain,
                         std::span<std::uint8_t> out, std::span<std::uint8_t, kTagSize> tag) {
  auto nonce = Nonce(index);
  int len = 0;
  if (EVP_CipherInit_ex(ctx_.get(), nullptr, nullptr, nullptr, nonce.data(), 1) != 1 ||
      EVP_CipherUpdate(ctx_.get(), nullptr, &len, aad_.data(), static_cast<int>(aad_.size())) != 1 ||
      EVP_CipherUpdate(ctx_.get(), out.data(), &len, plain.data(), static_cast<int>(plain.size())) != 1 ||
      EVP_CipherFinal_ex(ctx_.get(), out.data() + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, tag.data()) != 1) {
    return OpensslStatus("encrypting a chunk");
  }
  return OkStatus();
}

Status ChunkCipher::Open(std::uint64_t index, std::span<const std::uint8_t> cipher,
                         std::span<const std::uint8_t> tag, std::span<std::uint8_t> out) {
  auto nonce = Nonce(index);
  int len = 0;
  bool ok =
      EVP_CipherInit_ex(ctx_.get(), nullptr, nullptr, nullptr, nonce.data(), 0) == 1 &&
      EVP_CipherUpdate(ctx_.get(), nullptr, &len, aad_.data(), static_cast<int>(aad_.size())) == 1 &&
      EVP_CipherUpdate(ctx_.get(), out.data(), &len, cipher.data(), static_cast<int>(cipher.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                          const_cast<std::uint8_t*>(tag.data())) == 1 &&
      EVP_CipherFinal_ex(ctx_.get(), out.data() + len, &len) == 1;
  if (!ok) {
    OpensslErrors();  // drain the queue; a failed tag is the only expected cause
    SecureWipe(out.first(cipher.size()));
    return DataLoss("authentication failed");
  }
  return OkStatus();
}

ObjectWriter::ObjectWriter(const Store& store, const StoreKey& key)
    : store_(store),
      key_(key),
      plain_(kChunkSize * kBufferChunks),
      out_(kHeaderSize + (kChunkSize + kTagSize) * kBufferChunks) {}

Status ObjectWriter::Begin(ObjectKind kind) {
  Abandon();
  Hash32 salt{};
  RandomBytes(salt);
  header_ = MakeHeader(kind, salt, 0);
  SR_RETURN_IF_ERROR(cipher_.Reset(key_, header_));
  // The header's size field is filled in by Finish; the sealed chunks follow its place.
  written_ = kHeaderSize;
  plain_used_ = 0;
  sealed_ = 0;
  size_ = 0;
  chunks_ = 0;
  tags_.emplace();
  return OkStatus();
}

std::span<std::uint8_t> ObjectWriter::Space() {
  return std::span(plain_).subspan(plain_used_);
}

Status ObjectWriter::Advance(std::size_t n) {
  plain_used_ += n;
  size_ += n;
  if (plain_used_ < plain_.size()) return OkStatus();
  SR_RETURN_IF_ERROR(SealBuffered(false));
  return Flush();
}

Status ObjectWriter::Write(std::span<const std::uint8_t> data) {
  while (!data.empty()) {
    std::span<std::uint8_t> space = Space();
    std::size_t n = std::min(space.size(), data.size());
    std::memcpy(space.data(), data.data(), n);
    data = data.subspan(n);
    SR_RETURN_IF_ERROR(Advance(n));
  }
  return OkStatus();
}

Status ObjectWriter::SealBuffered(bool final) {
  for (std::size_t off = 0; off < plain_used_; off += kChunkSize) {
    std::size_t len = std::min(kChunkSize, plain_used_ - off);
    if (len < kChunkSize && !final) break;  // cannot happen: only a full buffer is sealed early
    // A buffer sealed before Finish is full: the object has several chunks, and these full
    // ones are not padded whatever its final size.
    std::size_t padded = StoredChunkLength(size_, chunks_);
    std::memset(plain_.data() + off + len, 0, padded - len);
    std::span<std::uint8_t> out = std::span(out_).subspan(kHeaderSize + sealed_, padded + kTagSize);
    SR_RETURN_IF_ERROR(cipher_.Seal(chunks_++, std::span(plain_).subspan(off, padded), out.first(padded),
                                    out.subspan(padded).first<kTagSize>()));
    tags_->Update(out.subspan(padded));
    sealed_ += padded + kTagSize;
  }
  SecureWipe(std::span(plain_).first(plain_used_));
  plain_used_ = 0;
  return OkStatus();
}

Status ObjectWriter::Flush() {
  if (!staged_) {
    SR_ASSIGN_OR_RETURN(StagedFile f, store_.CreateStaged("object"));
    staged_.emplace(std::move(f));
  }
  SR_RETURN_IF_ERROR(
      PwriteAll(store_.env(), staged_->fd(), std::span(out_).subspan(kHeaderSize, sealed_), written_));
  written_ += sealed_;
  sealed_ = 0;
  return OkStatus();
}

Result<ObjectRef> ObjectWriter::Finish() {
  if (!tags_) return Internal("ObjectWriter::Finish without Begin");
  auto publish = [&]() -> Result<ObjectRef> {
    SR_RETURN_IF_ERROR(SealBuffered(true));
    ObjectRef ref;
    std::copy_n(header_.begin() + 16, 32, ref.salt.begin());
    ref.size = size_;
    header_ = MakeHeader(static_cast<ObjectKind>(header_[8]), ref.salt, size_);
    ref.name = NameOf(header_, *tags_);
    if (!staged_) {
      std::copy(header_.begin(), header_.end(), out_.begin());
      SR_RETURN_IF_ERROR(store_.WriteObject(ref.name, std::span(out_).first(kHeaderSize + sealed_)));
      return ref;
    }
    SR_RETURN_IF_ERROR(Flush());
    SR_RETURN_IF_ERROR(
        PwriteAll(store_.env(), staged_->fd(), header_, 0).WithContext("writing an object header"));
    SR_RETURN_IF_ERROR(store_.PublishObject(*staged_, ref.name));
    return ref;
  };
  auto ref = publish();
  Abandon();  // nothing left to remove once published
  return ref;
}

void ObjectWriter::Abandon() {
  staged_.reset();  // unlinks a staged file not published
  SecureWipe(std::span(plain_).first(plain_used_));
  plain_used_ = 0;
  sealed_ = 0;
  tags_.reset();
}

namespace {

// Decrypts an object's stored bytes (header + chunks) and checks its name.
Result<std::vector<std::uint8_t>> OpenWhole(const StoreKey& key, std::span<const std::uint8_t> stored,
                                            std::uint64_t size, const Hash32& name) {
  ChunkCipher cipher;
  auto header = stored.first(kHeaderSize);
  SR_RETURN_IF_ERROR(cipher.Reset(key, header));
  std::uint64_t chunks = ChunkCount(size);
  if (stored.size() != (chunks == 0
                            ? kHeaderSize
                            : ChunkOffset(chunks - 1) + StoredChunkLength(size, chunks - 1) + kTagSize)) {
    return DataLoss("object has the wrong length");
  }
  std::vector<std::uint8_t> plain(chunks * kChunkSize);
  Sha256 tags;
  for (std::uint64_t i = 0; i < chunks; ++i) {
    std::size_t len = StoredChunkLength(size, i);
    auto chunk = stored.subspan(ChunkOffset(i), len + kTagSize);
    tags.Update(chunk.subspan(len));
    SR_RETURN_IF_ERROR(
        cipher.Open(i, chunk.first(len), chunk.subspan(len), std::span(plain).subspan(i * kChunkSize, len)));
  }
  if (NameOf(header, tags) != name) return DataLoss("object name does not match its content");
  plain.resize(size);
  return plain;
}

Result<std::vector<std::uint8_t>> ReadStored(const Store& store, const Hash32& name, std::uint64_t max) {
  SR_ASSIGN_OR_RETURN(UniqueFd fd, store.OpenObject(name));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("stat", errno);
  auto len = static_cast<std::uint64_t>(st.st_size);
  if (len < kHeaderSize) return DataLoss("object is truncated");
  if (len > max) return DataLoss("object is larger than its parent says");
  std::vector<std::uint8_t> stored(len);
  SR_RETURN_IF_ERROR(PreadExactly(fd.get(), stored, 0, "object"));
  return stored;
}

std::uint64_t MaxStoredSize(std::uint64_t size) {
  return kHeaderSize + ChunkCount(size) * (kChunkSize + kTagSize);
}

}  // namespace

Result<std::vector<std::uint8_t>> ReadWholeObject(const Store& store, const StoreKey& key,
                                                  const ObjectRef& ref, ObjectKind kind) {
  auto run = [&]() -> Result<std::vector<std::uint8_t>> {
    SR_ASSIGN_OR_RETURN(auto stored, ReadStored(store, ref.name, MaxStoredSize(ref.size)));
    std::uint64_t size = ref.size;
    SR_RETURN_IF_ERROR(CheckHeader(std::span(stored).first(kHeaderSize), kind, &ref.salt, &size));
    return OpenWhole(key, stored, size, ref.name);
  };
  auto r = run();
  if (!r.ok()) return r.status().WithContext("object " + HashHex(ref.name));
  return r;
}

Result<std::vector<std::uint8_t>> ReadRootObject(const Store& store, const StoreKey& key,
                                                 const RootHash& root) {
  auto run = [&]() -> Result<std::vector<std::uint8_t>> {
    constexpr std::uint64_t kMaxRoot = 64u << 20;
    SR_ASSIGN_OR_RETURN(auto stored, ReadStored(store, root, kMaxRoot));
    std::uint64_t size = UINT64_MAX;
    SR_RETURN_IF_ERROR(
        CheckHeader(std::span(stored).first(kHeaderSize), ObjectKind::kImageRoot, nullptr, &size));
    if (size > kMaxRoot) return DataLoss("root object too large");
    return OpenWhole(key, stored, size, root);
  };
  auto r = run();
  if (!r.ok()) return r.status().WithContext("root object " + HashHex(root));
  return r;
}

Result<DataObject> DataObject::Open(const Store& store, const StoreKey& key, const ObjectRef& ref,
                                    ObjectKind kind) {
  SR_ASSIGN_OR_RETURN(UniqueFd fd, store.OpenObject(ref.name));
  auto header = MakeHeader(kind, ref.salt, ref.size);
  SR_ASSIGN_OR_RETURN(SecretBytes object_key, key.ObjectKey(std::span(header).subspan(16, 32)));
  return DataObject(std::move(fd), std::move(object_key), ref, header);
}

namespace {

// preadv until `iov` is filled; kDataLoss at EOF before that (a truncated object).
Status PreadvFull(int fd, std::vector<iovec>& iov, std::uint64_t offset, const std::string& what) {
  std::size_t next = 0;
  while (next < iov.size()) {
    ssize_t n =
        preadv(fd, iov.data() + next, static_cast<int>(std::min<std::size_t>(iov.size() - next, IOV_MAX)),
               static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading " + what, errno);
    if (n == 0) return DataLoss(what + " is truncated");
    offset += static_cast<std::uint64_t>(n);
    for (auto left = static_cast<std::size_t>(n); left > 0;) {
      std::size_t step = std::min(left, iov[next].iov_len);
      iov[next].iov_base = static_cast<std::uint8_t*>(iov[next].iov_base) + step;
      iov[next].iov_len -= step;
      left -= step;
      if (iov[next].iov_len == 0) ++next;
    }
    while (next < iov.size() && iov[next].iov_len == 0) ++next;
  }
  return OkStatus();
}

}  // namespace

Result<std::size_t> DataObject::ReadAt(std::uint64_t offset, std::span<std::uint8_t> out) const {
  if (offset >= ref_.size || out.empty()) return std::size_t{0};
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), ref_.size - offset));
  std::uint64_t first = offset / kChunkSize, last = (offset + want - 1) / kChunkSize;
  const std::string what = "object " + HashHex(ref_.name);
  // One preadv for every chunk the range touches. A chunk whose whole stored (padded) length
  // falls inside `out` is read straight into its place and decrypted there: one buffer instead
  // of two keeps a request's working set in the CPU's cache. The others (the ends of a range
  // that does not start or end on a chunk) go through `partial`, two chunks at most.
  thread_local std::vector<std::uint8_t> partial(2 * kChunkSize), tags;
  thread_local std::vector<iovec> iov;
  tags.resize((last - first + 1) * kTagSize);
  iov.clear();
  struct Place {
    std::uint8_t* at;
    bool direct;
  };
  auto place = [&](std::uint64_t i) -> Place {
    std::uint64_t chunk_start = i * kChunkSize;
    if (chunk_start >= offset && chunk_start - offset + StoredChunkLength(ref_.size, i) <= out.size())
      return {out.data() + (chunk_start - offset), true};
    return {partial.data() + (i == first ? 0 : kChunkSize), false};
  };
  for (std::uint64_t i = first; i <= last; ++i) {
    iov.push_back({place(i).at, StoredChunkLength(ref_.size, i)});
    iov.push_back({tags.data() + (i - first) * kTagSize, kTagSize});
  }
  SR_RETURN_IF_ERROR(PreadvFull(fd_.get(), iov, ChunkOffset(first), what));
  thread_local ChunkCipher cipher;
  SR_RETURN_IF_ERROR(cipher.Reset(key_.span(), header_));
  std::size_t done = 0;
  for (std::uint64_t i = first; i <= last; ++i) {
    std::size_t len = StoredChunkLength(ref_.size, i);
    std::uint64_t chunk_start = i * kChunkSize;
    std::size_t skip = static_cast<std::size_t>(offset + done - chunk_start);
    std::size_t take = std::min(want - done, len - skip);
    take = static_cast<std::size_t>(std::min<std::uint64_t>(take, ref_.size - chunk_start - skip));
    Place p = place(i);
    std::span<std::uint8_t> text(p.at, len);
    Status s = cipher.Open(i, text, std::span(tags).subspan((i - first) * kTagSize, kTagSize), text);
    if (!s.ok()) {
      SecureWipe(out);
      SecureWipe(partial);
      return s.WithContext(what + " chunk " + std::to_string(i));
    }
    if (!p.direct) std::memcpy(out.data() + done, p.at + skip, take);
    done += take;
  }
  return done;
}

Status StreamObject(const Store& store, const StoreKey& key, const ObjectRef& ref, ObjectKind kind,
                    const std::function<Status(std::span<const std::uint8_t>)>& consume) {
  auto run = [&]() -> Status {
    SR_ASSIGN_OR_RETURN(UniqueFd fd, store.OpenObject(ref.name));
    std::array<std::uint8_t, kHeaderSize> header{};
    SR_RETURN_IF_ERROR(PreadExactly(fd.get(), header, 0, "object header"));
    std::uint64_t size = ref.size;
    SR_RETURN_IF_ERROR(CheckHeader(header, kind, &ref.salt, &size));
    ChunkCipher cipher;
    SR_RETURN_IF_ERROR(cipher.Reset(key, header));
    std::vector<std::uint8_t> buf(kChunkSize + kTagSize), plain(kChunkSize);
    Sha256 tags;
    std::uint64_t chunks = ChunkCount(size);
    for (std::uint64_t i = 0; i < chunks; ++i) {
      std::size_t len = StoredChunkLength(size, i);
      auto chunk = std::span(buf).first(len + kTagSize);
      SR_RETURN_IF_ERROR(PreadExactly(fd.get(), chunk, ChunkOffset(i), "chunk " + std::to_string(i)));
      tags.Update(chunk.subspan(len));
      SR_RETURN_IF_ERROR_CTX(
          cipher.Open(i, chunk.first(len), chunk.subspan(len), std::span(plain).first(len)),
          "chunk " + std::to_string(i));
      // The stored chunk is padded (authenticated, not content): pass on the object's bytes only.
      const auto content =
          static_cast<std::size_t>(std::min<std::uint64_t>(kChunkSize, size - i * kChunkSize));
      SR_RETURN_IF_ERROR(consume(std::span(plain).first(content)));
    }
    struct stat st {};
    std::uint64_t expected =
        chunks == 0 ? kHeaderSize : ChunkOffset(chunks - 1) + StoredChunkLength(size, chunks - 1) + kTagSize;
    if (fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != expected) {
      return DataLoss("object has trailing bytes");
    }
    if (NameOf(header, tags) != ref.name) return DataLoss("object name does not match its content");
    return OkStatus();
  };
  return run().WithContext("object " + HashHex(ref.name));
}

Status VerifyObject(const Store& store, const StoreKey& key, const ObjectRef& ref, ObjectKind kind) {
  return StreamObject(store, key, ref, kind, [](std::span<const std::uint8_t>) { return OkStatus(); });
}

}  // namespace sealroot::fusefs
