#include "image/reference.h"

#include <algorithm>

namespace sealroot::image {
namespace {

constexpr std::string_view kDockerPrefix = "docker://";
constexpr std::string_view kOciPrefix = "oci:";
constexpr std::string_view kOciArchivePrefix = "oci-archive:";
constexpr std::string_view kDockerHub = "docker.io";

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// distribution/reference: path-component := alnum+ (separator alnum+)*,
// separator := [._] | "__" | "-"+
bool ValidPathComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  for (std::size_t i = 0; i < c.size();) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < c.size() && !IsLowerAlnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              std::all_of(sep.begin(), sep.end(), [](char x) { return x == '-'; });
    if (!ok) return false;
    i = j;
  }
  return true;
}

bool ValidRepository(std::string_view repo) {
  if (repo.empty() || repo.size() > 255) return false;
  while (true) {
    std::size_t slash = repo.find('/');
    if (!ValidPathComponent(repo.substr(0, slash))) return false;
    if (slash == std::string_view::npos) return true;
    repo.remove_prefix(slash + 1);
  }
}

bool ValidTag(std::string_view tag) {
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (tag.empty() || tag.size() > 128 || !word(tag[0])) return false;
  return std::all_of(tag.begin(), tag.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

// host[:port]: letters, digits, '.', '-', and an optional numeric port (or a bracketed IPv6).
bool ValidRegistry(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  std::size_t colon = host.rfind(':');
  std::string_view name = host;
  if (colon != std::string_view::npos && host.back() != ']') {
    std::string_view port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return false;
    name = host.substr(0, colon);
  }
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
    return std::all_of(name.begin(), name.end(), [](char c) { return std::isxdigit(c) || c == ':'; });
  }
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  });
}

Result<Reference> ParseDocker(std::string_view text) {
  std::string original(text);
  Reference ref;
  ref.transport = Transport::kDocker;
  if (std::size_t at = text.find('@'); at != std::string_view::npos) {
    auto digest = Digest::Parse(text.substr(at + 1));
    if (!digest.ok()) return std::move(digest).status().WithContext("reference '" + original + "'");
    ref.digest = *digest;
    text = text.substr(0, at);
  }
  std::size_t last_slash = text.rfind('/');
  std::size_t colon = text.rfind(':');
  if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
    ref.tag = std::string(text.substr(colon + 1));
    if (!ValidTag(ref.tag))
      return InvalidArgument("reference '" + original + "': invalid tag '" + ref.tag + "'");
    text = text.substr(0, colon);
  }
  std::size_t first_slash = text.find('/');
  std::string_view first = text.substr(0, first_slash);
  bool has_host = first_slash != std::string_view::npos &&
                  (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
                   first == "localhost" || first.front() == '[');
  if (has_host) {
    ref.registry = std::string(first);
    ref.repository = std::string(text.substr(first_slash + 1));
    if (!ValidRegistry(ref.registry)) {
      return InvalidArgument("reference '" + original + "': invalid registry host '" + ref.registry + "'");
    }
  } else {
    ref.registry = std::string(kDockerHub);
    ref.repository = std::string(text);
    ref.short_name = ref.repository;
  }
  if (ref.registry == kDockerHub && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  if (!ValidRepository(ref.repository)) {
    return InvalidArgument("reference '" + original + "': invalid repository name '" + ref.repository +
                           "' (lowercase letters, digits and . _ - separators)");
  }
  if (ref.tag.empty() && !ref.digest) ref.tag = "latest";
  return ref;
}

Result<Reference> ParseLayout(Transport transport, std::string_view text, std::string_view original) {
  Reference ref;
  ref.transport = transport;
  // Like containers/image: the path ends at the first ':'; the rest is the tag.
  std::size_t colon = text.find(':');
  ref.path = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) {
    ref.tag = std::string(text.substr(colon + 1));
    if (!ValidTag(ref.tag)) {
      return InvalidArgument("reference '" + std::string(original) + "': invalid tag '" + ref.tag + "'");
    }
  }
  if (ref.path.empty()) return InvalidArgument("reference '" + std::string(original) + "': empty path");
  return ref;
}

}  // namespace

Result<Reference> Reference::Parse(std::string_view text) {
  if (text.starts_with(kOciArchivePrefix)) {
    return ParseLayout(Transport::kOciArchive, text.substr(kOciArchivePrefix.size()), text);
  }
  if (text.starts_with(kOciPrefix))
    return ParseLayout(Transport::kOciLayout, text.substr(kOciPrefix.size()), text);
  if (text.starts_with(kDockerPrefix)) text.remove_prefix(kDockerPrefix.size());
  if (text.empty()) return InvalidArgument("empty image reference");
  return ParseDocker(text);
}

std::string Reference::ToString() const {
  switch (transport) {
    case Transport::kOciLayout:
      return "oci:" + path + (tag.empty() ? "" : ":" + tag);
    case Transport::kOciArchive:
      return "oci-archive:" + path + (tag.empty() ? "" : ":" + tag);
    case Transport::kDocker:
      break;
  }
  return "docker://" + DockerReference();
}

std::string Reference::DockerReference() const {
  std::string out = registry + "/" + repository;
  if (!tag.empty()) out += ":" + tag;
  if (digest) out += "@" + digest->str();
  return out;
}

std::string Reference::TagOrDigest() const {
  if (digest) return digest->str();
  return tag;
}

}  // namespace sealroot::image
