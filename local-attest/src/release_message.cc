// The key-release message and the upper-commit report (design/attestation.md "Release message"):
//   "SRKR" | version u8 = 2 | id_len u16 BE | container id | spec digest[32] | count u8 |
//   count x ( name_len u8 | name | root hash[32] | key_len u8 | key ) |
//   upper key[32] | exec key[32] | upper u8 (0: fresh, 1: root follows) | [upper root[32]]
//   "SRUC" | version u8 = 1 | flags u8 (bit 0: previous follows) | [previous[32]] | root[32]
#include <cstring>

#include "local-attest/release.h"

namespace sealroot::local_attest {
namespace {

constexpr std::uint8_t kMagic[4] = {'S', 'R', 'K', 'R'};
constexpr std::uint8_t kVersion = 2;
constexpr std::uint8_t kCommitMagic[4] = {'S', 'R', 'U', 'C'};
constexpr std::uint8_t kCommitVersion = 1;
constexpr std::uint8_t kHasPrevious = 1;
constexpr std::size_t kMaxContainerId = 1024, kMaxRoots = 16, kMinKey = 16, kMaxKey = 64;

// A bounds-checked cursor over the decrypted message.
class Cursor {
 public:
  explicit Cursor(std::span<const std::uint8_t> b) : b_(b) {}
  Result<std::span<const std::uint8_t>> Take(std::size_t n, const char* what) {
    if (b_.size() - pos_ < n) return InvalidArgument(std::string("message truncated in ") + what);
    auto out = b_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  Result<std::size_t> U8(const char* what) {
    SR_ASSIGN_OR_RETURN(auto b, Take(1, what));
    return std::size_t{b[0]};
  }
  Result<Sha256Digest> Digest(const char* what) {
    SR_ASSIGN_OR_RETURN(auto b, Take(32, what));
    Sha256Digest out;
    std::memcpy(out.data(), b.data(), out.size());
    return out;
  }
  bool done() const { return pos_ == b_.size(); }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
};

}  // namespace

Result<SecretBytes> EncodeKeyRelease(const KeyRelease& r) {
  if (r.container_id.empty() || r.container_id.size() > kMaxContainerId) {
    return InvalidArgument("key release: container id must be 1..1024 bytes");
  }
  if (r.roots.empty() || r.roots.size() > kMaxRoots) return InvalidArgument("key release: 1..16 roots");
  if (r.upper_key.size() != kContainerKeySize || r.exec_key.size() != kContainerKeySize) {
    return InvalidArgument("key release: the upper and exec keys must be 32 bytes");
  }
  std::size_t size =
      4 + 1 + 2 + r.container_id.size() + 32 + 1 + 2 * kContainerKeySize + 1 + (r.upper_root ? 32 : 0);
  for (const ReleasedRoot& root : r.roots) {
    if (root.name.empty() || root.name.size() > 255) {
      return InvalidArgument("key release: root name must be 1..255 bytes");
    }
    if (root.key.size() < kMinKey || root.key.size() > kMaxKey) {
      return InvalidArgument("key release: root '" + root.name + "' key must be 16..64 bytes");
    }
    size += 1 + root.name.size() + 32 + 1 + root.key.size();
  }
  SecretBytes out(size);
  std::uint8_t* p = out.data();
  auto put = [&p](std::span<const std::uint8_t> b) {
    std::memcpy(p, b.data(), b.size());
    p += b.size();
  };
  put(kMagic);
  *p++ = kVersion;
  *p++ = static_cast<std::uint8_t>(r.container_id.size() >> 8);
  *p++ = static_cast<std::uint8_t>(r.container_id.size());
  put(AsBytes(r.container_id));
  put(r.spec_digest);
  *p++ = static_cast<std::uint8_t>(r.roots.size());
  for (const ReleasedRoot& root : r.roots) {
    *p++ = static_cast<std::uint8_t>(root.name.size());
    put(AsBytes(root.name));
    put(root.root_hash);
    *p++ = static_cast<std::uint8_t>(root.key.size());
    put(root.key.span());
  }
  put(r.upper_key.span());
  put(r.exec_key.span());
  *p++ = r.upper_root ? 1 : 0;
  if (r.upper_root) put(*r.upper_root);
  return out;
}

Result<KeyRelease> DecodeKeyRelease(std::span<const std::uint8_t> bytes) {
  Cursor c(bytes);
  SR_ASSIGN_OR_RETURN(auto magic, c.Take(4, "magic"));
  if (std::memcmp(magic.data(), kMagic, 4) != 0) return InvalidArgument("release message: bad magic");
  SR_ASSIGN_OR_RETURN(std::size_t version, c.U8("version"));
  if (version != kVersion) {
    return InvalidArgument("release message: unsupported version " + std::to_string(version));
  }
  SR_ASSIGN_OR_RETURN(std::size_t hi, c.U8("container id length"));
  SR_ASSIGN_OR_RETURN(std::size_t lo, c.U8("container id length"));
  const std::size_t id_len = hi << 8 | lo;
  if (id_len == 0 || id_len > kMaxContainerId)
    return InvalidArgument("release message: bad container id length");
  KeyRelease r;
  SR_ASSIGN_OR_RETURN(auto id, c.Take(id_len, "container id"));
  r.container_id = std::string(AsChars(id));
  SR_ASSIGN_OR_RETURN(r.spec_digest, c.Digest("spec digest"));
  SR_ASSIGN_OR_RETURN(std::size_t count, c.U8("root count"));
  if (count == 0 || count > kMaxRoots) return InvalidArgument("release message: bad root count");
  for (std::size_t i = 0; i < count; ++i) {
    ReleasedRoot root;
    SR_ASSIGN_OR_RETURN(std::size_t name_len, c.U8("root name length"));
    if (name_len == 0) return InvalidArgument("release message: empty root name");
    SR_ASSIGN_OR_RETURN(auto name, c.Take(name_len, "root name"));
    root.name = std::string(AsChars(name));
    SR_ASSIGN_OR_RETURN(root.root_hash, c.Digest("root hash"));
    SR_ASSIGN_OR_RETURN(std::size_t key_len, c.U8("key length"));
    if (key_len < kMinKey || key_len > kMaxKey) return InvalidArgument("release message: bad key length");
    SR_ASSIGN_OR_RETURN(auto key, c.Take(key_len, "key"));
    root.key = SecretBytes(key);
    r.roots.push_back(std::move(root));
  }
  SR_ASSIGN_OR_RETURN(auto upper_key, c.Take(kContainerKeySize, "upper key"));
  r.upper_key = SecretBytes(upper_key);
  SR_ASSIGN_OR_RETURN(auto exec_key, c.Take(kContainerKeySize, "exec key"));
  r.exec_key = SecretBytes(exec_key);
  SR_ASSIGN_OR_RETURN(std::size_t upper, c.U8("upper state"));
  if (upper > 1) return InvalidArgument("release message: bad upper state flag");
  if (upper == 1) {
    SR_ASSIGN_OR_RETURN(r.upper_root, c.Digest("upper root"));
  }
  if (!c.done()) return InvalidArgument("release message: trailing bytes");
  return r;
}

std::vector<std::uint8_t> EncodeUpperCommit(const UpperCommit& commit) {
  std::vector<std::uint8_t> out(kCommitMagic, kCommitMagic + 4);
  out.push_back(kCommitVersion);
  out.push_back(commit.previous ? kHasPrevious : 0);
  if (commit.previous) out.insert(out.end(), commit.previous->begin(), commit.previous->end());
  out.insert(out.end(), commit.root.begin(), commit.root.end());
  return out;
}

Result<UpperCommit> DecodeUpperCommit(std::span<const std::uint8_t> bytes) {
  Cursor c(bytes);
  SR_ASSIGN_OR_RETURN(auto magic, c.Take(4, "magic"));
  if (std::memcmp(magic.data(), kCommitMagic, 4) != 0) return InvalidArgument("upper commit: bad magic");
  SR_ASSIGN_OR_RETURN(std::size_t version, c.U8("version"));
  if (version != kCommitVersion) {
    return InvalidArgument("upper commit: unsupported version " + std::to_string(version));
  }
  SR_ASSIGN_OR_RETURN(std::size_t flags, c.U8("flags"));
  if ((flags & ~std::size_t{kHasPrevious}) != 0) return InvalidArgument("upper commit: unknown flags");
  UpperCommit commit;
  if (flags & kHasPrevious) {
    SR_ASSIGN_OR_RETURN(commit.previous, c.Digest("previous root"));
  }
  SR_ASSIGN_OR_RETURN(commit.root, c.Digest("root"));
  if (!c.done()) return InvalidArgument("upper commit: trailing bytes");
  return commit;
}

}  // namespace sealroot::local_attest
