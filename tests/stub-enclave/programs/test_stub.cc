// A test stub enclave: serves one container's key release under a policy given on the command
// line, prints "ready" once listening and one "session: ..." line per session, and exits after
// --sessions sessions. Launched through the sim launcher by the handshake tests.
#include <condition_variable>
#include <iostream>
#include <mutex>

#include "base/args.h"
#include "base/encoding.h"
#include "local-attest/release.h"

namespace {

using namespace sealroot;

template <std::size_t N>
Result<std::array<std::uint8_t, N>> Hex(const std::string& text) {
  SR_ASSIGN_OR_RETURN(auto bytes, HexDecode(text));
  if (bytes.size() != N) return InvalidArgument("expected " + std::to_string(N) + " hex bytes: " + text);
  std::array<std::uint8_t, N> out;
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

Status Run(int argc, char** argv) {
  ArgParser p("test_stub", "", "test stub enclave");
  for (const char* o : {"socket", "container-id", "spec-digest", "root-hash", "key", "mrenclave", "mrsigner",
                        "prodid", "min-svn", "sessions", "timeout-ms"}) {
    p.Option(o, "V", o);
  }
  p.Flag("allow-debug", "accept DEBUG app enclaves");
  SR_RETURN_IF_ERROR(p.Parse(argc, argv));
  local_attest::IdentityPolicy policy;
  policy.allow_debug = p.Bool("allow-debug");
  if (auto m = p.Get("mrenclave")) {
    SR_ASSIGN_OR_RETURN(policy.mr_enclave, Hex<32>(*m));
  }
  if (auto s = p.Get("mrsigner")) {
    local_attest::SignerPolicy signer;
    SR_ASSIGN_OR_RETURN(signer.mr_signer, Hex<32>(*s));
    signer.isv_prod_id = static_cast<std::uint16_t>(std::stoi(p.Get("prodid").value_or("0")));
    signer.min_isv_svn = static_cast<std::uint16_t>(std::stoi(p.Get("min-svn").value_or("0")));
    policy.signer = signer;
  }
  local_attest::KeyRelease release;
  release.container_id = p.Get("container-id").value_or("");
  SR_ASSIGN_OR_RETURN(release.spec_digest, Hex<32>(p.Get("spec-digest").value_or("")));
  local_attest::ReleasedRoot root;
  root.name = "rootfs";
  SR_ASSIGN_OR_RETURN(root.root_hash, Hex<32>(p.Get("root-hash").value_or("")));
  SR_ASSIGN_OR_RETURN(auto key, HexDecode(p.Get("key").value_or("")));
  root.key = SecretBytes(key);
  release.roots.push_back(std::move(root));
  release.upper_key = SecretBytes::Random(local_attest::kContainerKeySize);
  release.exec_key = SecretBytes::Random(local_attest::kContainerKeySize);

  const int sessions = std::stoi(p.Get("sessions").value_or("1"));
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  local_attest::ReleaseServerOptions options;
  options.io_timeout = std::chrono::milliseconds(std::stoi(p.Get("timeout-ms").value_or("5000")));
  options.on_session = [&](const Status& s) {
    std::lock_guard lock(mu);
    std::cout << (s.ok() ? std::string("session: ok") : "session: refused: " + s.message()) << std::endl;
    ++done;
    cv.notify_all();
  };
  SR_ASSIGN_OR_RETURN(auto tee, local_attest::sgx::OpenTee());
  SR_ASSIGN_OR_RETURN(auto server,
                      local_attest::KeyReleaseServer::Start(*tee, p.Get("socket").value_or(""), policy,
                                                            std::move(release), options));
  std::cout << "ready" << std::endl;
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done >= sessions; });
  lock.unlock();
  server->Stop();
  return OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  Status s = Run(argc, argv);
  if (!s.ok()) {
    std::cout << "error: " << s.message() << std::endl;
    return 3;
  }
  return 0;
}
