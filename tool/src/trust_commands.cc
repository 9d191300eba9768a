// `sealroot keyprovider`: the owner's key broker.
//   --kbs         the KBS protocol over HTTP (kbs/broker.h): resources only for an enclave whose
//                 SGX quote verifies against the configured root and whose identity the policy
//                 trusts. This is the broker an agent attests to.
//   --dev-unwrap  development mode, no attestation: ocicrypt's KeyProviderService (gRPC, package
//                 "keyprovider"), or one `cmd` request with --stdio, unwrapping layer keys with the
//                 private keys of a directory for whoever asks (the host included).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include "base/cli.h"
#include "base/crypto.h"
#include "base/file.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "image/trust/keyprovider.h"
#include "kbs/broker.h"
#include "kbs/http_server.h"
#include "keyprovider.grpc.pb.h"
#include "local-attest/sim.h"
#include "tool/src/commands.h"

namespace sealroot::tool {
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
  if (!request.ok()) return cli::ReportError(parser, request.status());
  Result<SecretBytes> response = image::trust::ServeUnwrapRequest(*request, keys);
  if (!response.ok()) return cli::ReportError(parser, response.status());
  Status wrote = WriteAll(1, response->span());
  return wrote.ok() ? cli::kExitOk : cli::ReportError(parser, wrote);
}

int ServeGrpc(const ArgParser& parser, const std::string& address, std::vector<PrivateKey> keys) {
  KeyProviderService service(std::move(keys));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0)
    return cli::ReportError(parser, Unavailable("keyprovider: cannot listen on " + address));
  InstallInterruptHandler();
  std::cout << "keyprovider: listening on " << address << std::endl;
  while (!Interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return cli::kExitOk;
}

int ServeKbs(const ArgParser& parser) {
  for (const char* required : {"listen", "policy", "resources"}) {
    if (!parser.Has(required)) {
      return cli::ReportError(parser, InvalidArgument(std::string("--kbs needs --") + required));
    }
  }
  if (parser.Has("root-cert") == parser.Bool("sim-root")) {
    return cli::ReportError(parser,
                            InvalidArgument("--kbs needs exactly one of --root-cert FILE and --sim-root"));
  }
  kbs::BrokerOptions options;
  auto trusted = kbs::LoadBrokerPolicy(*parser.Get("policy"));
  if (!trusted.ok()) return cli::ReportError(parser, trusted.status());
  options.trusted = std::move(trusted).value();
  options.resource_dir = *parser.Get("resources");
  if (parser.Bool("sim-root")) {
    auto qe = local_attest::sgx::DefaultSimQuotingEnclave();
    if (!qe.ok()) return cli::ReportError(parser, qe.status());
    options.root_cert_pem = (*qe)->root_cert_pem();
    SR_LOG(kWarning) << "keyprovider: trusting the SGX simulation's root: quotes give no security";
  } else {
    auto pem = ReadFile(*parser.Get("root-cert"), 1 << 20);
    if (!pem.ok()) return cli::ReportError(parser, pem.status());
    options.root_cert_pem = std::move(pem).value();
  }
  if (parser.Has("tls-cert") != parser.Has("tls-key")) {
    return cli::ReportError(parser, InvalidArgument("--tls-cert and --tls-key go together"));
  }
  std::optional<kbs::TlsIdentity> tls;
  if (parser.Has("tls-cert")) tls = kbs::TlsIdentity{*parser.Get("tls-cert"), *parser.Get("tls-key")};
  auto broker = kbs::Broker::Create(std::move(options));
  if (!broker.ok()) return cli::ReportError(parser, broker.status());
  kbs::Broker* raw = broker->get();
  auto server = kbs::HttpServer::Start(
      *parser.Get("listen"), [raw](const kbs::HttpRequest& request) { return raw->Handle(request); }, tls);
  if (!server.ok()) return cli::ReportError(parser, server.status());
  InstallInterruptHandler();
  std::cout << "keyprovider: KBS listening on port " << (*server)->port() << (tls ? " (https)" : " (http)")
            << std::endl;
  while (!Interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  (*server)->Stop();
  return cli::kExitOk;
}

}  // namespace

int KeyProvider(Args args) {
  ArgParser parser("sealroot keyprovider", "",
                   "The owner's key broker: --kbs serves the KBS attestation protocol (resources only for "
                   "attested enclaves the policy trusts); --dev-unwrap unwraps layer keys for anyone "
                   "(development only).");
  cli::AddCommonFlags(parser);
  parser.Flag("kbs",
              "serve the KBS protocol (HTTP, or HTTPS with --tls-cert): attestation, then resources sealed "
              "to the enclave");
  parser.Option("listen", "ADDR", "--kbs: HOST:PORT (port 0 picks one); --dev-unwrap: gRPC address");
  parser.Option("policy", "FILE", "--kbs: the trusted enclave identities (JSON)");
  parser.Option("resources", "DIR", "--kbs: resource store, DIR/<repository>/<type>/<tag>");
  parser.Option("root-cert", "FILE", "--kbs: root CA of quotes (Intel's SGX root CA on hardware)");
  parser.Flag("sim-root", "--kbs: trust the SGX simulation's quote root (no security; tests, demos)");
  parser.Option("tls-cert", "FILE", "--kbs: serve HTTPS with this PEM certificate (chain)");
  parser.Option("tls-key", "FILE", "--kbs: the private key of --tls-cert");
  parser.Flag("dev-unwrap", "development mode: unwrap layer keys for any caller, no attestation");
  parser.Option("keys", "DIR", "--dev-unwrap: directory of private keys (PEM or DER)");
  parser.Option("passphrase-file", "FILE", "--dev-unwrap: passphrase for encrypted keys");
  parser.Flag("stdio", "--dev-unwrap: answer one request on stdin/stdout (an ocicrypt `cmd` provider)");
  if (auto exit = cli::ParseCommandLine(parser, args)) return *exit;
  if (parser.Bool("kbs") == parser.Bool("dev-unwrap")) {
    return cli::ReportError(parser, InvalidArgument("give exactly one of --kbs and --dev-unwrap"));
  }
  if (parser.Bool("kbs")) return ServeKbs(parser);
  if (!parser.Has("keys")) return cli::ReportError(parser, InvalidArgument("--keys DIR is required"));
  if (parser.Bool("stdio") == parser.Has("listen")) {
    return cli::ReportError(parser, InvalidArgument("give exactly one of --listen ADDR and --stdio"));
  }
  SR_LOG(kWarning) << "keyprovider: development mode: layer keys are unwrapped for any caller";
  auto keys = image::trust::LoadKeyDirectory(*parser.Get("keys"), parser.Get("passphrase-file").value_or(""));
  if (!keys.ok()) return cli::ReportError(parser, keys.status());
  if (parser.Bool("stdio")) return ServeStdio(parser, *keys);
  return ServeGrpc(parser, *parser.Get("listen"), std::move(keys).value());
}

}  // namespace sealroot::tool
