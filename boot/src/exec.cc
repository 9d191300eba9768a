#include "boot/exec.h"

namespace sealroot::boot {

SecretBytes ExecKey(std::span<const std::uint8_t> store_key, std::string_view container_id) {
  HmacSha256 mac(store_key);
  mac.Update(AsBytes("sealroot exec key v1"));
  mac.Update(AsBytes(container_id));
  Sha256Digest key = mac.Finish();
  SecretBytes out(key);
  SecureWipe(key);
  return out;
}

Sha256Digest ExecRequestMac(const SecretBytes& exec_key, std::span<const std::uint8_t> challenge,
                            std::string_view request) {
  HmacSha256 mac(exec_key.span());
  mac.Update(AsBytes("sealroot exec v1"));
  mac.Update(challenge);
  mac.Update(AsBytes(request));
  return mac.Finish();
}

}  // namespace sealroot::boot
