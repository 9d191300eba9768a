// Placeholder until the sealed filesystem issue lands.
#include "agent/sealing/sealing.h"

namespace sealroot::sealing {

Result<std::unique_ptr<SealingSink>> OpenSealingSink(SealOptions) {
  return Unimplemented("the sealed store is not built yet");
}

Result<SecretBytes> LoadOrCreateKey(const std::optional<std::string>&, std::optional<int>) {
  return Unimplemented("the sealed store is not built yet");
}

}  // namespace sealroot::sealing
