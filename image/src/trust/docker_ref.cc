#include "image/src/trust/docker_ref.h"

#include <algorithm>

#include "image/digest.h"

namespace sealroot::image::trust {
namespace {

constexpr std::string_view kDockerHub = "docker.io";

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// path-component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool ValidComponent(std::string_view c) {
  if (c.empty() || !IsAlnum(c.front()) || !IsAlnum(c.back())) return false;
  for (std::size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (IsAlnum(ch)) continue;
    if (ch == '.' || ch == '-') {
      if (ch == '.' && !IsAlnum(c[i - 1])) return false;
      continue;
    }
    if (ch == '_') {
      if (i + 1 < c.size() && c[i + 1] == '_') ++i;
      if (i + 1 < c.size() && c[i + 1] == '_') return false;
      continue;
    }
    return false;
  }
  return true;
}

bool ValidDomain(std::string_view d) {
  if (d.empty()) return false;
  for (char c : d) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return IsAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!word(t.front())) return false;
  return std::all_of(t.begin(), t.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

}  // namespace

Result<DockerRef> DockerRef::Parse(std::string_view text, bool require_canonical) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("docker reference \"" + std::string(text) + "\": " + std::string(why));
  };
  DockerRef ref;
  std::string_view rest = text;
  if (std::size_t at = rest.find('@'); at != std::string_view::npos) {
    auto digest = Digest::Parse(rest.substr(at + 1));
    if (!digest.ok()) return bad("invalid digest");
    ref.digest = digest->str();
    rest = rest.substr(0, at);
  }
  std::size_t slash = rest.find('/');
  std::string_view first = rest.substr(0, slash);
  bool has_domain = slash != std::string_view::npos &&
                    (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
                     first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos);
  if (has_domain) {
    ref.domain = std::string(first);
    rest = rest.substr(slash + 1);
  } else {
    ref.domain = std::string(kDockerHub);
  }
  std::size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!ValidTag(ref.tag)) return bad("invalid tag");
  }
  if (!ValidDomain(ref.domain)) return bad("invalid registry host");
  ref.path = std::string(rest);
  if (ref.path.empty() || ref.path.size() > 255) return bad("invalid repository path");
  for (std::size_t start = 0; start <= ref.path.size();) {
    std::size_t end = ref.path.find('/', start);
    if (end == std::string::npos) end = ref.path.size();
    if (!ValidComponent(std::string_view(ref.path).substr(start, end - start)))
      return bad("invalid repository path");
    start = end + 1;
  }
  if (ref.domain == "index.docker.io") ref.domain = std::string(kDockerHub);
  bool short_hub = ref.domain == kDockerHub && ref.path.find('/') == std::string::npos;
  if (short_hub) ref.path = "library/" + ref.path;
  if (require_canonical && (!has_domain || short_hub))
    return bad("not fully qualified (write host/repository)");
  return ref;
}

std::optional<DockerRef> DockerRef::FromReference(const Reference& r) {
  if (r.transport != Transport::kDocker) return std::nullopt;
  std::string text = r.registry + "/" + r.repository;
  if (!r.tag.empty()) text += ":" + r.tag;
  if (r.digest) text += "@" + r.digest->str();
  Result<DockerRef> parsed = DockerRef::Parse(text);
  if (!parsed.ok()) return std::nullopt;
  if (parsed->NameOnly()) parsed->tag = "latest";
  return std::move(parsed).value();
}

std::string DockerRef::String() const {
  std::string out = Name();
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

std::vector<std::string> DockerScopes(const DockerRef& ref) {
  std::vector<std::string> scopes;
  if (!ref.NameOnly()) scopes.push_back(ref.String());
  std::string ns = ref.Name();
  for (;;) {
    scopes.push_back(ns);
    std::size_t slash = ns.rfind('/');
    if (slash == std::string::npos) break;
    ns.resize(slash);
  }
  // "*.example.com" scopes match every subdomain of example.com; as in containers/image the
  // port is dropped first, wildcard scopes cannot name one.
  std::string host = ref.domain.substr(0, ref.domain.find(':'));
  for (std::size_t dot = host.find('.'); dot != std::string::npos; dot = host.find('.', dot + 1)) {
    scopes.push_back("*" + host.substr(dot));
  }
  return scopes;
}

}  // namespace sealroot::image::trust
