// KBS attestation over loopback: per round, a fresh client (a new session: auth, sim quote,
// attest) fetching the first resource, then N further resources in the same session. Prints
// medians and p90 in milliseconds.
//   kbs_bench URL MRENCLAVE_HEX ROUNDS FURTHER RESOURCE
//   KBS_BENCH_RESOURCES=DIR kbs_bench serve MRENCLAVE_HEX ROUNDS FURTHER RESOURCE
// "serve" runs the broker (kbs/broker.h, sim root) in this process on 127.0.0.1, so the figures
// need no other build; the URL form measures a running `sealroot keyprovider --kbs`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "kbs/broker.h"
#include "kbs/client.h"
#include "local-attest/sim.h"

using namespace sealroot;

namespace {

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

void Report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("%s: n=%zu median=%.2f ms p90=%.2f ms\n", what, v.size(), v[v.size() / 2],
              v[v.size() * 9 / 10]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: kbs_bench URL MRENCLAVE_HEX ROUNDS FURTHER RESOURCE\n");
    return 2;
  }
  local_attest::sgx::EnclaveIdentity id;
  auto mr = HexDecode(argv[2]);
  if (!mr.ok() || mr->size() != 32) return 2;
  std::copy(mr->begin(), mr->end(), id.mr_enclave.begin());
  id.attributes = {.flags = local_attest::sgx::kFlagMode64Bit, .xfrm = local_attest::sgx::kXfrmLegacy};
  auto tee = local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(id).value());
  int rounds = std::stoi(argv[3]), further = std::stoi(argv[4]);
  std::string url = argv[1];
  std::unique_ptr<kbs::Broker> broker;
  std::unique_ptr<kbs::HttpServer> server;
  if (url == "serve") {
    kbs::BrokerOptions options;
    local_attest::IdentityPolicy trusted;
    trusted.mr_enclave = id.mr_enclave;
    options.trusted.push_back(trusted);
    options.root_cert_pem = local_attest::sgx::DefaultSimQuotingEnclave().value()->root_cert_pem();
    options.resource_dir = std::getenv("KBS_BENCH_RESOURCES") ? std::getenv("KBS_BENCH_RESOURCES") : "";
    broker = kbs::Broker::Create(std::move(options)).value();
    kbs::Broker* raw = broker.get();
    server = kbs::HttpServer::Start("127.0.0.1:0", [raw](const kbs::HttpRequest& r) {
               return raw->Handle(r);
             }).value();
    url = "http://127.0.0.1:" + std::to_string(server->port());
  }
  std::vector<double> first, next;
  for (int i = 0; i < rounds; ++i) {
    auto client = kbs::KbsClient::Create(*tee, {.url = url}).value();
    auto t0 = std::chrono::steady_clock::now();
    auto r = client->GetResource(argv[5]);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    first.push_back(Ms(std::chrono::steady_clock::now() - t0));
    for (int j = 0; j < further; ++j) {
      auto t1 = std::chrono::steady_clock::now();
      if (!client->GetResource(argv[5]).ok()) return 1;
      next.push_back(Ms(std::chrono::steady_clock::now() - t1));
    }
  }
  Report("attestation + first resource", first);
  Report("each further resource", next);
  return 0;
}
