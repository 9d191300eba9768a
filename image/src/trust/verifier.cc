#include "image/src/trust/verifier.h"

#include <sys/stat.h>

#include <cstdlib>

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
  std::string path = options.policy_path;
  if (path.empty() && options.search_policy) {
    SR_ASSIGN_OR_RETURN(path, FindPolicyFile());
  }
  if (path.empty()) return Policy::Parse(kDefaultPolicy, "default policy");
  auto text = ReadFile(path, 4 << 20);
  if (!text.ok()) return std::move(text).status().WithContext("reading the signature policy");
  SR_LOG(kDebug) << "signature policy: " << path;
  return Policy::Parse(*text, "policy " + path);
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
      std::string why = ref.ToString() + " (manifest " + manifest.digest.str() + ") rejected by " +
                        policy_.origin() + ", scope \"" + selected.scope + "\", requirement " +
                        req.description + ": " + status.message() + hint_;
      if (status.code() == Code::kPermissionDenied) return PermissionDenied(std::move(why));
      return Status(status.code(), std::move(why));
    }
  }
  SR_LOG(kInfo) << ref.ToString() << ": accepted by policy scope \"" << selected.scope << "\"";
  return OkStatus();
}

}  // namespace sealroot::image::trust

namespace sealroot::image {

Result<std::string> FindPolicyFile() {
  std::vector<std::string> candidates;
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    candidates.push_back(std::string(home) + "/.config/containers/policy.json");
  }
  candidates.emplace_back(trust::kSystemPolicy);
  std::string tried;
  for (const std::string& path : candidates) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return path;
    tried += (tried.empty() ? "" : " nor ") + path;
  }
  return NotFound("no signature policy: neither " + tried +
                  " exists; give one with --policy FILE (containers-policy.json(5)), or "
                  "--insecure-policy to accept any image");
}

Result<std::unique_ptr<SignatureVerifier>> MakeSignatureVerifier(const TrustOptions& options) {
  SR_ASSIGN_OR_RETURN(trust::Policy policy, trust::LoadPolicy(options));
  SR_ASSIGN_OR_RETURN(trust::RegistriesD registries, trust::LoadRegistries(options));
  std::string hint;
  if (options.search_policy) {
    hint =
        "; to accept it, change that policy, choose another with --policy FILE, or accept any image with "
        "--insecure-policy";
  }
  return std::unique_ptr<SignatureVerifier>(
      std::make_unique<trust::PolicyVerifier>(std::move(policy), std::move(registries), std::move(hint)));
}

}  // namespace sealroot::image
