// A test app enclave: fetches its key release from a stub and prints what it received
// ("released <container> <root name> <root hash> <sha256 of the key>"), or "error: <why>".
// Built twice: as test_app and, with SEALROOT_TEST_IMPOSTOR, as test_impostor (same behaviour,
// different bytes, hence a different MRENCLAVE).
#include <iostream>

#include "base/args.h"
#include "base/encoding.h"
#include "local-attest/release.h"

namespace {

using namespace sealroot;

#ifdef SEALROOT_TEST_IMPOSTOR
constexpr const char kRole[] = "impostor";
#else
constexpr const char kRole[] = "app";
#endif

Status Run(int argc, char** argv) {
  ArgParser p("test_app", "", "test app enclave");
  for (const char* o : {"socket", "stub-mrenclave", "stub-mrsigner", "stub-prodid"}) p.Option(o, "V", o);
  SR_RETURN_IF_ERROR(p.Parse(argc, argv));
  local_attest::IdentityPolicy stub;
  if (auto m = p.Get("stub-mrenclave")) {
    SR_ASSIGN_OR_RETURN(auto bytes, HexDecode(*m));
    if (bytes.size() != 32) return InvalidArgument("--stub-mrenclave: 32 bytes");
    stub.mr_enclave.emplace();
    std::copy(bytes.begin(), bytes.end(), stub.mr_enclave->begin());
  }
  if (auto s = p.Get("stub-mrsigner")) {
    SR_ASSIGN_OR_RETURN(auto bytes, HexDecode(*s));
    if (bytes.size() != 32) return InvalidArgument("--stub-mrsigner: 32 bytes");
    local_attest::SignerPolicy signer;
    std::copy(bytes.begin(), bytes.end(), signer.mr_signer.begin());
    signer.isv_prod_id = static_cast<std::uint16_t>(std::stoi(p.Get("stub-prodid").value_or("0")));
    stub.signer = signer;
  }
  SR_ASSIGN_OR_RETURN(auto tee, local_attest::sgx::OpenTee());
  SR_ASSIGN_OR_RETURN(local_attest::KeyRelease release,
                      local_attest::FetchKeyRelease(*tee, p.Get("socket").value_or(""), stub));
  for (const local_attest::ReleasedRoot& root : release.roots) {
    std::cout << "released " << release.container_id << " " << root.name << " " << HexEncode(root.root_hash)
              << " " << HexEncode(Sha256Of(root.key.span())) << " by " << kRole << std::endl;
  }
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
