#include "fusefs/src/upper_state.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>

#include "base/crypto.h"

namespace sealroot::fusefs {
namespace {

constexpr std::string_view kMagic = "SFUPPER\3";  // 8 bytes: magic + format version 3
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
  void Fail() { ok_ = false; }
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

enum Flags : std::uint8_t { kFromLower = 1, kHasData = 2, kHasListing = 4, kListingChange = 8 };

constexpr std::string_view kJournalMagic = "SFUJRNL\1";  // 8 bytes: journal format 1
constexpr std::string_view kRecordPurpose = "sealfs v1 upper journal key";
constexpr std::string_view kRecordAadLabel = "sealfs v1 upper journal record";
constexpr std::size_t kRecordMax = std::size_t{1} << 31;

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
                                 (n.listing ? kHasListing : 0) |
                                 (n.listing && !n.listing_full ? kListingChange : 0)));
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
    e.U64(n.data->drop_from);
    e.U64(n.data->blocks.size());
    for (const auto& [index, b] : n.data->blocks) {
      e.U64(index);
      e.U64(b.slot);
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
    f.drop_from = d.U64();
    for (std::uint64_t i = 0, count = d.Count(48); i < count; ++i) {
      const std::uint64_t index = d.U64();
      UpperBlock b;
      b.slot = d.U64();
      b.epoch = d.U32();
      b.len = d.U32();
      b.counter = d.U64();
      d.Bytes(b.tag);
      // Strictly increasing indexes: one entry per block, and the encoding is canonical.
      if (!f.blocks.empty() && index <= f.blocks.rbegin()->first) d.Fail();
      f.blocks.emplace_hint(f.blocks.end(), index, b);
    }
  }
  n.listing_full = (flags & kListingChange) == 0;
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

void EncodeBody(Encoder& body, const UpperState& state) {
  body.Bytes(state.lower_root);
  body.Str(state.owner);
  body.U64(state.generation);
  body.U64(state.next_ino);
  body.U64(state.next_file_id);
  body.U64(state.nodes.size());
  for (const UpperNodeRecord& n : state.nodes) EncodeNode(body, n);
  body.U64(state.removed.size());
  for (std::uint64_t ino : state.removed) body.U64(ino);
}

Result<UpperState> DecodeBody(std::span<const std::uint8_t> in, std::string_view what) {
  Decoder d(in);
  UpperState state;
  d.Bytes(state.lower_root);
  state.owner = d.Str();
  state.generation = d.U64();
  state.next_ino = d.U64();
  state.next_file_id = d.U64();
  std::uint64_t count = d.Count(64);
  for (std::uint64_t i = 0; i < count && d.ok(); ++i) state.nodes.push_back(DecodeNode(d));
  for (std::uint64_t i = 0, removed = d.Count(8); i < removed; ++i) state.removed.push_back(d.U64());
  if (!d.done()) return DataLoss(std::string(what) + " is malformed");
  return state;
}

// The record's additional data: its label, the root it follows and its salt.
std::vector<std::uint8_t> RecordAad(const Hash32& previous, std::span<const std::uint8_t> salt) {
  std::vector<std::uint8_t> aad;
  aad.reserve(kRecordAadLabel.size() + previous.size() + salt.size());
  aad.insert(aad.end(), kRecordAadLabel.begin(), kRecordAadLabel.end());
  aad.insert(aad.end(), previous.begin(), previous.end());
  aad.insert(aad.end(), salt.begin(), salt.end());
  return aad;
}

Result<std::vector<std::uint8_t>> SealUpperState(const StoreKey& key, const UpperState& state) {
  Encoder body;
  EncodeBody(body, state);

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
  SR_ASSIGN_OR_RETURN(UpperState state, DecodeBody(body->span(), "the upper state"));
  if (!state.removed.empty()) return DataLoss("the upper state is malformed");
  std::uint64_t header_generation = 0;
  for (int i = 0; i < 8; ++i) header_generation |= std::uint64_t{file[40 + i]} << (8 * i);
  if (header_generation != state.generation) return DataLoss("the upper state is malformed");
  return state;
}

std::array<std::uint8_t, kJournalHeaderSize> JournalHeader(const Hash32& base_root) {
  std::array<std::uint8_t, kJournalHeaderSize> h{};
  std::memcpy(h.data(), kJournalMagic.data(), kJournalMagic.size());
  std::memcpy(h.data() + kJournalMagic.size(), base_root.data(), base_root.size());
  return h;
}

std::optional<Hash32> JournalBase(std::span<const std::uint8_t> journal) {
  if (journal.size() < kJournalHeaderSize || AsChars(journal.first(8)) != kJournalMagic) return std::nullopt;
  Hash32 base;
  std::memcpy(base.data(), journal.data() + 8, base.size());
  return base;
}

std::optional<std::size_t> JournalRecordSize(std::span<const std::uint8_t> rest) {
  if (rest.size() < 4) return std::nullopt;
  std::size_t n = 0;
  for (int i = 0; i < 4; ++i) n |= std::size_t{rest[i]} << (8 * i);
  if (n > kRecordMax || rest.size() - 4 < n) return std::nullopt;
  return 4 + n;
}

Hash32 NextUpperRoot(const Hash32& previous, std::span<const std::uint8_t> record) {
  Sha256 h;
  h.Update(kRecordAadLabel);
  h.Update(previous);
  h.Update(record);
  return h.Finish();
}

// record = LE32(n) || salt[32] || AES-256-GCM(k(salt), 0^96, aad, body) || tag   (n bytes after the length)
Result<std::vector<std::uint8_t>> SealJournalRecord(const StoreKey& key, const Hash32& previous,
                                                    const UpperState& change) {
  Encoder body;
  EncodeBody(body, change);
  Hash32 salt;
  RandomBytes(salt);
  SR_ASSIGN_OR_RETURN(SecretBytes k, UpperKey(key, kRecordPurpose, salt));
  const std::array<std::uint8_t, 12> nonce{};
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> sealed,
                      AesGcmSeal(k.span(), nonce, RecordAad(previous, salt), body.out()));
  const std::size_t n = salt.size() + sealed.size();
  if (n > kRecordMax) return ResourceExhausted("an upper journal record is too large");
  std::vector<std::uint8_t> record(4);
  for (int i = 0; i < 4; ++i) record[i] = static_cast<std::uint8_t>(n >> (8 * i));
  record.insert(record.end(), salt.begin(), salt.end());
  record.insert(record.end(), sealed.begin(), sealed.end());
  return record;
}

Result<UpperState> OpenJournalRecord(const StoreKey& key, const Hash32& previous,
                                     std::span<const std::uint8_t> record) {
  if (record.size() < 4 + 32 + kTagSize) return DataLoss("an upper journal record is malformed");
  const auto salt = record.subspan(4, 32);
  Hash32 salt_bytes;
  std::memcpy(salt_bytes.data(), salt.data(), salt.size());
  SR_ASSIGN_OR_RETURN(SecretBytes k, UpperKey(key, kRecordPurpose, salt_bytes));
  const std::array<std::uint8_t, 12> nonce{};
  auto body = AesGcmOpen(k.span(), nonce, RecordAad(previous, salt), record.subspan(4 + 32));
  if (!body.ok()) return DataLoss("authentication failed");
  return DecodeBody(body->span(), "an upper journal record");
}

namespace {

// A listing while records are replayed: names in order, removed ones left as inode 0 until the end.
struct ReplayListing {
  std::vector<std::pair<std::string, std::uint64_t>> entries;
  std::unordered_map<std::string, std::size_t> index;

  void Assign(std::vector<std::pair<std::string, std::uint64_t>> all) {
    entries = std::move(all);
    index.clear();
    for (std::size_t i = 0; i < entries.size(); ++i) index[entries[i].first] = i;
  }
  void Set(const std::string& name, std::uint64_t ino) {
    auto it = index.find(name);
    if (it != index.end() && entries[it->second].second != 0) {
      entries[it->second].second = ino;  // replaced (or removed when ino is 0)
    } else if (ino != 0) {
      index[name] = entries.size();
      entries.emplace_back(name, ino);
    }
  }
  std::vector<std::pair<std::string, std::uint64_t>> Take() {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    for (auto& e : entries) {
      if (e.second != 0) out.push_back(std::move(e));
    }
    return out;
  }
};

Status ApplyData(std::optional<UpperFileState>& base, UpperFileState change) {
  if (!base || base->id != change.id) {
    if (change.drop_from != 0) return DataLoss("a record changes a file the state does not hold");
    base = std::move(change);
    return OkStatus();
  }
  base->blocks.erase(base->blocks.lower_bound(change.drop_from), base->blocks.end());
  for (auto& [index, block] : change.blocks) base->blocks[index] = block;
  base->size = change.size;
  base->epoch_salts = std::move(change.epoch_salts);
  return OkStatus();
}

}  // namespace

Result<UpperState> ReplayUpperJournal(UpperState base, std::vector<UpperState> records) {
  if (records.empty()) return base;
  std::map<std::uint64_t, UpperNodeRecord> nodes;
  std::map<std::uint64_t, ReplayListing> listings;
  for (UpperNodeRecord& n : base.nodes) {
    const std::uint64_t ino = n.ino;
    if (n.listing) listings[ino].Assign(std::move(*n.listing));
    n.listing.reset();
    if (!nodes.emplace(ino, std::move(n)).second) return DataLoss("the upper state holds an inode twice");
  }
  for (std::size_t i = 0; i < records.size(); ++i) {
    UpperState& r = records[i];
    const std::string what = "upper journal record " + std::to_string(i + 1);
    if (!ConstantTimeEqual(r.lower_root, base.lower_root) || r.owner != base.owner ||
        r.generation != base.generation + 1)
      return DataLoss(what + " does not follow the state before it");
    base.generation = r.generation;
    base.next_ino = r.next_ino;
    base.next_file_id = r.next_file_id;
    for (std::uint64_t ino : r.removed) {
      nodes.erase(ino);
      listings.erase(ino);
    }
    for (UpperNodeRecord& n : r.nodes) {
      UpperNodeRecord& into = nodes[n.ino];
      std::optional<UpperFileState> data = std::move(into.data);
      if (n.data) {
        SR_RETURN_IF_ERROR_CTX(ApplyData(data, std::move(*n.data)), what);
      } else {
        data.reset();  // a record holds the data of every file it names
      }
      std::optional<std::vector<std::pair<std::string, std::uint64_t>>> listing = std::move(n.listing);
      const bool full = n.listing_full;
      into = std::move(n);
      into.data = std::move(data);
      into.listing.reset();
      into.listing_full = true;
      if (listing) {
        auto it = listings.find(into.ino);
        if (full) {
          listings[into.ino].Assign(std::move(*listing));
        } else if (it == listings.end()) {
          return DataLoss(what + " changes a listing the state does not hold");
        } else {
          for (auto& [name, ino] : *listing) it->second.Set(name, ino);
        }
      }
    }
  }
  base.nodes.clear();
  for (auto& [ino, n] : nodes) {
    if (auto it = listings.find(ino); it != listings.end()) n.listing = it->second.Take();
    base.nodes.push_back(std::move(n));
  }
  return base;
}

}  // namespace sealroot::fusefs
