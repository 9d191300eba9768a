// The policy-enforcing SignatureVerifier, and how options become a policy.
#pragma once

#include <memory>

#include "image/src/trust/lookaside.h"
#include "image/src/trust/policy.h"
#include "image/trust.h"

namespace sealroot::image::trust {

// The policy used when no --policy is given: reject everything (design/trust.md).
inline constexpr std::string_view kDefaultPolicy = R"({"default":[{"type":"reject"}]})";
inline constexpr std::string_view kInsecurePolicy = R"({"default":[{"type":"insecureAcceptAnything"}]})";
inline constexpr std::string_view kSystemRegistriesD = "/etc/containers/registries.d";
inline constexpr std::string_view kSystemPolicy = "/etc/containers/policy.json";

// The policy `options` select (--policy, --insecure-policy, or the default) and registries.d.
Result<Policy> LoadPolicy(const TrustOptions& options);
Result<RegistriesD> LoadRegistries(const TrustOptions& options);

class PolicyVerifier final : public SignatureVerifier {
 public:
  // `hint` ends every rejection message (how the user may choose another policy).
  PolicyVerifier(Policy policy, RegistriesD registries, std::string hint = "")
      : policy_(std::move(policy)), registries_(std::move(registries)), hint_(std::move(hint)) {}
  Status VerifyImage(ImageSource& source, const ManifestBytes& manifest) override;

 private:
  Policy policy_;
  RegistriesD registries_;
  std::string hint_;
};

}  // namespace sealroot::image::trust
