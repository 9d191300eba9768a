#include "fusefs/src/upper_state.h"

#include <algorithm>
#include <cstring>

#include "base/crypto.h"

namespace sealroot::fusefs {
namespace {

constexpr std::string_view kMagic = "SFUPPER\2";  // 8 bytes: magic + format version 2
constexpr std::size_t kHeaderSize = 48;           // magic, salt[32], generation u64
constexpr std::size_t kTagSize = 16;
constexpr std::string_view kPurpose = "sealfs v1 upper state key";

class Encoder {
 public:
  void U8(std::uint8_t v) { out_.push_back(v); }
  void U32(std::uint32_t v) { Fixed(v, 4); }
  void U64(std::uint64_t v) { Fixed(v, 8); }
  void Time(const Timespec& t) {
    U64(static_cast<std::uint64_t>(t.sec));
    U32(t.nsec);
  }
  void Bytes(std::span<const std::uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void Str(std::string_view s) {
    U32(static_cast<std::uint32_t>(s.size()));
    Bytes(AsBytes(s));
  }
  std::vector<std::uint8_t>& out() { return out_; }

 private:
  void Fixed(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t> out_;
};

// Every read is bounds-checked; a short or inconsistent state is kDataLoss, never a crash.
class Decoder {
 public:
  explicit Decoder(std::span<const std::uint8_t> in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == in_.size(); }
  std::uint8_t U8() { return static_cast<std::uint8_t>(Fixed(1)); }
  std::uint32_t U32() { return static_cast<std::uint32_t>(Fixed(4)); }
  std::uint64_t U64() { return Fixed(8); }
  Timespec Time() {
    Timespec t;
    t.sec = static_cast<std::int64_t>(U64());
    t.nsec = U32();
    if (t.nsec >= 1000000000u) ok_ = false;
    return t;
  }
  void Bytes(std::span<std::uint8_t> out) {
    if (!Take(out.size())) return std::fill(out.begin(), out.end(), 0);
    std::memcpy(out.data(), in_.data() + pos_ - out.size(), out.size());
  }
  std::string Str() {
    std::uint32_t n = U32();
    if (!Take(n)) return {};
    return std::string(AsChars(in_.subspan(pos_ - n, n)));
  }
  // A count of items each at least `min_size` bytes: refuses counts the input cannot hold.
  std::uint64_t Count(std::size_t min_size) {
    std::uint64_t n = U64();
    if (n > (in_.size() - std::min(pos_, in_.size())) / min_size) ok_ = false;
    return ok_ ? n : 0;
  }

 private:
  bool Take(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) return ok_ = false;
    pos_ += n;
    return true;
  }
  std::uint64_t Fixed(int n) {
    if (!Take(static_cast<std::size_t>(n))) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t{in_[pos_ - n + i]} << (8 * i);
    return v;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

enum Flags : std::uint8_t { kFromLower = 1, kHasData = 2, kHasListing = 4 };

void EncodeNode(Encoder& e, const UpperNodeRecord& n) {
  e.U64(n.ino);
  e.U64(n.parent);
  e.U32(n.mode);
  e.U32(n.uid);
  e.U32(n.gid);
  e.U32(n.nlink);
  e.U64(n.rdev);
  e.Time(n.atime);
  e.Time(n.mtime);
  e.Time(n.ctime);
  e.U8(static_cast<std::uint8_t>((n.from_lower ? kFromLower : 0) | (n.data ? kHasData : 0) |
                                 (n.listing ? kHasListing : 0)));
  e.Str(n.lower_path);
  e.U64(n.lower_size);
  e.Str(n.target);
  e.U64(n.xattrs.size());
  for (const auto& [name, value] : n.xattrs) {
    e.Str(name);
    e.Str(value);
  }
  if (n.data) {
    e.U64(n.data->id);
    e.U64(n.data->size);
    e.U64(n.data->epoch_salts.size());
    for (const Hash32& s : n.data->epoch_salts) e.Bytes(s);
    e.U64(n.data->blocks.size());
    for (const UpperBlock& b : n.data->blocks) {
      e.U32(b.epoch);
      e.U32(b.len);
      e.U64(b.counter);
      e.Bytes(b.tag);
    }
  }
  if (n.listing) {
    e.U64(n.listing->size());
    for (const auto& [name, ino] : *n.listing) {
      e.Str(name);
      e.U64(ino);
    }
  }
}

UpperNodeRecord DecodeNode(Decoder& d) {
  UpperNodeRecord n;
  n.ino = d.U64();
  n.parent = d.U64();
  n.mode = d.U32();
  n.uid = d.U32();
  n.gid = d.U32();
  n.nlink = d.U32();
  n.rdev = d.U64();
  n.atime = d.Time();
  n.mtime = d.Time();
  n.ctime = d.Time();
  std::uint8_t flags = d.U8();
  n.from_lower = (flags & kFromLower) != 0;
  n.lower_path = d.Str();
  n.lower_size = d.U64();
  n.target = d.Str();
  for (std::uint64_t i = 0, count = d.Count(8); i < count; ++i) {
    std::string name = d.Str();
    n.xattrs.emplace_back(std::move(name), d.Str());
  }
  if (flags & kHasData) {
    UpperFileState& f = n.data.emplace();
    f.id = d.U64();
    f.size = d.U64();
    f.epoch_salts.resize(d.Count(32));
    for (Hash32& s : f.epoch_salts) d.Bytes(s);
    f.blocks.resize(d.Count(32));
    for (UpperBlock& b : f.blocks) {
      b.epoch = d.U32();
      b.len = d.U32();
      b.counter = d.U64();
      d.Bytes(b.tag);
    }
  }
  if (flags & kHasListing) {
    auto& listing = n.listing.emplace();
    for (std::uint64_t i = 0, count = d.Count(12); i < count; ++i) {
      std::string name = d.Str();
      listing.emplace_back(std::move(name), d.U64());
    }
  }
  return n;
}

}  // namespace

Result<std::vector<std::uint8_t>> SealUpperState(const StoreKey& key, const UpperState& state) {
  Encoder body;
  body.Bytes(state.lower_root);
  body.Str(state.owner);
  body.U64(state.generation);
  body.U64(state.next_ino);
  body.U64(state.next_file_id);
  body.U64(state.nodes.size());
  for (const UpperNodeRecord& n : state.nodes) EncodeNode(body, n);

  std::vector<std::uint8_t> file(kHeaderSize);
  std::memcpy(file.data(), kMagic.data(), kMagic.size());
  Hash32 salt;
  RandomBytes(salt);
  std::memcpy(file.data() + 8, salt.data(), salt.size());
  for (int i = 0; i < 8; ++i) file[40 + i] = static_cast<std::uint8_t>(state.generation >> (8 * i));
  // A fresh key per write (random salt), so the all-zero nonce is never reused under a key.
  SR_ASSIGN_OR_RETURN(SecretBytes k, UpperKey(key, kPurpose, salt));
  const std::array<std::uint8_t, 12> nonce{};
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> sealed,
                      AesGcmSeal(k.span(), nonce, {file.data(), kHeaderSize}, body.out()));
  file.insert(file.end(), sealed.begin(), sealed.end());
  return file;
}

Result<UpperState> OpenUpperState(const StoreKey& key, std::span<const std::uint8_t> file) {
  if (file.size() < kHeaderSize + kTagSize || AsChars(file.first(8)) != kMagic)
    return DataLoss("the upper state is not a sealfs upper state (or another format version)");
  Hash32 salt;
  std::memcpy(salt.data(), file.data() + 8, salt.size());
  SR_ASSIGN_OR_RETURN(SecretBytes k, UpperKey(key, kPurpose, salt));
  const std::array<std::uint8_t, 12> nonce{};
  auto body = AesGcmOpen(k.span(), nonce, file.first(kHeaderSize), file.subspan(kHeaderSize));
  if (!body.ok()) return DataLoss("the upper state fails authentication (tampered, or another key)");
  Decoder d(body->span());
  UpperState state;
  d.Bytes(state.lower_root);
  state.owner = d.Str();
  state.generation = d.U64();
  state.next_ino = d.U64();
  state.next_file_id = d.U64();
  std::uint64_t count = d.Count(64);
  for (std::uint64_t i = 0; i < count && d.ok(); ++i) state.nodes.push_back(DecodeNode(d));
  if (!d.done()) return DataLoss("the upper state is malformed");
  std::uint64_t header_generation = 0;
  for (int i = 0; i < 8; ++i) header_generation |= std::uint64_t{file[40 + i]} << (8 * i);
  if (header_generation != state.generation) return DataLoss("the upper state is malformed");
  return state;
}

}  // namespace sealroot::fusefs
