// The JSON documents of the key-provider protocol. ocicrypt marshals Go []byte fields as
// standard base64, hence the encodings here.
#include <dirent.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"
#include "image/src/trust/jwe.h"
#include "image/trust/keyprovider.h"

namespace sealroot::image::trust {

using nlohmann::json;

std::string BuildUnwrapRequest(std::span<const std::uint8_t> annotation) {
  json request = {{"op", "keyunwrap"},
                  {"keyunwrapparams",
                   {{"dc", {{"Parameters", json::object()}}}, {"annotation", Base64Encode(annotation)}}}};
  return request.dump();
}

Result<std::vector<std::uint8_t>> ParseUnwrapRequest(std::string_view request) {
  json j = json::parse(request, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("key provider request: not a JSON object");
  auto op = j.find("op");
  if (op == j.end() || !op->is_string()) return InvalidArgument("key provider request: missing \"op\"");
  if (*op != "keyunwrap") {
    return InvalidArgument("key provider request: unsupported op \"" + op->get<std::string>() + "\"");
  }
  auto params = j.find("keyunwrapparams");
  if (params == j.end() || !params->is_object())
    return InvalidArgument("key provider request: missing keyunwrapparams");
  auto annotation = params->find("annotation");
  if (annotation == params->end() || !annotation->is_string()) {
    return InvalidArgument("key provider request: missing keyunwrapparams.annotation");
  }
  auto bytes = Base64Decode(annotation->get_ref<const std::string&>());
  if (!bytes.ok()) return InvalidArgument("key provider request: annotation is not base64");
  return bytes;
}

SecretBytes BuildUnwrapResponse(const SecretBytes& optsdata) {
  std::string b64 = Base64Encode(optsdata.span());
  std::string text = R"({"keyunwrapresults":{"optsdata":")" + b64 + "\"}}";
  SecretBytes out(AsBytes(text));
  SecureWipe({reinterpret_cast<std::uint8_t*>(b64.data()), b64.size()});
  SecureWipe({reinterpret_cast<std::uint8_t*>(text.data()), text.size()});
  return out;
}

Result<SecretBytes> ParseUnwrapResponse(std::span<const std::uint8_t> response) {
  json j = json::parse(AsChars(response), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("key provider response: not a JSON object");
  auto results = j.find("keyunwrapresults");
  if (results == j.end() || !results->is_object()) {
    return InvalidArgument("key provider response: missing keyunwrapresults");
  }
  auto opts = results->find("optsdata");
  if (opts == results->end() || !opts->is_string()) {
    return InvalidArgument("key provider response: missing keyunwrapresults.optsdata");
  }
  std::string& b64 = opts->get_ref<std::string&>();
  auto bytes = Base64Decode(b64);
  SecureWipe({reinterpret_cast<std::uint8_t*>(b64.data()), b64.size()});
  if (!bytes.ok()) return InvalidArgument("key provider response: optsdata is not base64");
  SecretBytes out(*bytes);
  SecureWipe(*bytes);
  return out;
}

Result<std::vector<PrivateKey>> LoadKeyDirectory(const std::string& dir, const std::string& passphrase_file) {
  struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
  };
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) return ErrnoStatus("key directory " + dir, errno);
  std::vector<std::string> specs;
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (name.starts_with(".") || e->d_type != DT_REG) continue;
    specs.push_back(dir + "/" + name);
  }
  std::sort(specs.begin(), specs.end());
  SR_ASSIGN_OR_RETURN(auto keys, LoadPrivateKeys(specs, passphrase_file));
  if (keys.empty()) return NotFound("key directory " + dir + " holds no private keys");
  return keys;
}

Result<SecretBytes> ServeUnwrapRequest(std::string_view request, std::span<const PrivateKey> keys) {
  SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> annotation, ParseUnwrapRequest(request));
  SR_ASSIGN_OR_RETURN(SecretBytes opts, JweDecrypt(AsChars(annotation), keys));
  return BuildUnwrapResponse(opts);
}

}  // namespace sealroot::image::trust
