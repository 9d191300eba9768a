// Shared by the agent transport tests: the independent clients (Go containerd/ttrpc built
// offline from Debian's GOPATH sources; Python protobuf/grpc code generated from agent/proto),
// a config with sockets in a temp dir, and raw socket helpers for malformed traffic.
#pragma once

#include <string>
#include <vector>

#include "agent/server/config.h"
#include "tests/support/process.h"

namespace sealroot::agent::testing {

struct TtrpcResult {
  int code = -1;  // grpc code; -1 when the client itself failed (e.g. could not connect)
  std::string payload;
  std::string message;
};

class ClientTools {
 public:
  ClientTools();  // builds the Go client and generates the Python code; throws on failure
  const std::string& python_gen_dir() const { return python_gen_dir_; }
  // Runs the Go ttrpc client: n concurrent calls on one connection.
  std::vector<TtrpcResult> GoCall(const std::string& address, const std::string& service,
                                  const std::string& method, const std::string& payload, int n = 1) const;

 private:
  sealroot::testing::TempDir dir_;
  std::string go_client_;
  std::string python_gen_dir_;
};

// ttrpc on <dir>/ttrpc.sock and tcp://127.0.0.1:<port>, gRPC on <dir>/grpc.sock, state and
// store under <dir>.
AgentConfig TestConfig(const std::string& dir, int tcp_port);

}  // namespace sealroot::agent::testing
