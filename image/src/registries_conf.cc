#include "image/src/registries_conf.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#include "base/file.h"
#include "base/log.h"
#include "image/src/toml.h"

namespace sealroot::image::internal {
namespace {

using nlohmann::json;

constexpr std::string_view kSystemConf = "/etc/containers/registries.conf";
constexpr std::size_t kMaxConfSize = 1u << 20;

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// *.conf files of a drop-in directory, in name order; none when it does not exist.
std::vector<std::string> DropIns(const std::string& dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) return out;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    struct stat st {};
    if (name.ends_with(".conf") && ::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode))
      out.push_back(dir + "/" + name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> Bool(const json& table, const char* key, const std::string& where) {
  if (!table.contains(key)) return false;
  if (!table[key].is_boolean()) return InvalidArgument(where + ": " + key + " must be true or false");
  return table[key].get<bool>();
}

Result<std::string> String(const json& table, const char* key, const std::string& where) {
  if (!table.contains(key)) return std::string();
  if (!table[key].is_string()) return InvalidArgument(where + ": " + key + " must be a string");
  return table[key].get<std::string>();
}

Result<std::vector<std::string>> Strings(const json& value, const std::string& where) {
  std::vector<std::string> out;
  if (!value.is_array()) return InvalidArgument(where + " must be an array of strings");
  for (const json& v : value) {
    if (!v.is_string()) return InvalidArgument(where + " must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<RegistriesConf::Registry> ParseRegistry(const json& t, const std::string& where) {
  if (!t.is_object()) return InvalidArgument(where + ": [[registry]] must be a table");
  RegistriesConf::Registry r;
  SR_ASSIGN_OR_RETURN(r.prefix, String(t, "prefix", where));
  SR_ASSIGN_OR_RETURN(r.location, String(t, "location", where));
  SR_ASSIGN_OR_RETURN(r.insecure, Bool(t, "insecure", where));
  SR_ASSIGN_OR_RETURN(r.blocked, Bool(t, "blocked", where));
  SR_ASSIGN_OR_RETURN(r.mirror_by_digest_only, Bool(t, "mirror-by-digest-only", where));
  if (r.prefix.empty()) r.prefix = r.location;
  if (r.prefix.empty()) return InvalidArgument(where + ": a [[registry]] needs a location or a prefix");
  if (r.prefix.starts_with("*.") && r.prefix.find('/') != std::string::npos)
    return InvalidArgument(where + ": wildcard prefix '" + r.prefix + "' may name a host only");
  if (r.location.empty() && !r.prefix.starts_with("*."))
    return InvalidArgument(where + ": registry '" + r.prefix + "' has no location");
  if (t.contains("mirror")) {
    if (!t["mirror"].is_array()) return InvalidArgument(where + ": mirror must be an array of tables");
    for (const json& m : t["mirror"]) {
      if (!m.is_object()) return InvalidArgument(where + ": mirror must be an array of tables");
      RegistriesConf::Mirror mirror;
      SR_ASSIGN_OR_RETURN(mirror.location, String(m, "location", where));
      SR_ASSIGN_OR_RETURN(mirror.insecure, Bool(m, "insecure", where));
      SR_ASSIGN_OR_RETURN(mirror.pull_from_mirror, String(m, "pull-from-mirror", where));
      if (mirror.location.empty())
        return InvalidArgument(where + ": a mirror of '" + r.prefix + "' has no location");
      const std::string& p = mirror.pull_from_mirror;
      if (!p.empty() && p != "all" && p != "digest-only" && p != "tag-only")
        return InvalidArgument(where + ": pull-from-mirror must be all, digest-only or tag-only");
      if (!p.empty() && p != "all" && r.mirror_by_digest_only)
        return InvalidArgument(where + ": pull-from-mirror conflicts with mirror-by-digest-only");
      r.mirrors.push_back(std::move(mirror));
    }
  }
  return r;
}

// "host[:port]/path" -> registry and repository.
PullEndpoint SplitLocation(const std::string& location, bool insecure, bool mirror) {
  std::size_t slash = location.find('/');
  PullEndpoint e{location.substr(0, slash), slash == std::string::npos ? "" : location.substr(slash + 1),
                 insecure, mirror};
  return e;
}

}  // namespace

Result<RegistriesConf> RegistriesConf::Load(const std::string& explicit_path) {
  std::string path = explicit_path;
  std::string source = "--registries-conf";
  if (path.empty()) {
    if (const char* env = std::getenv("CONTAINERS_REGISTRIES_CONF"); env != nullptr && *env != '\0') {
      path = env;
      source = "CONTAINERS_REGISTRIES_CONF";
    }
  }
  const char* home_env = std::getenv("HOME");
  std::string home = home_env != nullptr ? home_env : "";
  std::string user_dir = home.empty() ? "" : home + "/.config/containers";
  std::vector<std::string> files;
  bool explicit_file = !path.empty();
  if (explicit_file) {
    if (!Exists(path)) return NotFound("registries.conf " + path + " (from " + source + "): no such file");
    files.push_back(path);
  } else if (!user_dir.empty() && Exists(user_dir + "/registries.conf")) {
    files.push_back(user_dir + "/registries.conf");
    for (std::string& f : DropIns(user_dir + "/registries.conf.d")) files.push_back(std::move(f));
  } else {
    if (Exists(std::string(kSystemConf))) files.emplace_back(kSystemConf);
    for (std::string& f : DropIns(std::string(kSystemConf) + ".d")) files.push_back(std::move(f));
    if (!user_dir.empty()) {
      for (std::string& f : DropIns(user_dir + "/registries.conf.d")) files.push_back(std::move(f));
    }
  }
  RegistriesConf conf;
  for (const std::string& file : files) {
    SR_ASSIGN_OR_RETURN(std::string text, ReadFile(file, kMaxConfSize));
    SR_RETURN_IF_ERROR(conf.Merge(text, file));
    SR_LOG(kDebug) << "registries.conf: read " << file;
  }
  return conf;
}

Status RegistriesConf::Merge(std::string_view text, const std::string& origin) {
  SR_ASSIGN_OR_RETURN(json doc, ParseToml(text, origin));
  files_.push_back(origin);
  std::vector<Registry> added;
  if (doc.contains("registries")) {
    // Version 1: [registries.search|insecure|block] registries = [...].
    const json& v1 = doc["registries"];
    if (doc.contains("registry") || doc.contains("unqualified-search-registries"))
      return InvalidArgument(origin + ": mixes version 1 [registries.*] and version 2 tables");
    for (const char* kind : {"search", "insecure", "block"}) {
      if (!v1.contains(kind) || !v1[kind].contains("registries")) continue;
      SR_ASSIGN_OR_RETURN(std::vector<std::string> hosts,
                          Strings(v1[kind]["registries"], origin + ": registries." + kind));
      for (const std::string& host : hosts) {
        if (std::string(kind) == "search") {
          search_.push_back(host);
          continue;
        }
        Registry r;
        r.prefix = r.location = host;
        r.insecure = std::string(kind) == "insecure";
        r.blocked = std::string(kind) == "block";
        added.push_back(std::move(r));
      }
    }
  }
  if (doc.contains("unqualified-search-registries")) {
    SR_ASSIGN_OR_RETURN(
        search_, Strings(doc["unqualified-search-registries"], origin + ": unqualified-search-registries"));
  }
  if (doc.contains("registry")) {
    if (!doc["registry"].is_array())
      return InvalidArgument(origin + ": registry must be [[registry]] tables");
    for (const json& t : doc["registry"]) {
      SR_ASSIGN_OR_RETURN(Registry r, ParseRegistry(t, origin));
      added.push_back(std::move(r));
    }
  }
  for (Registry& r : added) {
    auto same = std::find_if(registries_.begin(), registries_.end(),
                             [&](const Registry& old) { return old.prefix == r.prefix; });
    if (same != registries_.end()) {
      *same = std::move(r);
    } else {
      registries_.push_back(std::move(r));
    }
  }
  return OkStatus();
}

const RegistriesConf::Registry* RegistriesConf::Find(std::string_view name) const {
  const Registry* best = nullptr;
  std::size_t best_len = 0;
  std::string_view host = name.substr(0, name.find('/'));
  for (const Registry& r : registries_) {
    std::string_view p = r.prefix;
    bool match = false;
    if (p.starts_with("*.")) {
      match = host.ends_with(p.substr(1));
    } else {
      match = name.starts_with(p) && (name.size() == p.size() || name[p.size()] == '/');
    }
    if (match && p.size() > best_len) {
      best = &r;
      best_len = p.size();
    }
  }
  return best;
}

Result<std::vector<PullEndpoint>> RegistriesConf::EndpointsFor(const Reference& ref) const {
  std::string name = ref.registry + "/" + ref.repository;
  const Registry* r = Find(name);
  if (r == nullptr) return std::vector<PullEndpoint>{{ref.registry, ref.repository, false, false}};
  std::string where =
      "registry '" + r->prefix + "' of " + (files_.empty() ? "registries.conf" : files_.back());
  if (r->blocked) return PermissionDenied(ref.DockerReference() + ": blocked by " + where);
  std::vector<PullEndpoint> out;
  bool wildcard = r->prefix.starts_with("*.");
  // What follows the prefix; a wildcard prefix matches the host, so its mirrors get the path.
  std::string rest = wildcard ? "/" + ref.repository : name.substr(r->prefix.size());
  bool by_digest = ref.tag.empty() && ref.digest.has_value();
  for (const Mirror& m : r->mirrors) {
    std::string_view when = m.pull_from_mirror;
    if (r->mirror_by_digest_only && !by_digest) continue;
    if (when == "digest-only" && !by_digest) continue;
    if (when == "tag-only" && by_digest) continue;
    out.push_back(SplitLocation(m.location + rest, m.insecure, true));
  }
  std::string primary = wildcard && r->location.empty() ? name : r->location + rest;
  out.push_back(SplitLocation(primary, r->insecure, false));
  return out;
}

}  // namespace sealroot::image::internal
