#include "snapshotter/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/file.h"
#include "base/log.h"

namespace sealroot::snapshotter {
namespace {

using nlohmann::json;

constexpr char kMetadataFile[] = "metadata.json";
constexpr int kMetadataVersion = 1;

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kView:
      return "view";
    case Kind::kActive:
      return "active";
    case Kind::kCommitted:
      return "committed";
  }
  return "unknown";
}

std::optional<Kind> ParseKind(std::string_view name) {
  for (Kind kind : {Kind::kView, Kind::kActive, Kind::kCommitted}) {
    if (KindName(kind) == name) return kind;
  }
  return std::nullopt;
}

std::int64_t ToNanos(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

Clock::time_point FromNanos(std::int64_t ns) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

Result<Usage> DiskUsage(const std::string& dir) {
  Usage usage;
  std::set<std::pair<dev_t, ino_t>> seen;
  auto count = [&](const std::string& path) -> Status {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return ErrnoStatus("measuring " + path, errno);
    if (seen.emplace(st.st_dev, st.st_ino).second) {
      ++usage.inodes;
      usage.size += static_cast<std::int64_t>(st.st_blocks) * 512;
    }
    return OkStatus();
  };
  SR_RETURN_IF_ERROR(count(dir));
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) SR_RETURN_IF_ERROR(count(it->path().string()));
  if (ec) return ErrnoStatus("measuring " + dir, ec.value());
  return usage;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& root) {
  if (root.empty() || root[0] != '/') return InvalidArgument("snapshotter root must be an absolute path");
  SR_RETURN_IF_ERROR(MakeDirs(root + "/snapshots", 0700));
  if (chmod(root.c_str(), 0700) != 0) return ErrnoStatus("chmod " + root, errno);
  std::unique_ptr<Store> store(new Store(root));
  store->index_off_ = access("/sys/module/overlay/parameters/index", F_OK) == 0;
  MutexLock lock(store->mu_);
  SR_RETURN_IF_ERROR_CTX(store->Load(), "loading " + root + "/" + kMetadataFile);
  SR_RETURN_IF_ERROR(store->CleanupLocked());
  return store;
}

Status Store::Load() {
  const std::string path = root_ + "/" + kMetadataFile;
  if (access(path.c_str(), F_OK) != 0) return OkStatus();  // a new store
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return DataLoss("not a JSON object");
  if (doc.value("version", 0) != kMetadataVersion) return DataLoss("unknown metadata version");
  const json& next = doc["next_id"];
  const json& snapshots = doc["snapshots"];
  if (!next.is_number_unsigned() || !snapshots.is_object()) return DataLoss("malformed metadata");
  next_id_ = next.get<std::uint64_t>();
  for (const auto& [name, s] : snapshots.items()) {
    if (!s.is_object() || !s["id"].is_number_unsigned() || !s["kind"].is_string() ||
        !s["parent"].is_string() || !s["labels"].is_object() || !s["created"].is_number_integer() ||
        !s["updated"].is_number_integer() || !s["size"].is_number_integer() ||
        !s["inodes"].is_number_integer()) {
      return DataLoss("malformed snapshot " + name);
    }
    std::optional<Kind> kind = ParseKind(s["kind"].get<std::string>());
    if (!kind) return DataLoss("snapshot " + name + ": unknown kind");
    Record r{.id = s["id"].get<std::uint64_t>(),
             .kind = *kind,
             .parent = s["parent"].get<std::string>(),
             .created = FromNanos(s["created"].get<std::int64_t>()),
             .updated = FromNanos(s["updated"].get<std::int64_t>()),
             .usage = {s["size"].get<std::int64_t>(), s["inodes"].get<std::int64_t>()}};
    for (const auto& [k, v] : s["labels"].items()) {
      if (!v.is_string()) return DataLoss("snapshot " + name + ": label " + k + " is not a string");
      r.labels[k] = v.get<std::string>();
    }
    if (r.id >= next_id_) return DataLoss("snapshot " + name + ": id beyond next_id");
    snapshots_.emplace(name, std::move(r));
  }
  for (const auto& [name, r] : snapshots_) {
    if (!r.parent.empty() && !snapshots_.contains(r.parent)) {
      return DataLoss("snapshot " + name + ": parent " + r.parent + " is missing");
    }
  }
  return OkStatus();
}

Status Store::Save() const {
  json snapshots = json::object();
  for (const auto& [name, r] : snapshots_) {
    snapshots[name] = {
        {"id", r.id},           {"kind", KindName(r.kind)},      {"parent", r.parent},
        {"labels", r.labels},   {"created", ToNanos(r.created)}, {"updated", ToNanos(r.updated)},
        {"size", r.usage.size}, {"inodes", r.usage.inodes}};
  }
  json doc = {{"version", kMetadataVersion}, {"next_id", next_id_}, {"snapshots", std::move(snapshots)}};
  std::string text;
  try {
    text = doc.dump();
  } catch (const json::type_error& e) {
    return InvalidArgument(std::string("a snapshot name or label is not UTF-8: ") + e.what());
  }
  return WriteFileAtomic(root_ + "/" + kMetadataFile, text, 0600)
      .WithContext("saving the snapshotter metadata");
}

std::string Store::Dir(std::uint64_t id) const {
  return root_ + "/snapshots/" + std::to_string(id);
}

Info Store::ToInfo(const std::string& name, const Record& record) {
  return Info{.name = name,
              .parent = record.parent,
              .kind = record.kind,
              .labels = record.labels,
              .created = record.created,
              .updated = record.updated};
}

std::vector<Mount> Store::MountsOf(const Record& record) const {
  std::vector<std::uint64_t> parents;  // nearest first
  for (std::string p = record.parent; !p.empty();) {
    const Record& parent = snapshots_.at(p);  // Load and Create keep every parent present
    parents.push_back(parent.id);
    p = parent.parent;
  }
  if (parents.empty()) {
    // Overlay needs a lower layer: a single layer is its directory itself.
    return {Mount{.type = "bind",
                  .source = FsDir(record.id),
                  .options = {record.kind == Kind::kView ? "ro" : "rw", "rbind"}}};
  }
  if (record.kind != Kind::kActive && parents.size() == 1) {
    return {Mount{.type = "bind", .source = FsDir(parents[0]), .options = {"ro", "rbind"}}};
  }
  std::vector<std::string> options;
  if (index_off_) options.push_back("index=off");
  if (record.kind == Kind::kActive) {
    options.push_back("workdir=" + Dir(record.id) + "/work");
    options.push_back("upperdir=" + FsDir(record.id));
  }
  std::string lower = "lowerdir=";
  for (std::size_t i = 0; i < parents.size(); ++i) lower += (i ? ":" : "") + FsDir(parents[i]);
  options.push_back(std::move(lower));
  return {Mount{.type = "overlay", .source = "overlay", .options = std::move(options)}};
}

Result<std::vector<Mount>> Store::Prepare(const std::string& key, const std::string& parent,
                                          const Labels& labels) {
  return Create(Kind::kActive, key, parent, labels);
}

Result<std::vector<Mount>> Store::View(const std::string& key, const std::string& parent,
                                       const Labels& labels) {
  return Create(Kind::kView, key, parent, labels);
}

Result<std::vector<Mount>> Store::Create(Kind kind, const std::string& key, const std::string& parent,
                                         const Labels& labels) {
  if (key.empty()) return InvalidArgument("a snapshot needs a key");
  MutexLock lock(mu_);
  if (snapshots_.contains(key)) return AlreadyExists("snapshot " + key + ": already exists");
  const Record* parent_record = nullptr;
  if (!parent.empty()) {
    auto it = snapshots_.find(parent);
    if (it == snapshots_.end()) return NotFound("parent snapshot " + parent + " does not exist");
    if (it->second.kind != Kind::kCommitted) {
      return InvalidArgument("parent " + parent + " is not a committed snapshot");
    }
    parent_record = &it->second;
  }
  const std::uint64_t id = next_id_++;
  // Built under a temporary name and renamed into place: a crash leaves no half-made snapshot
  // directory that a snapshot's id could name.
  const std::string staging = root_ + "/snapshots/new-" + std::to_string(id);
  SR_RETURN_IF_ERROR(RemoveTree(staging));
  if (mkdir(staging.c_str(), 0700) != 0) return ErrnoStatus("creating " + staging, errno);
  auto fail = [&](Status status) {
    (void)RemoveTree(staging);
    return status;
  };
  if (mkdir((staging + "/fs").c_str(), 0755) != 0)
    return fail(ErrnoStatus("creating " + staging + "/fs", errno));
  if (kind == Kind::kActive && mkdir((staging + "/work").c_str(), 0711) != 0) {
    return fail(ErrnoStatus("creating " + staging + "/work", errno));
  }
  if (parent_record != nullptr) {
    // The new layer's root directory starts owned as its parent's (containerd's overlayfs does).
    struct stat st;
    if (stat(FsDir(parent_record->id).c_str(), &st) != 0) {
      return fail(ErrnoStatus("stat of parent " + parent + "'s layer", errno));
    }
    if (lchown((staging + "/fs").c_str(), st.st_uid, st.st_gid) != 0) {
      return fail(ErrnoStatus("chown " + staging + "/fs", errno));
    }
  }
  if (rename(staging.c_str(), Dir(id).c_str()) != 0) return fail(ErrnoStatus("renaming " + staging, errno));
  const Clock::time_point now = Clock::now();
  auto [it, inserted] = snapshots_.emplace(
      key,
      Record{.id = id, .kind = kind, .parent = parent, .labels = labels, .created = now, .updated = now});
  if (Status saved = Save(); !saved.ok()) {
    snapshots_.erase(it);
    (void)RemoveTree(Dir(id));
    return saved;
  }
  return MountsOf(it->second);
}

Status Store::CommitPlaceholder(const std::string& name, const std::string& parent, const Labels& labels) {
  if (name.empty()) return InvalidArgument("a snapshot needs a name");
  MutexLock lock(mu_);
  if (snapshots_.contains(name)) return AlreadyExists("snapshot " + name + ": already exists");
  if (!parent.empty()) {
    auto it = snapshots_.find(parent);
    if (it == snapshots_.end()) return NotFound("parent snapshot " + parent + " does not exist");
    if (it->second.kind != Kind::kCommitted) {
      return InvalidArgument("parent " + parent + " is not a committed snapshot");
    }
  }
  const std::uint64_t id = next_id_++;
  const std::string staging = root_ + "/snapshots/new-" + std::to_string(id);
  SR_RETURN_IF_ERROR(RemoveTree(staging));
  // The empty fs/ keeps the overlay of the container's root mountable on the host.
  if (mkdir(staging.c_str(), 0700) != 0) return ErrnoStatus("creating " + staging, errno);
  if (mkdir((staging + "/fs").c_str(), 0755) != 0 || rename(staging.c_str(), Dir(id).c_str()) != 0) {
    Status status = ErrnoStatus("creating placeholder " + name, errno);
    (void)RemoveTree(staging);
    return status;
  }
  const Clock::time_point now = Clock::now();
  Record record{
      .id = id, .kind = Kind::kCommitted, .parent = parent, .labels = labels, .created = now, .updated = now};
  record.labels[kPlaceholderLabel] = "true";
  auto [it, inserted] = snapshots_.emplace(name, std::move(record));
  if (Status saved = Save(); !saved.ok()) {
    snapshots_.erase(it);
    (void)RemoveTree(Dir(id));
    return saved;
  }
  return OkStatus();
}

Result<std::vector<Mount>> Store::Mounts(const std::string& key) const {
  MutexLock lock(mu_);
  auto it = snapshots_.find(key);
  if (it == snapshots_.end()) return NotFound("snapshot " + key + " does not exist");
  if (it->second.kind == Kind::kCommitted) {
    return FailedPrecondition("snapshot " + key +
                              " is committed: only active snapshots and views have mounts");
  }
  return MountsOf(it->second);
}

Status Store::Commit(const std::string& name, const std::string& key, const Labels& labels) {
  if (name.empty()) return InvalidArgument("a committed snapshot needs a name");
  std::uint64_t id = 0;
  {
    MutexLock lock(mu_);
    auto it = snapshots_.find(key);
    if (it == snapshots_.end()) return NotFound("snapshot " + key + " does not exist");
    if (it->second.kind != Kind::kActive) return FailedPrecondition("snapshot " + key + " is not active");
    if (snapshots_.contains(name)) return AlreadyExists("committed snapshot " + name + ": already exists");
    id = it->second.id;
  }
  // Measured outside the lock: a large layer must not hold up every other call.
  SR_ASSIGN_OR_RETURN(Usage usage, DiskUsage(FsDir(id)));
  MutexLock lock(mu_);
  auto it = snapshots_.find(key);
  if (it == snapshots_.end() || it->second.id != id || it->second.kind != Kind::kActive) {
    return Status(Code::kAborted, "snapshot " + key + " changed while it was being committed");
  }
  if (snapshots_.contains(name)) return AlreadyExists("committed snapshot " + name + ": already exists");
  Record committed = it->second;
  committed.kind = Kind::kCommitted;
  committed.labels = labels;
  committed.created = committed.updated = Clock::now();
  committed.usage = usage;
  Record active = std::move(it->second);
  snapshots_.erase(it);
  snapshots_.emplace(name, std::move(committed));
  if (Status saved = Save(); !saved.ok()) {
    snapshots_.erase(name);
    snapshots_.emplace(key, std::move(active));
    return saved;
  }
  // The work directory only serves an active overlay.
  (void)RemoveTree(Dir(id) + "/work");
  return OkStatus();
}

Status Store::Remove(const std::string& key) {
  MutexLock lock(mu_);
  auto it = snapshots_.find(key);
  if (it == snapshots_.end()) return NotFound("snapshot " + key + " does not exist");
  for (const auto& [name, r] : snapshots_) {
    if (r.parent == key)
      return FailedPrecondition("cannot remove snapshot " + key + ": " + name + " is its child");
  }
  Record removed = std::move(it->second);
  snapshots_.erase(it);
  if (Status saved = Save(); !saved.ok()) {
    snapshots_.emplace(key, std::move(removed));
    return saved;
  }
  // The metadata no longer names it: a crash from here on leaves a directory Cleanup removes.
  const std::string doomed = root_ + "/snapshots/rm-" + std::to_string(removed.id);
  if (rename(Dir(removed.id).c_str(), doomed.c_str()) != 0 || !RemoveTree(doomed).ok()) {
    SR_LOG(kWarning) << "snapshot " << key << " removed; its directory is left for cleanup";
  }
  return OkStatus();
}

Result<Info> Store::Stat(const std::string& key) const {
  MutexLock lock(mu_);
  auto it = snapshots_.find(key);
  if (it == snapshots_.end()) return NotFound("snapshot " + key + " does not exist");
  return ToInfo(key, it->second);
}

Result<Info> Store::Update(const Info& info, std::span<const std::string> field_paths) {
  MutexLock lock(mu_);
  auto it = snapshots_.find(info.name);
  if (it == snapshots_.end()) return NotFound("snapshot " + info.name + " does not exist");
  Labels labels = it->second.labels;
  if (field_paths.empty()) labels = info.labels;
  for (const std::string& path : field_paths) {
    if (path == "labels") {
      labels = info.labels;
    } else if (path.starts_with("labels.")) {
      const std::string label = path.substr(7);
      auto given = info.labels.find(label);
      if (given == info.labels.end() || given->second.empty()) {
        labels.erase(label);
      } else {
        labels[label] = given->second;
      }
    } else {
      return InvalidArgument("cannot update field " + path + " of snapshot " + info.name);
    }
  }
  Record before = it->second;
  it->second.labels = std::move(labels);
  it->second.updated = Clock::now();
  if (Status saved = Save(); !saved.ok()) {
    it->second = std::move(before);
    return saved;
  }
  return ToInfo(info.name, it->second);
}

Result<std::vector<Info>> Store::List(const Filter& filter) const {
  MutexLock lock(mu_);
  std::vector<Info> out;
  for (const auto& [name, r] : snapshots_) {
    Info info = ToInfo(name, r);
    auto fields = [&info](std::span<const std::string> path) -> std::optional<std::string> {
      if (path.empty()) return std::nullopt;
      if (path.size() == 1 && path[0] == "kind") return std::string(KindName(info.kind));
      if (path.size() == 1 && path[0] == "name") return info.name;
      if (path.size() == 1 && path[0] == "parent") return info.parent;
      if (path[0] == "labels" && path.size() > 1) {
        std::string label;
        for (std::size_t i = 1; i < path.size(); ++i) label += (i > 1 ? "." : "") + path[i];
        auto l = info.labels.find(label);
        if (l != info.labels.end()) return l->second;
      }
      return std::nullopt;
    };
    if (filter.Match(fields)) out.push_back(std::move(info));
  }
  return out;
}

Result<Usage> Store::GetUsage(const std::string& key) const {
  std::uint64_t id = 0;
  {
    MutexLock lock(mu_);
    auto it = snapshots_.find(key);
    if (it == snapshots_.end()) return NotFound("snapshot " + key + " does not exist");
    if (it->second.kind != Kind::kActive) return it->second.usage;
    id = it->second.id;
  }
  return DiskUsage(FsDir(id));
}

Status Store::Cleanup() {
  MutexLock lock(mu_);
  return CleanupLocked();
}

Status Store::CleanupLocked() {
  std::set<std::string> owned;
  for (const auto& [name, r] : snapshots_) owned.insert(std::to_string(r.id));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root_ + "/snapshots", ec)) {
    const std::string name = entry.path().filename().string();
    if (owned.contains(name)) continue;
    SR_LOG(kInfo) << "removing " << entry.path().string() << ": no snapshot owns it";
    SR_RETURN_IF_ERROR(RemoveTree(entry.path().string()));
  }
  if (ec) return ErrnoStatus("listing " + root_ + "/snapshots", ec.value());
  return OkStatus();
}

}  // namespace sealroot::snapshotter
