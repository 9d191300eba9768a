// Test material for the trust tests, made once per test binary by the real tools: keys and a
// certificate (openssl), a two-layer image (umoci) and its skopeo-encrypted variants (JWE RSA,
// JWE EC, PKCS7, two recipients with one layer encrypted), OpenPGP keys (gpg) for simple
// signing. Also an in-memory ImageSource for verifying signatures without a registry.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "image/source.h"
#include "tests/support/process.h"

namespace sealroot::testing::trust {

struct Material {
  TempDir dir;
  std::string gnupg_home;  // holds the trusted and the other signing key
  std::string fpr;         // trusted signing key fingerprint (keyring: pub.gpg, pub.asc)
  std::string other_fpr;   // another key (keyring: other.gpg)
  std::string Path(const std::string& name) const { return dir / name; }
};
// Builds the material on first use; aborts the test binary if a tool fails.
const Material& M();

// Runs a shell script in the material directory; fails the current test on error.
CommandResult MustShell(const std::string& script, const CommandOptions& options = {});

// An OCI layout image: its manifest (exact bytes) and layer descriptors.
struct LayoutImage {
  std::string dir;
  image::ManifestBytes manifest;
  nlohmann::json json;
  std::vector<image::Descriptor> layers;
  std::string BlobPath(const image::Digest& digest) const {
    return dir + "/blobs/sha256/" + std::string(digest.hex());
  }
};
LayoutImage ReadLayout(const std::string& dir, const std::string& tag = "t");
image::Descriptor ParseDescriptor(const nlohmann::json& j);

// A Reader over bytes in memory, optionally returning them in small pieces.
std::unique_ptr<Reader> BytesReader(std::string data, std::size_t piece = 1 << 16);
// Reads a reader to its end; the error if it fails.
Result<std::string> ReadAll(Reader& reader);
std::string ReadFileOrDie(const std::string& path);

// An ImageSource over fixed manifests (by tag or digest) and blobs (by digest).
class FakeSource final : public image::ImageSource {
 public:
  explicit FakeSource(image::Reference ref) : ref_(std::move(ref)) {}
  const image::Reference& reference() const override { return ref_; }
  Result<image::ManifestBytes> GetManifest(std::string_view tag_or_digest) override;
  Result<std::unique_ptr<Reader>> OpenBlob(const image::Descriptor& descriptor) override;

  // Adds a manifest under `tag` (and its digest); returns the ManifestBytes.
  image::ManifestBytes AddManifest(const std::string& tag, std::string bytes);
  image::Digest AddBlob(std::string bytes);

 private:
  image::Reference ref_;
  std::map<std::string, image::ManifestBytes, std::less<>> manifests_;
  std::map<std::string, std::string, std::less<>> blobs_;
};

// A docker:// reference for tests ("127.0.0.1:5000/app:v1").
image::Reference DockerReference(const std::string& host, const std::string& repo, const std::string& tag,
                                 const std::string& digest = "");

}  // namespace sealroot::testing::trust
