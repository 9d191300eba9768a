#include "boot/spec/exec.h"

namespace sealroot::boot {

Sha256Digest ExecRequestMac(const SecretBytes& exec_key, std::span<const std::uint8_t> challenge,
                            std::string_view request) {
  HmacSha256 mac(exec_key.span());
  mac.Update(AsBytes("sealroot exec v1"));
  mac.Update(challenge);
  mac.Update(AsBytes(request));
  return mac.Finish();
}

}  // namespace sealroot::boot
