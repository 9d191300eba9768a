// The registry source (distribution spec over libcurl): scheme and auth discovery on /v2/,
// manifests by tag or digest, blobs streamed with redirects (Authorization kept to the
// registry's origin) and Range resume after a broken connection.
#include <dirent.h>

#include "base/crypto.h"
#include "base/file.h"
#include "base/log.h"
#include "image/manifest.h"
#include "image/src/registries_conf.h"
#include "image/src/registry_auth.h"
#include "image/src/sources.h"
#include "image/stream.h"

namespace sealroot::image::internal {
namespace {

constexpr int kMaxRedirects = 5;
constexpr int kBlobAttempts = 6;

// --cert-dir, as containers/image reads it: *.crt are CAs, *.cert/*.key a client certificate.
Result<TlsConfig> LoadCertDir(const std::string& dir, bool verify) {
  TlsConfig tls;
  tls.verify = verify;
  if (dir.empty()) return tls;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) return ErrnoStatus("reading --cert-dir " + dir, errno);
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    std::string path = dir + "/" + name;
    if (name.ends_with(".crt")) {
      SR_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, 1u << 20));
      tls.ca_pems.push_back(std::move(pem));
    } else if (name.ends_with(".cert")) {
      tls.client_cert_file = path;
      tls.client_key_file = path.substr(0, path.size() - 5) + ".key";
    }
  }
  return tls;
}

class RegistrySource;

// A blob body that survives broken connections: it reconnects with Range from where it was.
class BlobStream final : public Reader {
 public:
  BlobStream(RegistrySource& source, std::string path) : source_(source), path_(std::move(path)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override;

 private:
  RegistrySource& source_;
  std::string path_;
  std::unique_ptr<Reader> body_;
  std::uint64_t offset_ = 0;
  int attempts_ = 0;
};

class RegistrySource final : public ImageSource {
 public:
  // `ref` is the logical name (for the policy and messages); `host` and `repository` where the
  // bytes come from (a mirror or a remapped location, per registries.conf).
  RegistrySource(Reference ref, std::string host, std::string repository, bool insecure, TlsConfig tls,
                 SecretBytes creds)
      : ref_(std::move(ref)),
        host_(std::move(host)),
        repository_(std::move(repository)),
        insecure_(insecure),
        http_(std::move(tls)),
        auth_(http_, std::move(creds), "repository:" + repository_ + ":pull") {}

  // Finds the scheme (https; http only when insecure) and answers the first auth challenge.
  Status Ping() {
    Status last;
    for (std::string scheme : {"https://", "http://"}) {
      if (scheme == "http://" && !insecure_) break;
      base_ = scheme + host_;
      auto r = http_.Fetch(base_ + "/v2/", {}, 64 * 1024);
      if (r.ok()) return OkStatus();
      if (r.status().code() == Code::kCancelled) return r.status();
      last = r.status();
    }
    return Unavailable("cannot reach registry " + host_ + ": " + last.message() +
                       (insecure_ ? "" : " (for plain HTTP use --tls-verify=false)"));
  }

  const Reference& reference() const override { return ref_; }
  bool IsRemote() const override { return true; }

  Result<ManifestBytes> GetManifest(std::string_view tag_or_digest) override {
    if (probed_ && probed_->first == tag_or_digest) {
      ManifestBytes m = std::move(probed_->second);
      probed_.reset();
      return m;
    }
    std::string what = "manifest " + host_ + "/" + repository_ + ":" + std::string(tag_or_digest);
    SR_ASSIGN_OR_RETURN(std::unique_ptr<HttpStream> s, Send("/manifests/" + std::string(tag_or_digest),
                                                            {"Accept: " + std::string(kManifestAccept)}, 0));
    if (s->status() == 404) return NotFound(what + ": not found in the registry");
    if (s->status() != 200) return Unavailable(what + ": HTTP " + std::to_string(s->status()));
    auto bytes = ReadAll(*s, kMaxManifestSize);
    if (!bytes.ok()) return std::move(bytes).status().WithContext(what);
    Digest digest = Digest::FromSha256(Sha256Of(*bytes));
    if (tag_or_digest.starts_with("sha256:") && digest.str() != tag_or_digest) {
      return DataLoss(what + ": digest mismatch: got " + digest.str());
    }
    if (std::string header = s->Header("docker-content-digest");
        header.starts_with("sha256:") && header != digest.str()) {
      return DataLoss(what + ": Docker-Content-Digest " + header + " does not match the body " +
                      digest.str());
    }
    std::string content_type = s->Header("content-type");
    content_type = content_type.substr(0, content_type.find(';'));
    auto media_type = DetectManifestMediaType(*bytes, content_type);
    if (!media_type.ok()) return std::move(media_type).status().WithContext(what);
    return ManifestBytes{std::move(*bytes), std::move(*media_type), digest};
  }

  // Fetches the manifest the reference names, to learn whether this endpoint has the image;
  // the next GetManifest of the same tag or digest returns it without asking again.
  Status Probe() {
    std::string tag_or_digest = ref_.TagOrDigest();
    SR_ASSIGN_OR_RETURN(ManifestBytes m, GetManifest(tag_or_digest));
    probed_.emplace(std::move(tag_or_digest), std::move(m));
    return OkStatus();
  }

  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& desc) override {
    SR_LOG(kDebug) << "fetching blob " << desc.digest.str() << " (" << desc.size << " bytes) from " << base_
                   << "/v2/" << repository_;
    auto stream = std::make_unique<BlobStream>(*this, "/blobs/" + desc.digest.str());
    return MakeVerifyingReader(std::move(stream), desc.digest, desc.size, "blob " + desc.digest.str());
  }

  // GET <base>/v2/<repo><path>, answering one auth challenge and following redirects; the
  // Authorization header goes only to the registry's own origin.
  Result<std::unique_ptr<HttpStream>> Send(const std::string& path, std::vector<std::string> headers,
                                           std::uint64_t offset) {
    std::string url = base_ + "/v2/" + repository_ + path;
    bool answered = false;
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
      std::vector<std::string> h = headers;
      bool same_origin = UrlOrigin(url) == UrlOrigin(base_);
      if (std::string auth = auth_.Header(); !auth.empty() && same_origin) h.push_back(auth);
      SR_ASSIGN_OR_RETURN(std::unique_ptr<HttpStream> s, http_.Get(url, h, offset));
      if (s->status() == 401 && same_origin && !answered) {
        answered = true;
        SR_RETURN_IF_ERROR_CTX(auth_.Answer(s->Header("www-authenticate"), base_),
                               "authenticating to " + host_);
        --hop;
        continue;
      }
      if (s->status() == 401 || s->status() == 403) {
        return Unauthenticated("registry " + host_ + " refused access to " + repository_ + " (HTTP " +
                               std::to_string(s->status()) + ")");
      }
      if (s->status() >= 300 && s->status() < 400 && !s->redirect_url().empty()) {
        url = s->redirect_url();
        continue;
      }
      return s;
    }
    return Unavailable("too many redirects for " + path);
  }

 private:
  Reference ref_;
  std::string host_;
  std::string repository_;
  bool insecure_;
  std::optional<std::pair<std::string, ManifestBytes>> probed_;
  HttpClient http_;
  RegistryAuth auth_;
  std::string base_;
};

Result<std::size_t> BlobStream::Read(std::span<std::uint8_t> out) {
  while (true) {
    if (!body_) {
      auto s = source_.Send(path_, {}, offset_);
      if (!s.ok() && s.status().code() != Code::kUnavailable) return std::move(s).status();
      if (s.ok()) {
        long status = (*s)->status();
        if (status == 404) return NotFound("not found in the registry");
        if (status == 200 && offset_ > 0) {
          // The server ignored Range: skip what we already have.
          SR_LOG(kDebug) << path_ << ": server ignored Range, skipping " << offset_ << " bytes";
          std::vector<std::uint8_t> skip(64 * 1024);
          for (std::uint64_t left = offset_; left > 0;) {
            SR_ASSIGN_OR_RETURN(
                std::size_t n, (*s)->Read(std::span(skip).first(std::min<std::uint64_t>(left, skip.size()))));
            if (n == 0) return DataLoss("blob shorter on retry");
            left -= n;
          }
        } else if (status != 200 && status != 206) {
          return Unavailable("HTTP " + std::to_string(status));
        }
        body_ = std::move(*s);
      } else if (++attempts_ >= kBlobAttempts) {
        return std::move(s).status();
      }
      if (!body_) continue;
    }
    auto n = body_->Read(out);
    if (n.ok()) {
      offset_ += *n;
      return *n;
    }
    if (n.status().code() != Code::kUnavailable || ++attempts_ >= kBlobAttempts) return std::move(n).status();
    SR_LOG(kWarning) << path_ << ": " << n.status().message() << "; resuming at byte " << offset_;
    body_.reset();
  }
}

Result<std::unique_ptr<RegistrySource>> OpenEndpoint(const Reference& ref, const PullEndpoint& endpoint,
                                                     const PullOptions& options) {
  std::string host = endpoint.registry == "docker.io" ? "registry-1.docker.io" : endpoint.registry;
  bool insecure = !options.tls_verify || endpoint.insecure;
  SR_ASSIGN_OR_RETURN(TlsConfig tls, LoadCertDir(options.cert_dir, !insecure));
  SecretBytes creds = options.creds.Clone();
  if (creds.empty()) {
    SR_ASSIGN_OR_RETURN(creds, LookupCredentials(options.authfile, endpoint.registry, endpoint.repository));
  }
  auto source = std::make_unique<RegistrySource>(ref, host, endpoint.repository, insecure, std::move(tls),
                                                 std::move(creds));
  SR_RETURN_IF_ERROR(source->Ping());
  return source;
}

// The names to try: the reference, or for a short name each unqualified-search registry's.
std::vector<Reference> Candidates(const Reference& ref, const RegistriesConf& conf) {
  if (ref.short_name.empty() || conf.unqualified_search_registries().empty()) return {ref};
  std::vector<Reference> out;
  for (const std::string& registry : conf.unqualified_search_registries()) {
    Reference r = ref;
    r.registry = registry;
    r.repository = ref.short_name;
    if (registry == "docker.io" && r.repository.find('/') == std::string::npos)
      r.repository = "library/" + r.repository;
    r.short_name.clear();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const Reference& ref, const PullOptions& options) {
  SR_ASSIGN_OR_RETURN(RegistriesConf conf, RegistriesConf::Load(options.registries_conf));
  std::vector<std::pair<Reference, PullEndpoint>> tries;
  for (const Reference& candidate : Candidates(ref, conf)) {
    SR_ASSIGN_OR_RETURN(std::vector<PullEndpoint> endpoints, conf.EndpointsFor(candidate));
    for (PullEndpoint& e : endpoints) tries.emplace_back(candidate, std::move(e));
  }
  if (tries.size() == 1) {
    SR_ASSIGN_OR_RETURN(std::unique_ptr<RegistrySource> source,
                        OpenEndpoint(tries[0].first, tries[0].second, options));
    return std::unique_ptr<ImageSource>(std::move(source));
  }
  // Mirrors, remaps and search registries: the first endpoint that answers and has the image.
  std::string tried;
  Status last;
  for (const auto& [candidate, endpoint] : tries) {
    std::string where = endpoint.registry + "/" + endpoint.repository + (endpoint.mirror ? " (mirror)" : "");
    auto source = OpenEndpoint(candidate, endpoint, options);
    Status s = source.ok() ? (*source)->Probe() : source.status();
    if (s.ok()) {
      SR_LOG(kDebug) << ref.ToString() << ": pulling from " << where;
      return std::unique_ptr<ImageSource>(std::move(*source));
    }
    if (s.code() == Code::kCancelled) return s;
    SR_LOG(kDebug) << ref.ToString() << ": " << where << ": " << s.message();
    tried += (tried.empty() ? "" : "; ") + where + ": " + s.message();
    last = std::move(s);
  }
  return Status(last.code(), ref.ToString() + ": no registry has the image (tried " + tried + ")");
}

}  // namespace sealroot::image::internal
