#include "fusefs/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <string>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "fusefs/src/codec.h"

namespace sealroot::fusefs {
namespace {

constexpr std::string_view kLayerMagic = "SFLAYER1";
constexpr std::string_view kKeyCheckLabel = "sealfs v1 key check";

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Names in a subdirectory of the store (skipping "." and "..").
Result<std::vector<std::string>> ListDir(int dir_fd, const std::string& sub) {
  int fd = openat(dir_fd, sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + sub, errno);
  DirPtr dir(fdopendir(fd));
  if (!dir) {
    close(fd);
    return ErrnoStatus("listing " + sub, errno);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(dir.get())) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  return names;
}

Result<std::string> ReadAt(int dir_fd, const std::string& rel, std::size_t max) {
  UniqueFd fd(openat(dir_fd, rel.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return ErrnoStatus("opening " + rel, errno);
  return ReadFd(fd.get(), max);
}

std::string ObjectRel(const Hash32& name) {
  std::string hex = HashHex(name);
  return "objects/" + hex.substr(0, 2) + "/" + hex.substr(2);
}

std::string RandomName(std::string_view prefix) {
  std::array<std::uint8_t, 12> r{};
  RandomBytes(r);
  return std::string(prefix) + "-" + HexEncode(r);
}

// Writes `data` as a new staged file and fsyncs it; the caller renames it into place.
Result<StagedFile> StageBytes(const Store& store, std::string_view what, std::span<const std::uint8_t> data) {
  SR_ASSIGN_OR_RETURN(StagedFile f, store.CreateStaged(what));
  SR_RETURN_IF_ERROR_CTX(PwriteAll(store.env(), f.fd(), data, 0), "writing staged " + std::string(what));
  SR_RETURN_IF_ERROR_CTX(store.env().Fsync(f.fd()), "syncing staged " + std::string(what));
  return f;
}

Status RenameNoReplace(Env& env, int dir_fd, const std::string& from, const std::string& to, bool* existed) {
  Status renamed = env.RenameAt(dir_fd, from, to, /*no_replace=*/true);
  *existed = renamed.code() == Code::kAlreadyExists;  // EEXIST, ENOTEMPTY
  return *existed ? OkStatus() : renamed;
}

// Only well-formed DiffIDs are layer keys: "sha256:" + 64 lowercase hex.
Status CheckDiffId(std::string_view diff_id) {
  if (diff_id.size() != 71 || !diff_id.starts_with("sha256:") || !IsLowerHex(diff_id.substr(7), 64)) {
    return InvalidArgument("not a layer DiffID: '" + std::string(diff_id.substr(0, 80)) + "'");
  }
  return OkStatus();
}

constexpr const char* kLayoutDirs[] = {"objects", "layers", "roots", "staging", "pins"};
constexpr std::string_view kVersionFile = "sealfs-store";

// mkdir through `env`; an existing directory is fine (a creation resumed, or a concurrent one).
Status MakeDir(Env& env, int dir_fd, const std::string& path) {
  Status made = env.MkdirAt(dir_fd, path, 0700);
  return made.code() == Code::kAlreadyExists ? OkStatus() : made;
}

Status CreateLayout(Env& env, int dir_fd) {
  for (const char* sub : kLayoutDirs) SR_RETURN_IF_ERROR(MakeDir(env, dir_fd, sub));
  for (int i = 0; i < 256; ++i) {
    std::uint8_t b = static_cast<std::uint8_t>(i);
    SR_RETURN_IF_ERROR(MakeDir(env, dir_fd, "objects/" + HexEncode(std::span(&b, 1))));
  }
  return OkStatus();
}

// Whether a directory without a version file holds only what creating a store makes before it
// (nothing, the lock, the layout's directories, a version file's temporary): a new store, or
// one whose creation stopped half way, which the next creation completes.
bool OnlyLayout(const std::vector<std::string>& names) {
  return std::all_of(names.begin(), names.end(), [](const std::string& name) {
    return name == "lock" || name.starts_with(std::string(kVersionFile) + ".tmp-") ||
           std::find(std::begin(kLayoutDirs), std::end(kLayoutDirs), name) != std::end(kLayoutDirs);
  });
}

}  // namespace

Result<Hash32> ParseHash(std::string_view hex) {
  if (!IsLowerHex(hex, 64)) return InvalidArgument("a root hash is 64 lowercase hex characters");
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, HexDecode(hex));
  Hash32 h{};
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

std::string HashHex(const Hash32& hash) {
  return HexEncode(hash);
}

StagedFile::~StagedFile() {
  if (!name_.empty()) unlinkat(dir_fd_, name_.c_str(), 0);
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, bool create, StoreLock lock, Env& env) {
  const std::string ctx = "opening sealed store " + dir;
  if (create) SR_RETURN_IF_ERROR_CTX(MakeDir(env, AT_FDCWD, dir), ctx + ": creating it");
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return ErrnoStatus(ctx, errno);

  auto version = ReadAt(dir_fd.get(), std::string(kVersionFile), 4096);
  if (!version.ok() && version.status().code() != Code::kNotFound) return version.status().WithContext(ctx);
  if (!version.ok()) {
    SR_ASSIGN_OR_RETURN(auto names, ListDir(dir_fd.get(), "."));
    if (!OnlyLayout(names))
      return FailedPrecondition(ctx + ": not a sealed store (no sealfs-store version file)");
    if (!create) {
      return NotFound(ctx + (names.empty() ? ": the directory is empty, not a sealed store"
                                           : ": not a sealed store (its creation did not finish)"));
    }
  } else if (*version != kStoreVersion) {
    return FailedPrecondition(ctx + ": unsupported format version '" +
                              version->substr(0, std::min<std::size_t>(version->size(), 40)) +
                              "' (this sealroot reads " +
                              std::string(kStoreVersion.substr(0, kStoreVersion.size() - 1)) +
                              "; seal the images into a new store)");
  }

  Result<UniqueFd> lock_fd = env.OpenAt(dir_fd.get(), "lock", O_RDWR | O_CREAT, 0600);
  if (!lock_fd.ok()) return std::move(lock_fd).status().WithContext(ctx + ": its lock");
  if (lock != StoreLock::kNone) {
    int op = lock == StoreLock::kShared ? LOCK_SH : (LOCK_EX | LOCK_NB);
    while (flock(lock_fd->get(), op) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) return Unavailable(ctx + ": a writer is using it; try again when it is done");
      return ErrnoStatus(ctx + ": locking it", errno);
    }
  }
  if (!version.ok()) {
    // New store: the layout first, durable, then the version file, atomically, so a store
    // whose creation stopped is refused by readers and completed by the next writer.
    SR_RETURN_IF_ERROR_CTX(CreateLayout(env, dir_fd.get()), ctx);
    SR_RETURN_IF_ERROR_CTX(env.SyncFs(dir_fd.get()), ctx + ": syncing its layout");
    SR_RETURN_IF_ERROR_CTX(
        WriteFileAtomic(env, JoinPath(dir, std::string(kVersionFile)), AsBytes(kStoreVersion), 0600), ctx);
  }
  return std::unique_ptr<Store>(new Store(dir, std::move(dir_fd), std::move(*lock_fd), lock, env));
}

Store::~Store() = default;

Status Store::CheckKey(const StoreKey& key, bool bind) const {
  Hash32 expected = key.RecordMac(AsBytes(kKeyCheckLabel));
  auto stored = ReadAt(dir_fd_.get(), "key-check", 4096);
  if (!stored.ok() && stored.status().code() == Code::kNotFound && bind) {
    SR_ASSIGN_OR_RETURN(StagedFile f, StageBytes(*this, "key-check", expected));
    bool existed = false;
    SR_RETURN_IF_ERROR(RenameNoReplace(env_, dir_fd_.get(), f.name(), "key-check", &existed));
    if (!existed) {
      f.Release();
      // A store bound now starts with an empty names file: a store without one was sealed
      // before named roots, and gc treats it so (design/sealfs.md "Named roots").
      return UpdateRootNames(key, [](std::vector<NamedRoot>&) { return OkStatus(); });
    }
    stored = ReadAt(dir_fd_.get(), "key-check", 4096);  // another writer bound it first
  }
  if (!stored.ok()) return stored.status().WithContext("reading the key check of store " + dir_);
  if (!ConstantTimeEqual(AsBytes(*stored), expected)) {
    return Unauthenticated("store " + dir_ + " is sealed under a different key");
  }
  return OkStatus();
}

Result<UniqueFd> Store::OpenObject(const Hash32& name) const {
  std::string rel = ObjectRel(name);
  UniqueFd fd(openat(dir_fd_.get(), rel.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    int err = errno;
    if (err == ENOENT) return DataLoss("object " + HashHex(name) + " is missing from the store");
    return ErrnoStatus("opening object " + HashHex(name), err);
  }
  return fd;
}

Result<StagedFile> Store::CreateStaged(std::string_view what) const {
  std::string rel = "staging/" + RandomName(what);
  Result<UniqueFd> fd = env_.OpenAt(dir_fd_.get(), rel, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (!fd.ok()) return std::move(fd).status().WithContext("store " + dir_);
  return StagedFile(dir_fd_.get(), rel, std::move(*fd));
}

Status Store::WriteObject(const Hash32& name, std::span<const std::uint8_t> bytes) const {
  const std::string rel = ObjectRel(name);
  const std::string what = "writing object " + HashHex(name);
  Result<UniqueFd> fd = env_.OpenAt(dir_fd_.get(), rel, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (!fd.ok()) return std::move(fd).status().WithContext(what);
  Status s = PwriteAll(env_, fd->get(), bytes, 0);
  if (!s.ok()) (void)env_.UnlinkAt(dir_fd_.get(), rel, 0);
  return s.WithContext(what);
}

Status Store::PublishObject(StagedFile& staged, const Hash32& name) const {
  std::string rel = ObjectRel(name);
  SR_RETURN_IF_ERROR_CTX(env_.RenameAt(dir_fd_.get(), staged.name(), rel, /*no_replace=*/false),
                         "publishing object " + HashHex(name));
  staged.Release();
  return OkStatus();
}

void Store::RemoveObject(const Hash32& name) const {
  unlinkat(dir_fd_.get(), ObjectRel(name).c_str(), 0);
}

Status Store::Sync() const {
  return env_.SyncFs(dir_fd_.get()).WithContext("syncing store " + dir_);
}

bool Store::HasLayer(const StoreKey& key, std::string_view diff_id) const {
  if (!CheckDiffId(diff_id).ok()) return false;
  std::string rel = "layers/" + key.LayerName(diff_id) + "/record";
  return faccessat(dir_fd_.get(), rel.c_str(), F_OK, 0) == 0;
}

namespace {
std::vector<std::uint8_t> LayerMacInput(std::string_view diff_id, std::span<const std::uint8_t> ref) {
  ByteWriter w;
  w.Blob("layer");
  w.Blob(diff_id);
  w.Bytes(ref);
  return std::move(w.bytes());
}
std::vector<std::uint8_t> EncodeRef(const ObjectRef& ref) {
  ByteWriter w;
  w.Bytes(ref.name);
  w.Bytes(ref.salt);
  w.U64(ref.size);
  return std::move(w.bytes());
}
}  // namespace

Result<ObjectRef> Store::LayerIndex(const StoreKey& key, std::string_view diff_id) const {
  SR_RETURN_IF_ERROR(CheckDiffId(diff_id));
  const std::string ctx = "reading layer " + std::string(diff_id) + " in store " + dir_;
  auto data = ReadAt(dir_fd_.get(), "layers/" + key.LayerName(diff_id) + "/record", 4096);
  if (!data.ok()) {
    if (data.status().code() == Code::kNotFound) return NotFound(ctx + ": not sealed");
    return data.status().WithContext(ctx);
  }
  constexpr std::size_t kRefSize = 32 + 32 + 8;
  if (data->size() != kLayerMagic.size() + kRefSize + 32 || !data->starts_with(kLayerMagic)) {
    return DataLoss(ctx + ": malformed layer record");
  }
  auto bytes = AsBytes(*data);
  auto ref_bytes = bytes.subspan(kLayerMagic.size(), kRefSize);
  Hash32 mac = key.RecordMac(LayerMacInput(diff_id, ref_bytes));
  if (!ConstantTimeEqual(mac, bytes.subspan(kLayerMagic.size() + kRefSize))) {
    return DataLoss(ctx + ": layer record authentication failed");
  }
  ObjectRef ref;
  ByteReader r(ref_bytes);
  (void)(r.Bytes(ref.name) && r.Bytes(ref.salt) && r.U64(ref.size));
  return ref;
}

Status Store::CommitLayer(const StoreKey& key, std::string_view diff_id, const ObjectRef& index,
                          std::span<const Hash32> objects) const {
  SR_RETURN_IF_ERROR(CheckDiffId(diff_id));
  const std::string ctx = "committing layer " + std::string(diff_id) + " to store " + dir_;
  std::string staged_dir = "staging/" + RandomName("layer");
  SR_RETURN_IF_ERROR_CTX(env_.MkdirAt(dir_fd_.get(), staged_dir, 0700), ctx);
  ScopeGuard cleanup([&] { RemoveTree(JoinPath(dir_, staged_dir)).ok(); });

  std::vector<std::uint8_t> ref = EncodeRef(index);
  Hash32 mac = key.RecordMac(LayerMacInput(diff_id, ref));
  std::string record(kLayerMagic);
  record += AsChars(ref);
  record += AsChars(mac);
  std::string list;
  for (const Hash32& h : objects) list += HashHex(h) + "\n";
  SR_RETURN_IF_ERROR_CTX(WriteFileAtomic(env_, JoinPath(dir_, staged_dir + "/objects"), AsBytes(list), 0600),
                         ctx);
  SR_RETURN_IF_ERROR_CTX(WriteFileAtomic(env_, JoinPath(dir_, staged_dir + "/record"), AsBytes(record), 0600),
                         ctx);
  bool existed = false;
  SR_RETURN_IF_ERROR_CTX(
      RenameNoReplace(env_, dir_fd_.get(), staged_dir, "layers/" + key.LayerName(diff_id), &existed), ctx);
  if (!existed) cleanup.Dismiss();
  return OkStatus();
}

Status Store::CommitRoot(const StoreKey& key, const RootHash& root, std::span<const std::string> diff_ids,
                         std::span<const Hash32> objects) const {
  std::string text;
  for (const std::string& d : diff_ids) text += "layer " + key.LayerName(d) + "\n";
  for (const Hash32& h : objects) text += "object " + HashHex(h) + "\n";
  return WriteFileAtomic(env_, JoinPath(dir_, "roots/" + HashHex(root)), AsBytes(text), 0600)
      .WithContext("committing root " + HashHex(root) + " to store " + dir_);
}

bool Store::HasRoot(const RootHash& root) const {
  std::string rel = "roots/" + HashHex(root);
  return faccessat(dir_fd_.get(), rel.c_str(), F_OK, 0) == 0;
}

Result<std::vector<RootHash>> Store::ListRoots() const {
  SR_ASSIGN_OR_RETURN(auto names, ListDir(dir_fd_.get(), "roots"));
  std::vector<RootHash> roots;
  for (const std::string& n : names) {
    if (auto h = ParseHash(n); h.ok()) roots.push_back(*h);
  }
  return roots;
}

}  // namespace sealroot::fusefs
