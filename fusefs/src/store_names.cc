// Named roots and root pins (design/sealfs.md "Named roots"): STORE/names holds the names,
// sealed under the store key; STORE/pins/ holds one locked file per root a process uses.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <set>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "fusefs/src/codec.h"
#include "fusefs/store.h"

namespace sealroot::fusefs {
namespace {

constexpr std::string_view kNamesMagic = "SFNAMES1";
constexpr char kNamesFile[] = "names";
constexpr char kNamesLockFile[] = "names.lock";
constexpr char kPinsDir[] = "pins";
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kMaxNamesFile = 16u << 20;
constexpr std::size_t kMaxNameLength = 128;

// flock(2), retried on EINTR.
int Flock(int fd, int op) {
  int rc;
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  return rc;
}

std::vector<std::uint8_t> EncodeNames(std::span<const NamedRoot> names) {
  ByteWriter w;
  w.U32(static_cast<std::uint32_t>(names.size()));
  for (const NamedRoot& n : names) {
    w.U16(static_cast<std::uint16_t>(n.name.size()));
    w.Bytes(AsBytes(n.name));
    w.Bytes(n.root);
  }
  return std::move(w.bytes());
}

Result<std::vector<NamedRoot>> DecodeNames(std::span<const std::uint8_t> plain, const std::string& ctx) {
  ByteReader r(plain);
  std::uint32_t count = 0;
  if (!r.U32(count)) return DataLoss(ctx + ": malformed names");
  std::vector<NamedRoot> names;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint16_t length = 0;
    if (!r.U16(length) || length == 0 || length > kMaxNameLength) return DataLoss(ctx + ": malformed names");
    NamedRoot n;
    n.name.resize(length);
    std::span<std::uint8_t> name_bytes(reinterpret_cast<std::uint8_t*>(n.name.data()), n.name.size());
    if (!r.Bytes(name_bytes) || !r.Bytes(n.root)) return DataLoss(ctx + ": malformed names");
    if (!ValidateRootName(n.name).ok()) return DataLoss(ctx + ": malformed names");
    names.push_back(std::move(n));
  }
  return names;
}

}  // namespace

Status ValidateRootName(std::string_view name) {
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("_.:@+/-").find(c) != std::string_view::npos;
  };
  bool ok =
      !name.empty() && name.size() <= kMaxNameLength && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && allowed(c);
  if (!ok) {
    return InvalidArgument("not a root name: '" + std::string(name.substr(0, 80)) +
                           "' (1 to 128 of A-Z a-z 0-9 _ . : @ + / -, starting with a letter or digit)");
  }
  return OkStatus();
}

RootPin::~RootPin() {
  if (!name_.empty()) unlinkat(dir_fd_, name_.c_str(), 0);
}

Result<std::vector<NamedRoot>> Store::RootNames(const StoreKey& key) const {
  const std::string ctx = "reading the root names of store " + dir_;
  UniqueFd fd(openat(dir_fd_.get(), kNamesFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return NotFound(ctx + ": the store has no names file");
    return ErrnoStatus(ctx, errno);
  }
  SR_ASSIGN_OR_RETURN(std::string data, ReadFd(fd.get(), kMaxNamesFile));
  auto bytes = AsBytes(data);
  if (data.size() < kNamesMagic.size() + kNonceSize + 16 || !data.starts_with(kNamesMagic))
    return DataLoss(ctx + ": malformed names file");
  SR_ASSIGN_OR_RETURN(SecretBytes names_key, key.RootNamesKey());
  auto plain = AesGcmOpen(names_key.span(), bytes.subspan(kNamesMagic.size(), kNonceSize),
                          AsBytes(kNamesMagic), bytes.subspan(kNamesMagic.size() + kNonceSize));
  if (!plain.ok()) return DataLoss(ctx + ": names file authentication failed");
  return DecodeNames(plain->span(), ctx);
}

Status Store::UpdateRootNames(const StoreKey& key,
                              const std::function<Status(std::vector<NamedRoot>&)>& edit) const {
  const std::string ctx = "updating the root names of store " + dir_;
  UniqueFd lock(openat(dir_fd_.get(), kNamesLockFile, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock || Flock(lock.get(), LOCK_EX) != 0) return ErrnoStatus(ctx + ": locking the names", errno);
  std::vector<NamedRoot> names;
  if (auto current = RootNames(key); current.ok()) {
    names = std::move(*current);
  } else if (current.status().code() != Code::kNotFound) {
    return current.status();
  }
  SR_RETURN_IF_ERROR(edit(names));
  std::array<std::uint8_t, kNonceSize> nonce{};
  RandomBytes(nonce);
  SR_ASSIGN_OR_RETURN(SecretBytes names_key, key.RootNamesKey());
  std::vector<std::uint8_t> plain = EncodeNames(names);
  auto sealed = AesGcmSeal(names_key.span(), nonce, AsBytes(kNamesMagic), plain);
  SecureWipe(plain);
  if (!sealed.ok()) return sealed.status().WithContext(ctx);
  std::string file(kNamesMagic);
  file += AsChars(nonce);
  file += AsChars(*sealed);
  return WriteFileAtomic(JoinPath(dir_, kNamesFile), file, 0600).WithContext(ctx);
}

Result<RootPin> Store::PinRoot(const RootHash& root) const {
  const std::string ctx = "pinning root " + HashHex(root) + " in store " + dir_;
  if (mkdirat(dir_fd_.get(), kPinsDir, 0700) != 0 && errno != EEXIST) return ErrnoStatus(ctx, errno);
  // Under the store's shared lock: gc (exclusive) either ran before, or sees this pin.
  UniqueFd store_lock(openat(dir_fd_.get(), "lock", O_RDWR | O_CLOEXEC));
  if (!store_lock || Flock(store_lock.get(), LOCK_SH) != 0)
    return ErrnoStatus(ctx + ": locking the store", errno);
  std::array<std::uint8_t, 8> random{};
  RandomBytes(random);
  std::string name = std::string(kPinsDir) + "/" + HashHex(root) + "-" + HexEncode(random);
  UniqueFd fd(openat(dir_fd_.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(ctx, errno);
  if (Flock(fd.get(), LOCK_EX) != 0) {
    int err = errno;
    unlinkat(dir_fd_.get(), name.c_str(), 0);
    return ErrnoStatus(ctx, err);
  }
  return RootPin(dir_fd_.get(), std::move(name), std::move(fd));
}

Result<std::set<RootHash>> Store::PinnedRoots() const {
  std::set<RootHash> pinned;
  UniqueFd dir_fd(openat(dir_fd_.get(), kPinsDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) {
    if (errno == ENOENT) return pinned;  // no pin was ever taken
    return ErrnoStatus("listing the pins of store " + dir_, errno);
  }
  DIR* dir = fdopendir(dir_fd.get());
  if (dir == nullptr) return ErrnoStatus("listing the pins of store " + dir_, errno);
  (void)dir_fd.Release();
  std::unique_ptr<DIR, int (*)(DIR*)> owned(dir, closedir);
  while (dirent* e = readdir(dir)) {
    std::string_view n = e->d_name;
    if (n.size() < 65 || n[64] != '-') continue;
    auto root = ParseHash(n.substr(0, 64));
    if (!root.ok()) continue;
    UniqueFd pin(openat(dirfd(dir), e->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!pin) continue;
    if (Flock(pin.get(), LOCK_EX | LOCK_NB) != 0) {
      pinned.insert(*root);  // its process holds it
    } else if (lock_ == StoreLock::kExclusive) {
      unlinkat(dirfd(dir), e->d_name, 0);  // stale: its process is gone
    }
  }
  return pinned;
}

}  // namespace sealroot::fusefs
