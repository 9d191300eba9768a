#include "agent/server/puller.h"

namespace sealroot::agent {
namespace {

// Wired to image/pull.h + agent/sealing once the image pipeline lands (design/api.md).
class PipelinePuller final : public ImagePuller {
 public:
  Result<PulledImage> Pull(const PullJob& job) override {
    return Unavailable("the image pull pipeline is not in this build yet");
  }
};

}  // namespace

Result<std::unique_ptr<ImagePuller>> MakePipelinePuller(const image::TrustOptions&) {
  return std::unique_ptr<ImagePuller>(std::make_unique<PipelinePuller>());
}

}  // namespace sealroot::agent
