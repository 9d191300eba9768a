#include "image/digest.h"

#include "base/encoding.h"

namespace sealroot::image {

Result<Digest> Digest::Parse(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.substr(0, kPrefix.size()) != kPrefix || !IsLowerHex(text.substr(kPrefix.size()), 64)) {
    std::string shown(text.substr(0, 80));
    return InvalidArgument("malformed digest '" + shown + "' (expected sha256:<64 lowercase hex>)");
  }
  return Digest(std::string(text));
}

Digest Digest::FromSha256(const Sha256Digest& hash) {
  return Digest("sha256:" + HexEncode(hash));
}

}  // namespace sealroot::image
