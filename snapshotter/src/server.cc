#include "snapshotter/server.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/socket.h"
#include "containerd_snapshots.grpc.pb.h"

namespace sealroot::snapshotter {
namespace {

namespace api = ::containerd::services::snapshots::v1;
using ::grpc::ServerContext;

// How many snapshots one List message carries.
constexpr std::size_t kListBatch = 100;

::grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return ::grpc::Status::OK;
  return ::grpc::Status(static_cast<::grpc::StatusCode>(status.code()), status.message());
}

Labels ToLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  return Labels(labels.begin(), labels.end());
}

void FillMounts(const std::vector<Mount>& mounts, google::protobuf::RepeatedPtrField<api::Mount>* out) {
  for (const Mount& m : mounts) {
    api::Mount* mount = out->Add();
    mount->set_type(m.type);
    mount->set_source(m.source);
    for (const std::string& option : m.options) mount->add_options(option);
  }
}

void FillTime(Clock::time_point t, google::protobuf::Timestamp* out) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  out->set_seconds(ns / 1'000'000'000);
  out->set_nanos(static_cast<std::int32_t>(ns % 1'000'000'000));
}

void FillInfo(const Info& info, api::Info* out) {
  out->set_name(info.name);
  out->set_parent(info.parent);
  out->set_kind(static_cast<api::Kind>(info.kind));
  FillTime(info.created, out->mutable_created_at());
  FillTime(info.updated, out->mutable_updated_at());
  for (const auto& [k, v] : info.labels) (*out->mutable_labels())[k] = v;
}

// The containerd namespace of a call: its header, else the prefix containerd's metadata store
// puts on every key it passes to a snapshotter ("<namespace>/<sequence>/<key>").
std::string NamespaceOf(const ServerContext& context, const std::string& key) {
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("containerd-namespace"); it != metadata.end()) {
    return std::string(it->second.data(), it->second.size());
  }
  return key.substr(0, key.find('/'));
}

class SnapshotsService final : public api::Snapshots::Service {
 public:
  SnapshotsService(Store& store, const Classifier& classifier) : store_(store), classifier_(classifier) {}

  ::grpc::Status Prepare(ServerContext* context, const api::PrepareSnapshotRequest* request,
                         api::PrepareSnapshotResponse* response) override {
    const Labels labels = ToLabels(request->labels());
    // Only containerd's unpacker names the snapshot a layer will be committed as: that is the
    // Prepare a confidential image's layer answers with a placeholder.
    if (labels.contains(kSnapshotRefLabel)) {
      Result<std::optional<std::string>> why =
          classifier_.Classify(NamespaceOf(*context, request->key()), labels);
      if (!why.ok()) return ToGrpc(why.status().WithContext("preparing " + request->key()));
      if (*why) return Placeholder(*request, labels, **why);
    }
    Result<std::vector<Mount>> mounts = store_.Prepare(request->key(), request->parent(), labels);
    if (!mounts.ok()) return ToGrpc(mounts.status());
    FillMounts(*mounts, response->mutable_mounts());
    return ::grpc::Status::OK;
  }

  ::grpc::Status View(ServerContext*, const api::ViewSnapshotRequest* request,
                      api::ViewSnapshotResponse* response) override {
    Result<std::vector<Mount>> mounts =
        store_.View(request->key(), request->parent(), ToLabels(request->labels()));
    if (!mounts.ok()) return ToGrpc(mounts.status());
    FillMounts(*mounts, response->mutable_mounts());
    return ::grpc::Status::OK;
  }

  ::grpc::Status Mounts(ServerContext*, const api::MountsRequest* request,
                        api::MountsResponse* response) override {
    Result<std::vector<Mount>> mounts = store_.Mounts(request->key());
    if (!mounts.ok()) return ToGrpc(mounts.status());
    FillMounts(*mounts, response->mutable_mounts());
    return ::grpc::Status::OK;
  }

  ::grpc::Status Commit(ServerContext*, const api::CommitSnapshotRequest* request,
                        google::protobuf::Empty*) override {
    return ToGrpc(store_.Commit(request->name(), request->key(), ToLabels(request->labels())));
  }

  ::grpc::Status Remove(ServerContext*, const api::RemoveSnapshotRequest* request,
                        google::protobuf::Empty*) override {
    return ToGrpc(store_.Remove(request->key()));
  }

  ::grpc::Status Stat(ServerContext*, const api::StatSnapshotRequest* request,
                      api::StatSnapshotResponse* response) override {
    Result<Info> info = store_.Stat(request->key());
    if (!info.ok()) return ToGrpc(info.status());
    FillInfo(*info, response->mutable_info());
    return ::grpc::Status::OK;
  }

  ::grpc::Status Update(ServerContext*, const api::UpdateSnapshotRequest* request,
                        api::UpdateSnapshotResponse* response) override {
    Info info{.name = request->info().name(), .labels = ToLabels(request->info().labels())};
    std::vector<std::string> paths(request->update_mask().paths().begin(),
                                   request->update_mask().paths().end());
    Result<Info> updated = store_.Update(info, paths);
    if (!updated.ok()) return ToGrpc(updated.status());
    FillInfo(*updated, response->mutable_info());
    return ::grpc::Status::OK;
  }

  ::grpc::Status List(ServerContext*, const api::ListSnapshotsRequest* request,
                      ::grpc::ServerWriter<api::ListSnapshotsResponse>* writer) override {
    std::vector<std::string> filters(request->filters().begin(), request->filters().end());
    Result<Filter> filter = Filter::Parse(filters);
    if (!filter.ok()) return ToGrpc(filter.status());
    Result<std::vector<Info>> infos = store_.List(*filter);
    if (!infos.ok()) return ToGrpc(infos.status());
    api::ListSnapshotsResponse batch;
    for (const Info& info : *infos) {
      FillInfo(info, batch.add_info());
      if (static_cast<std::size_t>(batch.info_size()) == kListBatch) {
        if (!writer->Write(batch))
          return ::grpc::Status(::grpc::StatusCode::CANCELLED, "the client went away");
        batch.Clear();
      }
    }
    if (batch.info_size() > 0 && !writer->Write(batch)) {
      return ::grpc::Status(::grpc::StatusCode::CANCELLED, "the client went away");
    }
    return ::grpc::Status::OK;
  }

  ::grpc::Status Usage(ServerContext*, const api::UsageRequest* request,
                       api::UsageResponse* response) override {
    Result<snapshotter::Usage> usage = store_.GetUsage(request->key());
    if (!usage.ok()) return ToGrpc(usage.status());
    response->set_size(usage->size);
    response->set_inodes(usage->inodes);
    return ::grpc::Status::OK;
  }

  ::grpc::Status Cleanup(ServerContext*, const api::CleanupRequest*, google::protobuf::Empty*) override {
    return ToGrpc(store_.Cleanup());
  }

 private:
  // containerd's metadata store, on ALREADY_EXISTS for a Prepare with a snapshot.ref, looks for
  // a committed snapshot with that label and the same parent, and takes it as the layer.
  ::grpc::Status Placeholder(const api::PrepareSnapshotRequest& request, const Labels& labels,
                             const std::string& why) {
    if (Status s = store_.CommitPlaceholder(request.key(), request.parent(), labels); !s.ok())
      return ToGrpc(s);
    auto label = [&labels](const char* name) {
      auto it = labels.find(name);
      return it == labels.end() ? std::string("?") : it->second;
    };
    SR_LOG(kInfo) << "confidential image " << label(kImageRefLabel) << " (" << why << "): layer "
                  << label(kLayerDigestLabel) << " (chain " << label(kSnapshotRefLabel)
                  << ") is a placeholder; the stub enclave pulls it";
    return ::grpc::Status(::grpc::StatusCode::ALREADY_EXISTS,
                          "layer of a confidential image: a placeholder snapshot stands for it, the stub "
                          "enclave pulls the image");
  }

  Store& store_;
  const Classifier& classifier_;
};

class GrpcServer final : public Server {
 public:
  GrpcServer(std::unique_ptr<SnapshotsService> service, std::unique_ptr<::grpc::Server> server)
      : service_(std::move(service)), server_(std::move(server)) {}
  ~GrpcServer() override { Shutdown(); }
  void Shutdown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }

 private:
  std::unique_ptr<SnapshotsService> service_;
  std::unique_ptr<::grpc::Server> server_;
};

}  // namespace

Result<std::unique_ptr<Server>> Serve(const std::string& address, Store& store,
                                      const Classifier& classifier) {
  SR_RETURN_IF_ERROR(PrepareUnixSocketPath(address));
  auto service = std::make_unique<SnapshotsService>(store, classifier);
  ::grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + address, ::grpc::InsecureServerCredentials());
  builder.RegisterService(service.get());
  // gRPC creates the socket itself: 0600 from the start (startup is single-threaded here).
  mode_t old_mask = umask(0177);
  std::unique_ptr<::grpc::Server> server = builder.BuildAndStart();
  umask(old_mask);
  if (!server) return Unavailable("cannot serve gRPC on " + address);
  SR_LOG(kInfo) << "serving containerd's snapshot API on " << address;
  return std::unique_ptr<Server>(std::make_unique<GrpcServer>(std::move(service), std::move(server)));
}

}  // namespace sealroot::snapshotter
