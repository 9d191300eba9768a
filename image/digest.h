// Content digests ("sha256:<64 lowercase hex>") and OCI descriptors. A Digest can only be built
// by Parse, which validates it, so a Digest is always safe to put into a path or URL
// (CVE-2024-3727).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/crypto.h"
#include "base/status.h"

namespace sealroot::image {

class Digest {
 public:
  // Accepts only "sha256:" + 64 lowercase hex characters.
  static Result<Digest> Parse(std::string_view text);
  static Digest FromSha256(const Sha256Digest& hash);

  const std::string& str() const { return text_; }
  std::string_view hex() const { return std::string_view(text_).substr(7); }
  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  explicit Digest(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

// An OCI content descriptor: what a blob is, how big, and its digest.
struct Descriptor {
  std::string media_type;
  Digest digest;
  std::int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

}  // namespace sealroot::image
