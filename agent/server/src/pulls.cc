// PullImage and the pull machinery: joining pulls in flight, bounding concurrent pulls, and
// recording a sealed image only once its store is complete and the state that names it is
// durable.
#include <dirent.h>

#include <filesystem>

#include "agent/server/src/service_impl.h"
#include "agent/server/src/validate.h"
#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/log.h"

namespace sealroot::agent {
namespace {

constexpr int kMaxPrepareAttempts = 3;

// Bytes of the regular files under `dir` (a sealed store: objects, records, staging).
std::uint64_t DirectoryBytes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      std::uintmax_t size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

}  // namespace

std::string DerivedContainerId(std::string_view image) {
  Sha256Digest digest = Sha256Of(image);
  return "img-" + HexEncode(std::span<const std::uint8_t>(digest).first(16));
}

Result<::grpc::PullImageResponse> AgentServiceImpl::PullImage(const ::grpc::PullImageRequest& request) {
  SR_RETURN_IF_ERROR(ValidateImageRef(request.image(), config_.limits.max_image_ref_size));
  std::string id =
      request.container_id().empty() ? DerivedContainerId(request.image()) : request.container_id();
  SR_RETURN_IF_ERROR(ValidateContainerId(id));
  SecretBytes creds(AsBytes(request.source_creds()));
  SR_ASSIGN_OR_RETURN(std::string image_ref, PrepareContainerRoot(request.image(), id, std::move(creds)));
  ::grpc::PullImageResponse response;
  response.set_image_ref(image_ref);
  return response;
}

Result<std::string> AgentServiceImpl::PrepareContainerRoot(const std::string& image,
                                                           const std::string& container_id,
                                                           SecretBytes creds) {
  {
    MutexLock lock(mu_);
    auto it = state_.containers.find(container_id);
    if (it != state_.containers.end() && it->second.image == image) return state_.images.at(image).image_ref;
  }
  SR_ASSIGN_OR_RETURN(ResolvedRef resolved, Resolve(image, creds));
  const std::string& key = resolved.key;
  {
    MutexLock lock(mu_);
    auto it = state_.containers.find(container_id);
    if (it != state_.containers.end()) {
      if (it->second.image != key) {
        return AlreadyExists("container " + container_id + " already exists with image " + it->second.image);
      }
      return state_.images.at(key).image_ref;  // repeated PullImage for the same container
    }
  }
  // The image may be released by a concurrent RemoveContainer between the pull and attaching
  // this container to it; then pull again.
  for (int attempt = 0; attempt < kMaxPrepareAttempts; ++attempt) {
    SR_RETURN_IF_ERROR(EnsureImage(resolved, image, creds.Clone()));
    MutexLock lock(mu_);
    auto image_it = state_.images.find(key);
    if (image_it == state_.images.end()) continue;
    if (state_.containers.contains(container_id))
      return AlreadyExists("container " + container_id + " already exists");
    image_it->second.users.insert(container_id);
    ContainerRecord record;
    record.id = container_id;
    record.image = key;
    state_.containers.emplace(container_id, std::move(record));
    SR_RETURN_IF_ERROR(SaveOrRollBack(
        [&]() SR_REQUIRES(mu_) {
          state_.containers.erase(container_id);
          image_it->second.users.erase(container_id);
        },
        "recording container " + container_id));
    return image_it->second.image_ref;
  }
  return Status(Code::kAborted,
                "image " + key + " was removed while container " + container_id + " was being prepared");
}

Result<ResolvedRef> AgentServiceImpl::Resolve(const std::string& image, const SecretBytes& creds) {
  {
    // Already one image's key (pinned to its digest): reused without contacting the registry.
    MutexLock lock(mu_);
    if (state_.images.contains(image)) return ResolvedRef{image, ""};
  }
  PullJob job{image, creds.Clone(), "", nullptr, ""};
  // Resolving fetches a manifest and a config (up to 8 MiB): bounded like pulls.
  AcquirePullSlot();
  Result<ResolvedRef> resolved = deps_.puller->Resolve(job);
  ReleasePullSlot();
  if (!resolved.ok()) {
    SR_LOG(kWarning) << "PullImage " << image << ": " << resolved.status().ToString();
  }
  return resolved;
}

Status AgentServiceImpl::EnsureImage(const ResolvedRef& resolved, const std::string& image,
                                     SecretBytes creds) {
  const std::string& key = resolved.key;
  std::shared_ptr<InFlightPull> flight;
  bool leader = false;
  {
    MutexLock lock(mu_);
    if (state_.images.contains(key)) return OkStatus();
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      flight = std::make_shared<InFlightPull>();
      in_flight_.emplace(key, flight);
      leader = true;
    } else {
      flight = it->second;
    }
  }
  if (!leader) {
    SR_LOG(kInfo) << "PullImage " << image << ": joining the pull of " << key << " in flight";
    MutexLock lock(mu_);
    while (!flight->done) flight->cv.wait(mu_);
    return flight->status;
  }
  Status status = RunPull(resolved, image, std::move(creds));
  {
    MutexLock lock(mu_);
    flight->done = true;
    flight->status = status;
    in_flight_.erase(key);
  }
  flight->cv.notify_all();
  return status;
}

Status AgentServiceImpl::RunPull(const ResolvedRef& resolved, const std::string& image, SecretBytes creds) {
  AcquirePullSlot();
  ScopeGuard release_slot([this] { ReleasePullSlot(); });

  const std::uint64_t max_store = config_.limits.max_store_size;
  if (RecordedStoreBytes() >= max_store) {
    return ResourceExhausted(
        "pulling " + image +
        ": the sealed stores already fill the limit max_store_size = " + std::to_string(max_store));
  }

  std::array<std::uint8_t, 16> name_bytes{};
  RandomBytes(name_bytes);
  ImageRecord record;
  record.image = resolved.key;
  record.store_name = HexEncode(name_bytes);
  record.key = SecretBytes::Random(32);
  const std::string store = StorePath(record.store_name);
  // Until the record is persisted the store is an orphan: a crash leaves it for startup cleanup.
  ScopeGuard remove_store([&store] { (void)RemoveTree(store); });

  SR_LOG(kInfo) << "PullImage " << image << ": pulling into store " << record.store_name;
  PullJob job{image, std::move(creds), store, &record.key, resolved.manifest_digest};
  Result<PulledImage> pulled = deps_.puller->Pull(job);
  if (!pulled.ok()) {
    SR_LOG(kWarning) << "PullImage " << image << ": " << pulled.status().ToString();
    return std::move(pulled).status().WithContext("pulling " + image);
  }
  record.image_ref = pulled->image_ref;
  record.root_hash = pulled->root_hash;
  Result<ImageRunConfig> run = ParseImageRunConfig(pulled->config_json);
  if (!run.ok()) return std::move(run).status().WithContext("pulling " + image);
  record.run = std::move(*run);

  // Measured and recorded under one lock, so concurrent pulls cannot both fit in the same room.
  MutexLock commit_lock(store_commit_mu_);
  const std::uint64_t used = RecordedStoreBytes(), added = DirectoryBytes(store);
  if (used + added > max_store) {
    SR_LOG(kWarning) << "PullImage " << image << ": refused, the stores would exceed max_store_size";
    return ResourceExhausted("pulling " + image + ": its sealed store (" + std::to_string(added) +
                             " bytes) exceeds the limit max_store_size = " + std::to_string(max_store) +
                             " (" + std::to_string(used) + " bytes in use)");
  }
  MutexLock lock(mu_);
  state_.images.emplace(resolved.key, std::move(record));
  SR_RETURN_IF_ERROR(SaveOrRollBack([&]() SR_REQUIRES(mu_) { state_.images.erase(resolved.key); },
                                    "recording image " + image));
  remove_store.Dismiss();
  SR_LOG(kInfo) << "PullImage " << image << ": sealed, root " << fusefs::HashHex(pulled->root_hash);
  return OkStatus();
}

void AgentServiceImpl::AcquirePullSlot() {
  MutexLock lock(pull_slots_mu_);
  while (pulls_running_ >= config_.limits.max_concurrent_pulls) pull_slots_cv_.wait(pull_slots_mu_);
  ++pulls_running_;
}

void AgentServiceImpl::ReleasePullSlot() {
  {
    MutexLock lock(pull_slots_mu_);
    --pulls_running_;
  }
  pull_slots_cv_.notify_one();
}

std::uint64_t AgentServiceImpl::RecordedStoreBytes() {
  std::vector<std::string> stores;
  {
    MutexLock lock(mu_);
    for (const auto& [name, image] : state_.images) stores.push_back(StorePath(image.store_name));
  }
  std::uint64_t total = 0;
  for (const std::string& store : stores) total += DirectoryBytes(store);
  return total;
}

Status AgentServiceImpl::RemoveOrphanStores() {
  const std::string images_dir = JoinPath(config_.store_dir, "images");
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(images_dir.c_str()), closedir);
  if (!dir) return errno == ENOENT ? OkStatus() : ErrnoStatus("listing " + images_dir, errno);
  std::set<std::string> known;
  {
    MutexLock lock(mu_);
    for (const auto& [name, image] : state_.images) known.insert(image.store_name);
  }
  while (dirent* entry = readdir(dir.get())) {
    std::string name = entry->d_name;
    if (name == "." || name == ".." || known.contains(name)) continue;
    SR_LOG(kInfo) << "removing unrecorded image store " << name << " (an interrupted pull)";
    SR_RETURN_IF_ERROR(RemoveTree(JoinPath(images_dir, name)));
  }
  return OkStatus();
}

}  // namespace sealroot::agent
