// The sealfs object format (design/sealfs.md "Objects"): a 64-byte header, then chunks of up to
// 64 KiB plaintext (padded to 4 KiB), each AES-256-GCM under the object's own key with the
// chunk index as nonce and the header's first 48 bytes as AAD. name = SHA-256(header ||
// SHA-256(tag_0 || ... || tag_n-1)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "fusefs/store.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

inline constexpr std::size_t kChunkSize = 64 * 1024;
inline constexpr std::size_t kPadding = 4096;
inline constexpr std::size_t kHeaderSize = 64;
inline constexpr std::size_t kAadSize = 48;
inline constexpr std::size_t kTagSize = 16;

// Where chunk `index` of an object starts in the stored file, and its stored plaintext length.
inline std::uint64_t ChunkOffset(std::uint64_t index) {
  return kHeaderSize + index * (kChunkSize + kTagSize);
}
std::size_t StoredChunkLength(std::uint64_t object_size, std::uint64_t index);
std::uint64_t ChunkCount(std::uint64_t object_size);

// AES-256-GCM for one object at a time. Not thread-safe; cheap to create.
class ChunkCipher {
 public:
  ChunkCipher();
  // Sets the object's key (derived from its salt) and header.
  Status Reset(const StoreKey& key, std::span<const std::uint8_t> header);
  // The same with the object's key already derived (ObjectKeyOf), for repeated reads.
  Status Reset(std::span<const std::uint8_t> object_key, std::span<const std::uint8_t> header);
  Status Seal(std::uint64_t index, std::span<const std::uint8_t> plain, std::span<std::uint8_t> out,
              std::span<std::uint8_t, kTagSize> tag);
  // Fails with "authentication failed" (kDataLoss) and wipes `out`.
  Status Open(std::uint64_t index, std::span<const std::uint8_t> cipher, std::span<const std::uint8_t> tag,
              std::span<std::uint8_t> out);

 private:
  EvpCipherCtxPtr ctx_;
  std::array<std::uint8_t, kAadSize> aad_{};
};

// Writes objects one after another into the store, reusing its buffers (bounded memory: about
// 2 MiB). Begin, then Write or Space/Advance, then Finish (publishes) or Abandon. An object that
// fits the buffer (1 MiB) is written once, at its name; a larger one goes through a staged file.
// Not thread-safe: one per writer thread.
class ObjectWriter {
 public:
  ObjectWriter(const Store& store, const StoreKey& key);
  Status Begin(ObjectKind kind);
  Status Write(std::span<const std::uint8_t> data);
  // Free space in the plaintext buffer, to read into directly; then Advance(n).
  std::span<std::uint8_t> Space();
  Status Advance(std::size_t n);
  Result<ObjectRef> Finish();
  void Abandon();
  bool active() const { return tags_.has_value(); }

 private:
  // Seals the buffered plaintext into out_, after the room kept there for the header.
  Status SealBuffered(bool final);
  // Writes the sealed bytes in out_ to the staged file (made on first use).
  Status Flush();

  const Store& store_;
  const StoreKey& key_;
  ChunkCipher cipher_;
  std::optional<StagedFile> staged_;  // only for an object larger than the buffer
  std::array<std::uint8_t, kHeaderSize> header_{};
  std::vector<std::uint8_t> plain_;
  std::size_t plain_used_ = 0;
  std::vector<std::uint8_t> out_;  // the header's room, then sealed chunks
  std::size_t sealed_ = 0;         // sealed bytes in out_ after the header's room
  std::uint64_t size_ = 0;
  std::uint64_t written_ = 0;  // bytes of the staged file so far (the header's place first)
  std::uint64_t chunks_ = 0;
  std::optional<Sha256> tags_;  // set from Begin to Finish or Abandon
};

// Reads a whole object and checks everything: header, kind, salt and size against the ref,
// every chunk's tag, and the name. For metadata objects (directories, indexes, roots).
Result<std::vector<std::uint8_t>> ReadWholeObject(const Store& store, const StoreKey& key,
                                                  const ObjectRef& ref, ObjectKind kind);
// The image root: salt and size come from its header, authenticated by its name (the root hash).
Result<std::vector<std::uint8_t>> ReadRootObject(const Store& store, const StoreKey& key,
                                                 const RootHash& root);

// Random-access reads of an object (a file's data, or a layer index read back); verifies only
// the chunks it touches. The object's key is derived once, when it is opened (an open file),
// not per read. Thread-safe (each call uses its own thread's cipher context).
class DataObject {
 public:
  static Result<DataObject> Open(const Store& store, const StoreKey& key, const ObjectRef& ref,
                                 ObjectKind kind = ObjectKind::kData);
  // Reads plaintext [offset, offset + out.size()) (clamped to the size); returns the count.
  Result<std::size_t> ReadAt(std::uint64_t offset, std::span<std::uint8_t> out) const;
  const ObjectRef& ref() const { return ref_; }

 private:
  DataObject(UniqueFd fd, SecretBytes key, ObjectRef ref, std::array<std::uint8_t, kHeaderSize> header)
      : fd_(std::move(fd)), key_(std::move(key)), ref_(ref), header_(header) {}
  UniqueFd fd_;
  SecretBytes key_;  // the object's own key
  ObjectRef ref_;
  std::array<std::uint8_t, kHeaderSize> header_;
};

// Streams a whole object's plaintext to `consume`, chunk by chunk (at most kChunkSize bytes held),
// checking what ReadWholeObject checks: every chunk's tag before its bytes are passed on, then the
// size, no trailing bytes and the name. For metadata too large to hold at once (a layer index):
// a consumer acts on what it was given only once this returns OK.
Status StreamObject(const Store& store, const StoreKey& key, const ObjectRef& ref, ObjectKind kind,
                    const std::function<Status(std::span<const std::uint8_t>)>& consume);
// Streams through a whole object (fsck): every tag, the name, the size, no trailing bytes.
Status VerifyObject(const Store& store, const StoreKey& key, const ObjectRef& ref, ObjectKind kind);

}  // namespace sealroot::fusefs
