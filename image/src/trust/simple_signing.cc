#include "image/src/trust/simple_signing.h"

#include "base/crypto.h"
#include "image/src/trust/strict_json.h"

namespace sealroot::image::trust {
namespace {

using nlohmann::json;

template <typename T, rnp_result_t (*Destroy)(T*)>
struct RnpDeleter {
  void operator()(T* p) const { Destroy(p); }
};
using InputPtr = std::unique_ptr<rnp_input_st, RnpDeleter<rnp_input_st, rnp_input_destroy>>;
using OutputPtr = std::unique_ptr<rnp_output_st, RnpDeleter<rnp_output_st, rnp_output_destroy>>;
using VerifyPtr = std::unique_ptr<rnp_op_verify_st, RnpDeleter<rnp_op_verify_st, rnp_op_verify_destroy>>;
using KeyPtr = std::unique_ptr<rnp_key_handle_st, RnpDeleter<rnp_key_handle_st, rnp_key_handle_destroy>>;
struct BufferDeleter {
  void operator()(char* p) const { rnp_buffer_destroy(p); }
};
using RnpString = std::unique_ptr<char, BufferDeleter>;

constexpr std::size_t kMaxPayload = 4 << 20;  // containers/image caps signatures at 4 MiB

Result<InputPtr> InputFrom(std::span<const std::uint8_t> data) {
  rnp_input_t raw = nullptr;
  if (rnp_input_from_memory(&raw, data.data(), data.size(), false) != RNP_SUCCESS) {
    return Internal("rnp: creating an input");
  }
  return InputPtr(raw);
}

Result<std::string> SignerFingerprint(rnp_op_verify_signature_t sig) {
  rnp_key_handle_t raw = nullptr;
  if (rnp_op_verify_signature_get_key(sig, &raw) != RNP_SUCCESS || raw == nullptr) {
    return PermissionDenied("signature made by a key that is not trusted");
  }
  KeyPtr key(raw);
  char* fp = nullptr;
  // A subkey signs for its primary key; the primary key is what users trust and name.
  if (rnp_key_get_primary_fprint(key.get(), &fp) != RNP_SUCCESS || fp == nullptr) {
    if (rnp_key_get_fprint(key.get(), &fp) != RNP_SUCCESS || fp == nullptr)
      return Internal("rnp: fingerprint");
  }
  return std::string(RnpString(fp).get());
}

Status CheckOptional(const json& optional) {
  SR_RETURN_IF_ERROR(CheckMembers(optional, {"creator", "timestamp"}, "signature optional"));
  if (optional.contains("creator") && !optional["creator"].is_string()) {
    return InvalidArgument("signature optional.creator is not a string");
  }
  if (optional.contains("timestamp") && !optional["timestamp"].is_number_integer()) {
    return InvalidArgument("signature optional.timestamp is not an integer");
  }
  return OkStatus();
}

}  // namespace

Result<SignatureClaims> ParseSignaturePayload(std::string_view payload, std::string_view type) {
  SR_ASSIGN_OR_RETURN(json j, ParseStrictJson(payload, "signature payload"));
  bool simple = type == kSimpleSigningType;
  SR_RETURN_IF_ERROR(CheckMembers(j, {"critical", "optional"}, "signature payload"));
  if (!j.contains("critical")) return InvalidArgument("signature payload: missing \"critical\"");
  if (simple) {
    if (!j.contains("optional")) return InvalidArgument("signature payload: missing \"optional\"");
    SR_RETURN_IF_ERROR(CheckOptional(j["optional"]));
  } else if (j.contains("optional") && !j["optional"].is_object() && !j["optional"].is_null()) {
    return InvalidArgument("signature payload: \"optional\" is not an object");
  }
  const json& critical = j["critical"];
  SR_RETURN_IF_ERROR(CheckMembers(critical, {"type", "image", "identity"}, "signature critical"));
  SR_ASSIGN_OR_RETURN(std::string actual_type, StringMember(critical, "type", "signature critical"));
  if (actual_type != type) {
    return InvalidArgument("signature critical.type is \"" + actual_type + "\", expected \"" +
                           std::string(type) + "\"");
  }
  if (!critical.contains("image") || !critical.contains("identity")) {
    return InvalidArgument("signature critical: missing image or identity");
  }
  SR_RETURN_IF_ERROR(CheckMembers(critical["image"], {"docker-manifest-digest"}, "signature critical.image"));
  SR_RETURN_IF_ERROR(CheckMembers(critical["identity"], {"docker-reference"}, "signature critical.identity"));
  SignatureClaims claims;
  SR_ASSIGN_OR_RETURN(claims.manifest_digest,
                      StringMember(critical["image"], "docker-manifest-digest", "signature critical.image"));
  SR_ASSIGN_OR_RETURN(claims.docker_reference,
                      StringMember(critical["identity"], "docker-reference", "signature critical.identity"));
  return claims;
}

Result<std::shared_ptr<GpgKeyring>> GpgKeyring::Create(const std::vector<std::string>& keyrings,
                                                       std::string_view what) {
  rnp_ffi_t raw = nullptr;
  if (rnp_ffi_create(&raw, "GPG", "GPG") != RNP_SUCCESS) return Internal("rnp: creating a context");
  std::unique_ptr<rnp_ffi_st, FfiDeleter> ffi(raw);
  for (const std::string& keyring : keyrings) {
    SR_ASSIGN_OR_RETURN(InputPtr input, InputFrom(AsBytes(keyring)));
    if (rnp_load_keys(ffi.get(), "GPG", input.get(), RNP_LOAD_SAVE_PUBLIC_KEYS) != RNP_SUCCESS) {
      return InvalidArgument(std::string(what) + ": not an OpenPGP public keyring");
    }
  }
  std::size_t count = 0;
  if (rnp_get_public_key_count(ffi.get(), &count) != RNP_SUCCESS || count == 0) {
    return InvalidArgument(std::string(what) + ": the keyring holds no public keys");
  }
  return std::shared_ptr<GpgKeyring>(new GpgKeyring(std::move(ffi)));
}

Result<GpgKeyring::Verified> GpgKeyring::Verify(std::span<const std::uint8_t> message) const {
  MutexLock lock(mu_);
  SR_ASSIGN_OR_RETURN(InputPtr input, InputFrom(message));
  rnp_output_t out_raw = nullptr;
  if (rnp_output_to_memory(&out_raw, kMaxPayload) != RNP_SUCCESS) return Internal("rnp: creating an output");
  OutputPtr output(out_raw);
  rnp_op_verify_t op_raw = nullptr;
  if (rnp_op_verify_create(&op_raw, ffi_.get(), input.get(), output.get()) != RNP_SUCCESS) {
    return Internal("rnp: creating a verification");
  }
  VerifyPtr op(op_raw);
  rnp_result_t executed = rnp_op_verify_execute(op.get());
  std::size_t count = 0;
  if (rnp_op_verify_get_signature_count(op.get(), &count) != RNP_SUCCESS || count == 0) {
    return InvalidArgument("not an OpenPGP signed message");
  }
  // containers/image accepts exactly one signature per message.
  if (count != 1)
    return PermissionDenied("the message carries " + std::to_string(count) + " signatures, not one");
  rnp_op_verify_signature_t sig = nullptr;
  if (rnp_op_verify_get_signature_at(op.get(), 0, &sig) != RNP_SUCCESS)
    return Internal("rnp: reading a signature");
  rnp_result_t status = rnp_op_verify_signature_get_status(sig);
  if (status == RNP_ERROR_KEY_NOT_FOUND)
    return PermissionDenied("signed by a key that is not in the policy's keyring");
  if (status != RNP_SUCCESS || executed != RNP_SUCCESS) {
    return PermissionDenied(std::string("OpenPGP signature is invalid (") + rnp_result_to_string(status) +
                            ")");
  }
  SR_ASSIGN_OR_RETURN(std::string fingerprint, SignerFingerprint(sig));
  std::uint8_t* buf = nullptr;
  std::size_t len = 0;
  if (rnp_output_memory_get_buf(output.get(), &buf, &len, false) != RNP_SUCCESS)
    return Internal("rnp: payload");
  return Verified{std::string(reinterpret_cast<const char*>(buf), len), std::move(fingerprint)};
}

}  // namespace sealroot::image::trust
