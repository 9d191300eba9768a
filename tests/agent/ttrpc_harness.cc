#include "tests/agent/ttrpc_harness.h"

#include <sstream>
#include <stdexcept>

#include "base/crypto.h"
#include "base/encoding.h"

namespace sealroot::agent::testing {
namespace {

using sealroot::testing::Run;
using sealroot::testing::Shell;
using sealroot::testing::SourceDir;

}  // namespace

ClientTools::ClientTools() {
  // GOPATH mode, offline: Debian ships containerd/ttrpc and its deps under /usr/share/gocode.
  const std::string gopath = dir_.path() + "/go";
  auto linked = Shell("mkdir -p " + gopath + "/src && ln -s " + SourceDir() + "/tests/agent/ttrpc_client " +
                      gopath + "/src/ttrpcclient");
  if (!linked.ok()) throw std::runtime_error("preparing GOPATH: " + linked.err);
  go_client_ = dir_.path() + "/ttrpc-client";
  sealroot::testing::CommandOptions go_options;
  go_options.cwd = gopath + "/src/ttrpcclient";
  go_options.env = {{"GOPATH", gopath + ":/usr/share/gocode"},
                    {"GO111MODULE", "off"},
                    {"GOCACHE", dir_.path() + "/gocache"},
                    {"GOFLAGS", ""},
                    {"CGO_ENABLED", "0"}};
  auto built = Run({"go", "build", "-o", go_client_, "."}, go_options);
  if (!built.ok()) throw std::runtime_error("building the Go ttrpc client: " + built.err);

  python_gen_dir_ = dir_.path() + "/py";
  auto generated =
      Run({"sh", "-c",
           "mkdir -p " + python_gen_dir_ + " && /usr/bin/python3 -m grpc_tools.protoc -I " + SourceDir() +
               "/agent/proto --python_out=" + python_gen_dir_ + " --grpc_python_out=" + python_gen_dir_ +
               " " + SourceDir() + "/agent/proto/*.proto"});
  if (!generated.ok()) throw std::runtime_error("generating Python code from agent/proto: " + generated.err);
}

std::vector<TtrpcResult> ClientTools::GoCall(const std::string& address, const std::string& service,
                                             const std::string& method, const std::string& payload,
                                             int n) const {
  auto run =
      Run({go_client_, "-n", std::to_string(n), address, service, method, HexEncode(AsBytes(payload))});
  std::vector<TtrpcResult> results;
  std::istringstream lines(run.out);
  std::string line;
  while (std::getline(lines, line)) {
    // "code=<n> payload=<hex> msg=<message>"
    TtrpcResult r;
    std::size_t payload_at = line.find(" payload="), msg_at = line.find(" msg=");
    if (!line.starts_with("code=") || payload_at == std::string::npos || msg_at == std::string::npos)
      continue;
    r.code = std::stoi(line.substr(5, payload_at - 5));
    auto bytes = HexDecode(line.substr(payload_at + 9, msg_at - payload_at - 9));
    if (bytes.ok()) r.payload.assign(bytes->begin(), bytes->end());
    r.message = line.substr(msg_at + 5);
    results.push_back(std::move(r));
  }
  if (results.empty()) results.push_back({-1, "", run.err});
  return results;
}

AgentConfig TestConfig(const std::string& dir, int tcp_port) {
  AgentConfig config;
  config.ttrpc.push_back(*ListenAddress::Parse("unix://" + dir + "/ttrpc.sock"));
  if (tcp_port != 0)
    config.ttrpc.push_back(*ListenAddress::Parse("tcp://127.0.0.1:" + std::to_string(tcp_port)));
  config.grpc.push_back(*ListenAddress::Parse("unix://" + dir + "/grpc.sock"));
  config.state_dir = dir + "/state";
  config.store_dir = dir + "/store";
  config.sealing.source = "file";  // outside an enclave: the development key file, chosen explicitly
  config.sealing.key_file = dir + "/state/seal.key";
  return config;
}

}  // namespace sealroot::agent::testing
