#include "snapshotter/containerd_content.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "containerd_content.grpc.pb.h"

namespace sealroot::snapshotter {
namespace {

namespace content = ::containerd::services::content::v1;

Status FromGrpc(const ::grpc::Status& status, std::string_view what) {
  return Status(static_cast<Code>(status.error_code()), std::string(what) + ": " + status.error_message());
}

void Prepare(::grpc::ClientContext& context, const std::string& ns) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  context.AddMetadata("containerd-namespace", ns);
}

}  // namespace

ManifestReader ContainerdManifestReader(const std::string& address) {
  std::shared_ptr<content::Content::Stub> stub = content::Content::NewStub(
      ::grpc::CreateChannel("unix:" + address, ::grpc::InsecureChannelCredentials()));
  return [stub, address](const std::string& ns, const std::string& digest) -> Result<std::string> {
    const std::string where = "containerd at " + address + ", namespace " + ns;
    content::InfoRequest info_request;
    info_request.set_digest(digest);
    content::InfoResponse info;
    {
      ::grpc::ClientContext context;
      Prepare(context, ns);
      ::grpc::Status status = stub->Info(&context, info_request, &info);
      if (!status.ok()) return FromGrpc(status, where);
    }
    if (info.info().size() > kMaxManifestSize) {
      return ResourceExhausted(digest + " is " + std::to_string(info.info().size()) +
                               " bytes: larger than any manifest may be");
    }
    content::ReadContentRequest read_request;
    read_request.set_digest(digest);
    ::grpc::ClientContext context;
    Prepare(context, ns);
    std::unique_ptr<::grpc::ClientReader<content::ReadContentResponse>> reader =
        stub->Read(&context, read_request);
    std::string data;
    content::ReadContentResponse chunk;
    while (reader->Read(&chunk)) {
      if (static_cast<std::int64_t>(data.size() + chunk.data().size()) > kMaxManifestSize) {
        context.TryCancel();
        (void)reader->Finish();
        return ResourceExhausted(digest + ": larger than any manifest may be");
      }
      data += chunk.data();
    }
    ::grpc::Status status = reader->Finish();
    if (!status.ok()) return FromGrpc(status, where);
    return data;
  };
}

}  // namespace sealroot::snapshotter
