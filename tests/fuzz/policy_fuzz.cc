// containers-policy.json parsing (image/trust/policy.h) and the image references it scopes.
// A policy that loads must be enforceable: every reference selects a non-empty requirement list
// from a scope that applies to it. A reference that parses prints back to one that parses to the
// same text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "image/reference.h"
#include "image/src/trust/policy.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace sealroot::image;

const char* const kProbeReferences[] = {
    "docker://docker.io/library/busybox:latest",
    "docker://127.0.0.1:5000/ns/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "docker://quay.io/a/b/c:v1",
    "oci:/var/images/app:v1",
    "oci-archive:/tmp/app.tar",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto policy = trust::Policy::Parse(text, "fuzz policy"); policy.ok()) {
    for (const char* probe : kProbeReferences) {
      auto ref = Reference::Parse(probe);
      FUZZ_CHECK(ref.ok());
      trust::Policy::Selection selection = policy->For(*ref);
      FUZZ_CHECK(selection.requirements != nullptr);
      FUZZ_CHECK(!selection.requirements->empty());
    }
  }

  if (auto ref = Reference::Parse(text); ref.ok()) {
    const std::string printed = ref->ToString();
    auto again = Reference::Parse(printed);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->ToString() == printed);
    (void)trust::ScopesFor(*ref);
  }
  return 0;
}
