// `sealroot inspect`'s trust view: layer encryption recipients and signature status.
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "image/src/trust/decryptor.h"
#include "image/src/trust/jwe.h"
#include "image/src/trust/pkcs7.h"
#include "image/src/trust/signatures.h"
#include "image/src/trust/verifier.h"
#include "image/trust.h"

namespace sealroot::image {
namespace {

using nlohmann::json;
using namespace trust;

std::vector<std::string> Recipients(const Descriptor& layer) {
  std::vector<std::string> out;
  for (const auto& [name, value] : layer.annotations) {
    if (!name.starts_with("org.opencontainers.image.enc.keys.")) continue;
    std::string scheme = name.substr(34);
    auto blobs = SplitWrappedKeys(value);
    if (!blobs.ok()) {
      out.push_back(scheme + " (malformed)");
      continue;
    }
    for (const auto& blob : *blobs) {
      Result<std::vector<std::string>> r =
          scheme == "jwe"     ? JweRecipients(AsChars(blob))
          : scheme == "pkcs7" ? Pkcs7Recipients(blob)
                              : Result<std::vector<std::string>>(std::vector<std::string>{""});
      if (!r.ok()) {
        out.push_back(scheme + " (malformed)");
        continue;
      }
      for (const std::string& who : *r) out.push_back(who.empty() ? scheme : scheme + " " + who);
    }
  }
  return out;
}

Result<std::vector<LayerTrustInfo>> InspectLayers(const ManifestBytes& manifest,
                                                  const TrustOptions& options) {
  json j = json::parse(manifest.bytes, nullptr, false);
  std::vector<LayerTrustInfo> out;
  if (j.is_discarded() || !j.is_object() || !j.contains("layers") || !j["layers"].is_array()) return out;
  SR_ASSIGN_OR_RETURN(std::unique_ptr<LayerDecryptor> decryptor, MakeLayerDecryptor(options));
  auto* ocicrypt = dynamic_cast<OcicryptDecryptor*>(decryptor.get());
  for (const json& l : j["layers"]) {
    LayerTrustInfo info;
    info.index = out.size();
    info.media_type = l.value("mediaType", "");
    info.digest = l.value("digest", "");
    info.encrypted = info.media_type.ends_with(kEncryptedSuffix);
    Result<Digest> digest = Digest::Parse(info.digest);
    if (info.encrypted && digest.ok()) {
      Descriptor desc{info.media_type, *digest, l.value("size", std::int64_t{0}), {}};
      if (auto a = l.find("annotations"); a != l.end() && a->is_object()) {
        for (const auto& [k, v] : a->items()) {
          if (v.is_string()) desc.annotations[k] = v.get<std::string>();
        }
      }
      info.recipients = Recipients(desc);
      info.decryptable = ocicrypt != nullptr && ocicrypt->UnwrapPrivateOptions(desc).ok();
    }
    out.push_back(std::move(info));
  }
  return out;
}

// Lists every signature, each checked against the policy requirements of its kind.
void InspectSignatures(const Requirements& reqs, SignatureSet& set, TrustReport& report) {
  auto simple = set.Simple();
  if (simple.ok()) {
    for (const std::string& sig : **simple) {
      SignatureTrustInfo info{
          "simple-signing", set.simple_location(), "", "", "", false, "no signedBy requirement applies"};
      for (const Requirement& req : reqs) {
        if (req.type != Requirement::Type::kSignedBy) continue;
        SignatureCheck c = CheckSimpleSignature(req, sig, set);
        info.signed_reference = c.signed_reference;
        info.signed_digest = c.signed_digest;
        info.signer = c.signer;
        info.verified = c.status.ok();
        info.detail = c.status.message();
        if (info.verified) break;
      }
      report.signatures.push_back(std::move(info));
    }
  } else {
    report.signatures.push_back(
        {"simple-signing", set.simple_location(), "", "", "", false, simple.status().message()});
  }
  auto cosign = set.Sigstore();
  std::string tag = SigstoreTag(set.manifest().digest);
  if (!cosign.ok()) {
    report.signatures.push_back({"cosign", tag, "", "", "", false, cosign.status().message()});
    return;
  }
  for (const SigstoreSignature& sig : **cosign) {
    SignatureTrustInfo info{"cosign", tag, "", "", "", false, "no sigstoreSigned requirement applies"};
    for (const Requirement& req : reqs) {
      if (req.type != Requirement::Type::kSigstoreSigned) continue;
      SignatureCheck c = CheckSigstoreSignature(req, sig, set);
      info.signed_reference = c.signed_reference;
      info.signed_digest = c.signed_digest;
      info.verified = c.status.ok();
      info.detail = c.status.message();
      if (info.verified) break;
    }
    report.signatures.push_back(std::move(info));
  }
}

}  // namespace

Result<TrustReport> InspectTrust(ImageSource& source, const ManifestBytes& manifest,
                                 const TrustOptions& options) {
  TrustReport report;
  SR_ASSIGN_OR_RETURN(Policy policy, LoadPolicy(options));
  SR_ASSIGN_OR_RETURN(RegistriesD registries, LoadRegistries(options));
  Policy::Selection selected = policy.For(source.reference());
  report.policy_scope = selected.scope;
  for (const Requirement& req : *selected.requirements) report.requirements.push_back(req.description);
  SR_ASSIGN_OR_RETURN(report.layers, InspectLayers(manifest, options));
  SignatureSet set(source, manifest, registries);
  InspectSignatures(*selected.requirements, set, report);
  PolicyVerifier verifier(std::move(policy), std::move(registries));
  Status verdict = verifier.VerifyImage(source, manifest);
  report.accepted = verdict.ok();
  report.verdict = verdict.ok() ? "accepted" : verdict.message();
  return report;
}

std::string FormatTrustReport(const TrustReport& report) {
  std::string out = "policy: scope \"" + report.policy_scope + "\":";
  for (const std::string& r : report.requirements) out += " " + r;
  out += "\npolicy verdict: " + report.verdict + "\n";
  for (const LayerTrustInfo& l : report.layers) {
    out += "layer " + std::to_string(l.index) + " " + l.digest + ": ";
    if (!l.encrypted) {
      out += "not encrypted\n";
      continue;
    }
    out += "encrypted for";
    for (const std::string& r : l.recipients) out += " [" + r + "]";
    out += l.decryptable ? "; a configured key unwraps it\n" : "\n";
  }
  if (report.signatures.empty()) out += "signatures: none\n";
  for (const SignatureTrustInfo& s : report.signatures) {
    out += "signature " + s.kind + " (" + s.location + "): " + (s.verified ? "verified" : "not verified");
    if (!s.signer.empty()) out += ", signer " + s.signer;
    if (!s.signed_reference.empty()) out += ", identity " + s.signed_reference;
    if (!s.verified && !s.detail.empty()) out += ": " + s.detail;
    out += "\n";
  }
  return out;
}

std::string TrustReportJson(const TrustReport& report) {
  json layers = json::array(), signatures = json::array();
  for (const LayerTrustInfo& l : report.layers) {
    layers.push_back({{"index", l.index},
                      {"digest", l.digest},
                      {"mediaType", l.media_type},
                      {"encrypted", l.encrypted},
                      {"recipients", l.recipients},
                      {"decryptable", l.decryptable}});
  }
  for (const SignatureTrustInfo& s : report.signatures) {
    signatures.push_back({{"kind", s.kind},
                          {"location", s.location},
                          {"signedReference", s.signed_reference},
                          {"signedDigest", s.signed_digest},
                          {"signer", s.signer},
                          {"verified", s.verified},
                          {"detail", s.detail}});
  }
  json j = {{"policy",
             {{"scope", report.policy_scope},
              {"requirements", report.requirements},
              {"accepted", report.accepted},
              {"verdict", report.verdict}}},
            {"layers", layers},
            {"signatures", signatures}};
  return j.dump();
}

}  // namespace sealroot::image
