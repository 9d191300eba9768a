#include "image/src/trust/verifier.h"

#include <sys/stat.h>

#include "base/file.h"
#include "base/log.h"
#include "image/src/trust/signatures.h"

namespace sealroot::image::trust {

Result<Policy> LoadPolicy(const TrustOptions& options) {
  if (!options.policy_text.empty()) {
    if (!options.policy_path.empty() || options.insecure_policy) {
      return InvalidArgument("a policy from the key broker excludes --policy and --insecure-policy");
    }
    return Policy::Parse(options.policy_text, "policy from the key broker");
  }
  if (options.insecure_policy) {
    if (!options.policy_path.empty())
      return InvalidArgument("--policy and --insecure-policy exclude each other");
    return Policy::Parse(kInsecurePolicy, "--insecure-policy");
  }
  if (options.policy_path.empty()) return Policy::Parse(kDefaultPolicy, "default policy");
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(options.policy_path, 4 << 20));
  return Policy::Parse(text, "policy " + options.policy_path);
}

Result<RegistriesD> LoadRegistries(const TrustOptions& options) {
  std::string dir = options.registries_d;
  struct stat st {};
  if (dir.empty() && ::stat(std::string(kSystemRegistriesD).c_str(), &st) == 0) dir = kSystemRegistriesD;
  return RegistriesD::Load(dir);
}

Status PolicyVerifier::VerifyImage(ImageSource& source, const ManifestBytes& manifest) {
  const Reference& ref = source.reference();
  Policy::Selection selected = policy_.For(ref);
  SignatureSet signatures(source, manifest, registries_);
  for (const Requirement& req : *selected.requirements) {
    Status status = EvaluateRequirement(req, signatures);
    if (!status.ok()) {
      std::string why = ref.ToString() + " (manifest " + manifest.digest.str() +
                        ") rejected by policy scope \"" + selected.scope + "\", requirement " +
                        req.description + ": " + status.message();
      if (status.code() == Code::kPermissionDenied) return PermissionDenied(std::move(why));
      return Status(status.code(), std::move(why));
    }
  }
  SR_LOG(kInfo) << ref.ToString() << ": accepted by policy scope \"" << selected.scope << "\"";
  return OkStatus();
}

}  // namespace sealroot::image::trust

namespace sealroot::image {

Result<std::unique_ptr<SignatureVerifier>> MakeSignatureVerifier(const TrustOptions& options) {
  SR_ASSIGN_OR_RETURN(trust::Policy policy, trust::LoadPolicy(options));
  SR_ASSIGN_OR_RETURN(trust::RegistriesD registries, trust::LoadRegistries(options));
  return std::unique_ptr<SignatureVerifier>(
      std::make_unique<trust::PolicyVerifier>(std::move(policy), std::move(registries)));
}

}  // namespace sealroot::image
