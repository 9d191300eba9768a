// The registry source (distribution spec over libcurl): scheme and auth discovery on /v2/,
// manifests by tag or digest, blobs streamed with redirects (Authorization kept to the
// registry's origin) and Range resume after a broken connection.
#include <dirent.h>

#include "base/crypto.h"
#include "base/file.h"
#include "base/log.h"
#include "image/manifest.h"
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

// Minimal registries.conf (v2) reading: [[registry]] tables with location/prefix and insecure.
bool MarkedInsecure(const std::string& conf_path, const std::string& host) {
  auto text = ReadFile(conf_path, 1u << 20);
  if (!text.ok()) return false;
  bool in_registry = false, insecure = false;
  std::string location;
  auto flush = [&] { return in_registry && insecure && location == host; };
  std::string_view rest = *text;
  while (!rest.empty()) {
    std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.starts_with("[")) {
      if (flush()) return true;
      in_registry = line.starts_with("[[registry]]");
      insecure = false;
      location.clear();
      continue;
    }
    std::size_t eq = line.find('=');
    if (!in_registry || eq == std::string_view::npos) continue;
    std::string_view key = line.substr(0, line.find_first_of(" \t="));
    std::string_view value = line.substr(eq + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '"')) value.remove_prefix(1);
    value = value.substr(0, value.find_first_of("\" \t#"));
    if (key == "location" || (key == "prefix" && location.empty())) location = std::string(value);
    if (key == "insecure") insecure = value == "true";
  }
  return flush();
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
  RegistrySource(Reference ref, std::string host, bool insecure, TlsConfig tls, SecretBytes creds)
      : ref_(std::move(ref)),
        host_(std::move(host)),
        insecure_(insecure),
        http_(std::move(tls)),
        auth_(http_, std::move(creds), "repository:" + ref_.repository + ":pull") {}

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
    std::string what = "manifest " + ref_.registry + "/" + ref_.repository + ":" + std::string(tag_or_digest);
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

  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& desc) override {
    auto stream = std::make_unique<BlobStream>(*this, "/blobs/" + desc.digest.str());
    return MakeVerifyingReader(std::move(stream), desc.digest, desc.size, "blob " + desc.digest.str());
  }

  // GET <base>/v2/<repo><path>, answering one auth challenge and following redirects; the
  // Authorization header goes only to the registry's own origin.
  Result<std::unique_ptr<HttpStream>> Send(const std::string& path, std::vector<std::string> headers,
                                           std::uint64_t offset) {
    std::string url = base_ + "/v2/" + ref_.repository + path;
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
        return Unauthenticated("registry " + host_ + " refused access to " + ref_.repository + " (HTTP " +
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
  bool insecure_;
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

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const Reference& ref, const PullOptions& options) {
  std::string host = ref.registry == "docker.io" ? "registry-1.docker.io" : ref.registry;
  std::string conf =
      options.registries_conf.empty() ? "/etc/containers/registries.conf" : options.registries_conf;
  bool insecure = !options.tls_verify || MarkedInsecure(conf, ref.registry);
  SR_ASSIGN_OR_RETURN(TlsConfig tls, LoadCertDir(options.cert_dir, !insecure));
  SecretBytes creds = options.creds.Clone();
  if (creds.empty()) {
    SR_ASSIGN_OR_RETURN(creds, LookupCredentials(options.authfile, ref.registry, ref.repository));
  }
  auto source = std::make_unique<RegistrySource>(ref, host, insecure, std::move(tls), std::move(creds));
  SR_RETURN_IF_ERROR(source->Ping());
  return std::unique_ptr<ImageSource>(std::move(source));
}

}  // namespace sealroot::image::internal
