// `sealroot keyprovider`: the offline key broker. It serves ocicrypt's KeyProviderService
// (gRPC, package "keyprovider") and unwraps layer keys with the private keys of a directory;
// with --stdio it answers one request as an ocicrypt `cmd` key provider instead. This is the
// seam where a real key broker, releasing keys only after remote attestation, plugs in.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "agent/cli/commands.h"
#include "base/cli.h"
#include "base/crypto.h"
#include "base/file.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "image/trust/keyprovider.h"
#include "keyprovider.grpc.pb.h"

namespace sealroot::cli {
namespace {

using image::trust::PrivateKey;

class KeyProviderService final : public keyprovider::KeyProviderService::Service {
 public:
  explicit KeyProviderService(std::vector<PrivateKey> keys) : keys_(std::move(keys)) {}

  grpc::Status UnWrapKey(grpc::ServerContext*, const keyprovider::keyProviderKeyWrapProtocolInput* in,
                         keyprovider::keyProviderKeyWrapProtocolOutput* out) override {
    Result<SecretBytes> response =
        image::trust::ServeUnwrapRequest(in->keyproviderkeywrapprotocolinput(), keys_);
    if (!response.ok()) {
      SR_LOG(kWarning) << "keyprovider: unwrap refused: " << response.status().message();
      grpc::StatusCode code = response.status().code() == Code::kNotFound
                                  ? grpc::StatusCode::NOT_FOUND
                                  : grpc::StatusCode::INVALID_ARGUMENT;
      return grpc::Status(code, response.status().message());
    }
    out->set_keyproviderkeywrapprotocoloutput(std::string(AsChars(response->span())));
    SR_LOG(kInfo) << "keyprovider: unwrapped a layer key";
    return grpc::Status::OK;
  }

  grpc::Status WrapKey(grpc::ServerContext*, const keyprovider::keyProviderKeyWrapProtocolInput*,
                       keyprovider::keyProviderKeyWrapProtocolOutput*) override {
    // Images are encrypted by the image owner (skopeo/ocicrypt); the broker only releases keys.
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this key broker only unwraps");
  }

 private:
  const std::vector<PrivateKey> keys_;
};

int ServeStdio(const ArgParser& parser, const std::vector<PrivateKey>& keys) {
  Result<std::string> request = ReadFd(0, 1 << 20);
  if (!request.ok()) return ReportError(parser, request.status());
  Result<SecretBytes> response = image::trust::ServeUnwrapRequest(*request, keys);
  if (!response.ok()) return ReportError(parser, response.status());
  Status wrote = WriteAll(1, response->span());
  return wrote.ok() ? kExitOk : ReportError(parser, wrote);
}

int ServeGrpc(const ArgParser& parser, const std::string& address, std::vector<PrivateKey> keys) {
  KeyProviderService service(std::move(keys));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0)
    return ReportError(parser, Unavailable("keyprovider: cannot listen on " + address));
  InstallInterruptHandler();
  std::cout << "keyprovider: listening on " << address << std::endl;
  while (!Interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return kExitOk;
}

}  // namespace

int KeyProvider(Args args) {
  ArgParser parser(
      "sealroot keyprovider", "",
      "Serve ocicrypt's KeyProviderService, unwrapping layer keys with the private keys in --keys.");
  AddCommonFlags(parser);
  parser.Option("keys", "DIR", "directory of private keys (PEM or DER)");
  parser.Option("passphrase-file", "FILE", "passphrase for encrypted keys");
  parser.Option("listen", "ADDR", "gRPC address, e.g. 127.0.0.1:50051 or unix:/run/kp.sock");
  parser.Flag("stdio", "answer one request on stdin/stdout (an ocicrypt `cmd` provider)");
  if (auto exit = ParseCommandLine(parser, args)) return *exit;
  if (!parser.Has("keys")) return ReportError(parser, InvalidArgument("--keys DIR is required"));
  if (parser.Bool("stdio") == parser.Has("listen")) {
    return ReportError(parser, InvalidArgument("give exactly one of --listen ADDR and --stdio"));
  }
  auto keys = image::trust::LoadKeyDirectory(*parser.Get("keys"), parser.Get("passphrase-file").value_or(""));
  if (!keys.ok()) return ReportError(parser, keys.status());
  if (parser.Bool("stdio")) return ServeStdio(parser, *keys);
  return ServeGrpc(parser, *parser.Get("listen"), std::move(keys).value());
}

}  // namespace sealroot::cli
