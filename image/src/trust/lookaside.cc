#include "image/src/trust/lookaside.h"

#include <curl/curl.h>
#include <dirent.h>
#include <yaml.h>

#include <algorithm>
#include <memory>

#include "base/file.h"

namespace sealroot::image::trust {
namespace {

constexpr std::size_t kMaxSignature = 4 << 20;
constexpr int kMaxSignatures = 128;

// The subset of YAML registries.d uses: nested mappings of scalars.
struct YamlNode {
  std::string scalar;
  std::vector<std::string> keys;  // a mapping: keys[i] -> values[i], in document order
  std::vector<YamlNode> values;
  bool is_map = false;
};

class YamlParser {
 public:
  explicit YamlParser(const std::string& text) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  }
  ~YamlParser() { yaml_parser_delete(&parser_); }
  YamlParser(const YamlParser&) = delete;
  YamlParser& operator=(const YamlParser&) = delete;

  // Parses one document; an empty file is an empty mapping.
  Result<YamlNode> Document() {
    for (;;) {
      SR_ASSIGN_OR_RETURN(yaml_event_type_t type, Next());
      if (type == YAML_STREAM_END_EVENT) return YamlNode{{}, {}, {}, true};
      if (type == YAML_MAPPING_START_EVENT) return Mapping(0);
      if (type != YAML_STREAM_START_EVENT && type != YAML_DOCUMENT_START_EVENT) {
        return InvalidArgument("the top level is not a mapping");
      }
    }
  }

 private:
  Result<yaml_event_type_t> Next() {
    yaml_event_t event;
    if (!yaml_parser_parse(&parser_, &event)) {
      return InvalidArgument(std::string("YAML: ") + (parser_.problem ? parser_.problem : "syntax error") +
                             " at line " + std::to_string(parser_.problem_mark.line + 1));
    }
    yaml_event_type_t type = event.type;
    if (type == YAML_SCALAR_EVENT)
      last_scalar_.assign(reinterpret_cast<char*>(event.data.scalar.value), event.data.scalar.length);
    bool alias = type == YAML_ALIAS_EVENT;
    yaml_event_delete(&event);
    if (alias) return InvalidArgument("YAML aliases are not supported");
    return type;
  }

  Result<YamlNode> Mapping(int depth) {
    if (depth > 8) return InvalidArgument("YAML nested too deeply");
    YamlNode node{{}, {}, {}, true};
    for (;;) {
      SR_ASSIGN_OR_RETURN(yaml_event_type_t type, Next());
      if (type == YAML_MAPPING_END_EVENT) return node;
      if (type != YAML_SCALAR_EVENT) return InvalidArgument("a mapping key is not a scalar");
      std::string key = last_scalar_;
      if (std::find(node.keys.begin(), node.keys.end(), key) != node.keys.end()) {
        return InvalidArgument("key \"" + key + "\" appears twice");
      }
      SR_ASSIGN_OR_RETURN(yaml_event_type_t vtype, Next());
      if (vtype == YAML_SCALAR_EVENT) {
        node.keys.push_back(key);
        node.values.push_back(YamlNode{last_scalar_, {}, {}, false});
      } else if (vtype == YAML_MAPPING_START_EVENT) {
        SR_ASSIGN_OR_RETURN(YamlNode child, Mapping(depth + 1));
        node.keys.push_back(key);
        node.values.push_back(std::move(child));
      } else {
        return InvalidArgument("the value of \"" + key + "\" is not a scalar or mapping");
      }
    }
  }

  yaml_parser_t parser_;
  std::string last_scalar_;
};

// One namespace entry: {lookaside, lookaside-staging, sigstore, sigstore-staging,
// use-sigstore-attachments}. Only the read location matters to a consumer.
Result<std::optional<std::string>> ParseEntry(const YamlNode& entry, const std::string& what) {
  if (!entry.is_map) return InvalidArgument(what + ": not a mapping");
  std::optional<std::string> url;
  for (std::size_t i = 0; i < entry.keys.size(); ++i) {
    const std::string& key = entry.keys[i];
    const YamlNode& value = entry.values[i];
    bool known = key == "lookaside" || key == "sigstore" || key == "lookaside-staging" ||
                 key == "sigstore-staging" || key == "use-sigstore-attachments";
    if (!known) return InvalidArgument(what + ": unknown key \"" + key + "\"");
    if (value.is_map) return InvalidArgument(what + "." + key + ": not a scalar");
    // "sigstore" is the old name of "lookaside" (it predates the sigstore project).
    if (key == "lookaside" || (key == "sigstore" && !url)) url = value.scalar;
  }
  return url;
}

size_t CollectBody(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  std::size_t n = size * count;
  if (body->size() + n > kMaxSignature) return 0;  // aborts the transfer
  body->append(data, n);
  return n;
}

using CurlPtr = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

// nullopt for 404 (no such signature).
Result<std::optional<std::string>> HttpGet(const std::string& url) {
  CurlPtr curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Internal("curl: init");
  std::string body;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &CollectBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) return Unavailable("fetching " + url + ": " + curl_easy_strerror(rc));
  long code = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &code);
  if (code == 404) return std::optional<std::string>();
  if (code != 200) return Unavailable("fetching " + url + ": HTTP " + std::to_string(code));
  return std::optional<std::string>(std::move(body));
}

Result<std::optional<std::string>> FileGet(const std::string& path) {
  Result<std::string> data = ReadFile(path, kMaxSignature);
  if (data.status().code() == Code::kNotFound) return std::optional<std::string>();
  if (!data.ok()) return std::move(data).status();
  return std::optional<std::string>(std::move(data).value());
}

}  // namespace

Result<RegistriesD> RegistriesD::Load(const std::string& dir) {
  RegistriesD out;
  if (dir.empty()) return out;
  struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
  };
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) return ErrnoStatus("registries.d " + dir, errno);
  std::vector<std::string> files;
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.ends_with(".yaml")) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  for (const std::string& name : files) {
    std::string path = JoinPath(dir, name);
    SR_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
    YamlParser parser(text);
    Result<YamlNode> doc = parser.Document();
    if (!doc.ok()) return std::move(doc).status().WithContext(path);
    for (std::size_t i = 0; i < doc->keys.size(); ++i) {
      const std::string& key = doc->keys[i];
      const YamlNode& value = doc->values[i];
      if (key == "default-docker") {
        if (out.default_) return InvalidArgument(path + ": default-docker is configured twice");
        SR_ASSIGN_OR_RETURN(out.default_, ParseEntry(value, path + ": default-docker"));
      } else if (key == "docker") {
        if (!value.is_map) return InvalidArgument(path + ": docker is not a mapping");
        for (std::size_t j = 0; j < value.keys.size(); ++j) {
          const std::string& ns = value.keys[j];
          const YamlNode& entry = value.values[j];
          if (out.namespaces_.contains(ns))
            return InvalidArgument(path + ": docker namespace " + ns + " configured twice");
          SR_ASSIGN_OR_RETURN(auto url, ParseEntry(entry, path + ": docker." + ns));
          if (url) out.namespaces_[ns] = *url;
        }
      } else {
        return InvalidArgument(path + ": unknown key \"" + key + "\"");
      }
    }
  }
  return out;
}

std::optional<std::string> RegistriesD::LookasideFor(const DockerRef& ref) const {
  for (const std::string& scope : DockerScopes(ref)) {
    if (auto it = namespaces_.find(scope); it != namespaces_.end()) return it->second;
  }
  return default_;
}

Result<std::vector<std::string>> FetchLookasideSignatures(const std::string& base, const DockerRef& ref,
                                                          const Digest& manifest) {
  std::string trimmed = base;
  while (trimmed.ends_with('/')) trimmed.pop_back();
  bool is_file = trimmed.starts_with("file://");
  if (!is_file && !trimmed.starts_with("http://") && !trimmed.starts_with("https://")) {
    return InvalidArgument("lookaside " + base + ": unsupported URL scheme (file, http, https)");
  }
  // The digest is validated (Digest), the path is the parsed repository path: no traversal.
  std::string dir = trimmed + "/" + ref.path + "@sha256=" + std::string(manifest.hex());
  std::vector<std::string> signatures;
  for (int i = 1; i <= kMaxSignatures; ++i) {
    std::string url = dir + "/signature-" + std::to_string(i);
    Result<std::optional<std::string>> sig = is_file ? FileGet(url.substr(7)) : HttpGet(url);
    if (!sig.ok()) return std::move(sig).status();
    if (!*sig) break;
    signatures.push_back(std::move(**sig));
  }
  return signatures;
}

}  // namespace sealroot::image::trust
