// Manifest and index parsing (image/manifest.h) on arbitrary bodies under each transport media
// type. Beyond not crashing: what parses keeps the header's promises (no negative sizes, valid
// digests), platform selection returns one of the index's own descriptors, and a platform that
// parses prints back to itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "image/manifest.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace sealroot::image;

constexpr std::string_view kTransportTypes[] = {
    "", kOciManifest, kDockerManifest, kOciIndex, kDockerManifestList, "application/json", kOciConfig,
};

void CheckDescriptor(const Descriptor& d) {
  FUZZ_CHECK(d.size >= 0);
  auto again = Digest::Parse(d.digest.str());
  FUZZ_CHECK(again.ok() && *again == d.digest);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view transport = kTransportTypes[data[0] % std::size(kTransportTypes)];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  (void)DetectManifestMediaType(body, transport);
  if (auto manifest = ParseManifest(body, transport); manifest.ok()) {
    FUZZ_CHECK(IsManifestMediaType(manifest->media_type));
    CheckDescriptor(manifest->config);
    for (const Descriptor& layer : manifest->layers) CheckDescriptor(layer);
  }
  if (auto index = ParseIndex(body, transport); index.ok()) {
    FUZZ_CHECK(IsIndexMediaType(index->media_type));
    for (const IndexEntry& entry : index->manifests) CheckDescriptor(entry.descriptor);
    for (const Platform& wanted :
         {Platform::Host(), Platform{"linux", "arm64", ""}, Platform{"linux", "arm", "v7"}}) {
      auto chosen = SelectPlatform(*index, wanted);
      if (!chosen.ok()) continue;
      bool listed = false;
      for (const IndexEntry& entry : index->manifests) listed |= entry.descriptor.digest == chosen->digest;
      FUZZ_CHECK(listed);
    }
  }
  if (auto platform = Platform::Parse(body); platform.ok()) {
    auto again = Platform::Parse(platform->ToString());
    FUZZ_CHECK(again.ok() && *again == *platform);
  }
  return 0;
}
