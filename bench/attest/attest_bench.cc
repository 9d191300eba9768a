// Attestation benchmarks (driven by bench/attest/run.sh, results in RESULTS.md):
//   attest_bench handshake N   N key releases (sgx_dh + policy + AEAD release + ack) between a
//                              stub and an app enclave whose sim CPUs answer over sockets, as
//                              launched enclaves do; prints median/p90/min in microseconds
//   attest_bench measure FILE  MRENCLAVE of FILE (an ELF) with the default layout; prints MB/s
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "base/encoding.h"
#include "base/file.h"
#include "local-attest/release.h"
#include "local-attest/sim.h"
#include "stub-enclave/measure.h"

namespace {

using namespace sealroot;
using Clock = std::chrono::steady_clock;

// A sim CPU served on its own thread over a socketpair, exactly as the launcher does.
class ServedCpu {
 public:
  explicit ServedCpu(local_attest::sgx::EnclaveIdentity id) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) std::abort();
    server_ = std::make_unique<local_attest::sgx::SimCpuServer>(local_attest::sgx::SimCpu::Create(id).value(),
                                                                UniqueFd(pair[0]));
    tee_ = local_attest::sgx::NewRemoteSimTee(UniqueFd(pair[1]));
    thread_ = std::thread([this] { (void)server_->Serve(); });
  }
  ~ServedCpu() {
    server_->Shutdown();
    thread_.join();
  }
  local_attest::sgx::Tee& tee() { return *tee_; }

 private:
  std::unique_ptr<local_attest::sgx::SimCpuServer> server_;
  std::unique_ptr<local_attest::sgx::Tee> tee_;
  std::thread thread_;
};

local_attest::sgx::EnclaveIdentity Identity(std::uint8_t tag, const local_attest::sgx::ConfigId& config_id) {
  local_attest::sgx::EnclaveIdentity id;
  id.mr_enclave.fill(tag);
  id.mr_signer.fill(0x33);
  id.attributes = {.flags = local_attest::sgx::kFlagMode64Bit | local_attest::sgx::kFlagKss,
                   .xfrm = local_attest::sgx::kXfrmLegacy};
  id.config_id = config_id;
  return id;
}

int Handshake(int n) {
  const Sha256Digest spec = Sha256Of(std::string_view("spec"));
  ServedCpu stub(Identity(1, {}));
  ServedCpu app(Identity(2, local_attest::ContainerConfigId("bench", spec)));
  local_attest::KeyRelease release;
  release.container_id = "bench";
  release.spec_digest = spec;
  release.roots.push_back({"rootfs", Sha256Of(std::string_view("root")), SecretBytes::Random(32)});
  release.upper_key = SecretBytes::Random(local_attest::kContainerKeySize);
  release.exec_key = SecretBytes::Random(local_attest::kContainerKeySize);
  local_attest::IdentityPolicy app_policy, stub_policy;
  app_policy.mr_enclave = Identity(2, {}).mr_enclave;
  stub_policy.mr_enclave = Identity(1, {}).mr_enclave;
  const std::string socket = "/tmp/sealroot-attest-bench-" + std::to_string(::getpid()) + ".sock";
  auto server =
      local_attest::KeyReleaseServer::Start(stub.tee(), socket, app_policy, std::move(release)).value();
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    auto r = local_attest::FetchKeyRelease(app.tee(), socket, stub_policy);
    auto t1 = Clock::now();
    if (!r.ok()) {
      std::cerr << "handshake failed: " << r.status().ToString() << "\n";
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  server->Stop();
  std::sort(us.begin(), us.end());
  std::cout << "handshake+release n=" << n << " median_us=" << us[us.size() / 2]
            << " p90_us=" << us[us.size() * 9 / 10] << " min_us=" << us.front() << "\n";
  return 0;
}

int Measure(const std::string& path) {
  auto t0 = Clock::now();
  auto image = stub_enclave::EnclaveImage::Load(path, stub_enclave::EnclaveConfig{});
  auto t1 = Clock::now();
  if (!image.ok()) {
    std::cerr << image.status().ToString() << "\n";
    return 1;
  }
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  const double mb = static_cast<double>(image->measurement().measured_bytes) / 1e6;
  std::cout << "measure mrenclave=" << HexEncode(image->measurement().mr_enclave) << " measured_mb=" << mb
            << " seconds=" << seconds << " mb_per_s=" << mb / seconds << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "handshake" && argc == 3) return Handshake(std::max(1, std::atoi(argv[2])));
  if (mode == "measure" && argc == 3) return Measure(argv[2]);
  std::cerr << "usage: attest_bench handshake N | measure FILE\n";
  return 2;
}
