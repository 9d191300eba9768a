// sealroot unpack | pull | inspect: the image path's commands (image/pull.h).
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/cli.h"
#include "base/interrupt.h"
#include "image/dir_sink.h"
#include "image/pull.h"
#include "image/trust.h"
#include "sealing/sealing.h"
#include "tool/src/commands.h"
#include "tool/src/progress_display.h"

namespace sealroot::tool {
namespace {

using image::PullOptions;
using nlohmann::json;

// skopeo spells the source's flags both ways: `inspect --tls-verify`, `copy --src-tls-verify`.
constexpr std::string_view kSourceAliases[] = {"creds", "authfile", "cert-dir", "tls-verify"};

std::optional<std::string> SourceFlag(const ArgParser& p, std::string_view name) {
  std::string src = "src-" + std::string(name);
  if (p.Has(src)) return p.Get(src);
  return p.Get(name);
}

void AddSourceFlags(ArgParser& p) {
  p.Option("creds", "USER:PASS", "registry credentials (visible in /proc: prefer --authfile)");
  p.Option("authfile", "FILE",
           "containers auth.json (default: REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, "
           "~/.docker/config.json)");
  p.Option("cert-dir", "DIR", "trust the CAs in DIR/*.crt; client certificate DIR/*.cert + *.key");
  p.Flag("tls-verify", "require HTTPS and verify certificates (--tls-verify=false allows plain HTTP)", true);
  for (std::string_view name : kSourceAliases) {
    if (name == "tls-verify") {
      p.Flag("src-tls-verify", "same as --tls-verify (skopeo copy's spelling)", true);
    } else {
      p.Option("src-" + std::string(name),
               name == "creds" ? "USER:PASS" : (name == "authfile" ? "FILE" : "DIR"),
               "same as --" + std::string(name) + " (skopeo copy's spelling)");
    }
  }
  p.Option(
      "registries-conf", "FILE",
      "registries.conf: mirrors, remaps, insecure/blocked registries, search registries (default: "
      "$CONTAINERS_REGISTRIES_CONF, ~/.config/containers/registries.conf, /etc/containers/registries.conf, "
      "with their registries.conf.d drop-ins)");
  p.Option("platform", "OS/ARCH[/VARIANT]",
           "platform to pick from a multi-platform image (default: this host's)");
  p.Option("parallel", "N", "layers downloaded at once (default 3)");
  p.Option("spool-dir", "DIR", "where layers fetched ahead wait (default $TMPDIR)");
  p.Option("blob-cache", "DIR",
           "keep verified registry blobs here and reuse them in later runs (default "
           "$XDG_CACHE_HOME/sealroot/blobs, else ~/.cache/sealroot/blobs)");
  p.Flag("no-blob-cache", "neither read nor keep cached blobs");
  p.Option("max-layer-size", "BYTES", "refuse a layer that decompresses to more (default 64 GiB)");
  p.Option("max-image-size", "BYTES", "refuse an image whose layers decompress to more (default 64 GiB)");
  p.Option("max-decompression-ratio", "N",
           "refuse a layer that decompresses to more than N times its compressed size, past its "
           "first MiB (default 100)");
  p.Option("max-layers", "N", "refuse an image with more layers (default 128)");
  image::AddTrustFlags(p);
  cli::AddCommonFlags(p);
}

Result<std::uint64_t> ParseCount(const ArgParser& p, std::string_view name, std::uint64_t fallback) {
  auto v = p.Get(name);
  if (!v) return fallback;
  try {
    std::size_t used = 0;
    unsigned long long n = std::stoull(*v, &used);
    if (used == v->size()) return static_cast<std::uint64_t>(n);
  } catch (const std::exception&) {
  }
  return InvalidArgument("--" + std::string(name) + ": not a number: " + *v);
}

// Options, plus the trust objects they point to (kept alive here).
struct Pipeline {
  PullOptions options;
  std::unique_ptr<image::SignatureVerifier> verifier;
  std::unique_ptr<image::LayerDecryptor> decryptor;
};

// $XDG_CACHE_HOME/sealroot/blobs, else ~/.cache/sealroot/blobs; empty when neither is known.
std::string DefaultBlobCache() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/')
    return std::string(xdg) + "/sealroot/blobs";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/')
    return std::string(home) + "/.cache/sealroot/blobs";
  return "";
}

// `enforce_policy` false (inspect): no verifier, so no policy file is needed.
Result<std::unique_ptr<Pipeline>> MakePipeline(const ArgParser& p, bool enforce_policy = true) {
  auto pipe = std::make_unique<Pipeline>();
  PullOptions& o = pipe->options;
  if (auto c = SourceFlag(p, "creds")) {
    if (c->find(':') == std::string::npos) return InvalidArgument("--creds: want USER:PASS");
    o.creds = SecretBytes(std::span(reinterpret_cast<const std::uint8_t*>(c->data()), c->size()));
  }
  o.authfile = SourceFlag(p, "authfile").value_or("");
  o.cert_dir = SourceFlag(p, "cert-dir").value_or("");
  o.tls_verify = p.Has("src-tls-verify") ? p.Bool("src-tls-verify") : p.Bool("tls-verify");
  o.registries_conf = p.Get("registries-conf").value_or("");
  if (auto platform = p.Get("platform")) {
    SR_ASSIGN_OR_RETURN(o.platform, image::Platform::Parse(*platform));
  }
  SR_ASSIGN_OR_RETURN(std::uint64_t parallel, ParseCount(p, "parallel", 3));
  if (parallel < 1 || parallel > 16) return InvalidArgument("--parallel: between 1 and 16");
  o.parallel_downloads = static_cast<int>(parallel);
  o.spool_dir = p.Get("spool-dir").value_or("");
  if (!p.Bool("no-blob-cache")) o.blob_cache_dir = p.Get("blob-cache").value_or(DefaultBlobCache());
  SR_ASSIGN_OR_RETURN(o.max_layer_size, ParseCount(p, "max-layer-size", o.max_layer_size));
  SR_ASSIGN_OR_RETURN(o.max_image_size, ParseCount(p, "max-image-size", o.max_image_size));
  SR_ASSIGN_OR_RETURN(o.max_decompression_ratio,
                      ParseCount(p, "max-decompression-ratio", o.max_decompression_ratio));
  if (o.max_decompression_ratio < 1) return InvalidArgument("--max-decompression-ratio: at least 1");
  SR_ASSIGN_OR_RETURN(o.max_layers, ParseCount(p, "max-layers", o.max_layers));
  image::TrustOptions trust = image::TrustOptionsFromFlags(p);
  if (enforce_policy) {
    SR_ASSIGN_OR_RETURN(pipe->verifier, image::MakeSignatureVerifier(trust));
  }
  SR_ASSIGN_OR_RETURN(pipe->decryptor, image::MakeLayerDecryptor(trust));
  o.verifier = pipe->verifier.get();
  o.decryptor = pipe->decryptor.get();
  return pipe;
}

// The progress line on a terminal, and the summary line, unless --quiet or --json.
std::unique_ptr<ProgressDisplay> MakeProgress(const ArgParser& p, PullOptions& options) {
  bool show = !p.Bool("quiet") && !p.Bool("json");
  auto display = std::make_unique<ProgressDisplay>(show && ::isatty(STDERR_FILENO), show);
  options.progress = display->Callback();
  return display;
}

Result<std::optional<int>> KeyFd(const ArgParser& p) {
  if (!p.Get("key-fd")) return std::optional<int>();
  SR_ASSIGN_OR_RETURN(std::uint64_t fd, ParseCount(p, "key-fd", 0));
  return std::optional<int>(static_cast<int>(fd));
}

Status RunSeal(const ArgParser& p, const image::Reference& ref, Pipeline& pipe, json& out) {
  std::optional<std::string> key_file = p.Get("key-file");
  SR_ASSIGN_OR_RETURN(std::optional<int> key_fd, KeyFd(p));
  if (key_file.has_value() == key_fd.has_value())
    return InvalidArgument("--seal needs exactly one of --key-file or --key-fd");
  SR_ASSIGN_OR_RETURN(SecretBytes key, sealing::LoadOrCreateStoreKey(*p.Get("seal"), key_file, key_fd));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<sealing::SealingSink> sink,
                      sealing::OpenSealingSink({*p.Get("seal"), std::move(key)}, p.Get("name").value_or("")));
  SR_RETURN_IF_ERROR(image::PullAndUnpack(ref, pipe.options, *sink).status());
  out["root_hash"] = fusefs::HashHex(sink->root_hash());
  out["store"] = *p.Get("seal");
  if (p.Has("name")) out["name"] = *p.Get("name");
  return OkStatus();
}

}  // namespace

int Unpack(Args args) {
  ArgParser p("sealroot unpack", "SOURCE [DEST]",
              "Pull, verify and unpack an image into an OCI bundle (DEST/rootfs + DEST/config.json, as umoci "
              "unpack), or into a sealed store with --seal.\nSOURCE: docker://HOST/REPO[:TAG][@DIGEST], "
              "oci:DIR[:TAG], oci-archive:FILE[:TAG].");
  AddSourceFlags(p);
  p.Flag("quiet", "no progress line and no summary line");
  p.Flag("rootless", "do not chown or mknod; record ownership in user.rootlesscontainers (umoci --rootless)");
  p.Flag("replace", "replace a non-empty DEST once the new bundle is complete");
  p.Option("seal", "STORE", "unpack into this sealed store instead of a bundle; prints the root hash");
  p.Option("key-file", "FILE", "with --seal: the store key (created, mode 0600, only for a new store)");
  p.Option("name", "NAME", "with --seal: name the root (gc keeps named roots; sealroot roots ls|rm)");
  p.Option("key-fd", "N", "with --seal: read the store key from file descriptor N");
  if (auto rc = cli::ParseCommandLine(p, args)) return *rc;
  bool seal = p.Has("seal");
  Status usage = OkStatus();
  if (p.positionals().empty()) {
    usage = InvalidArgument(
        "missing SOURCE, the image to unpack (usage: sealroot unpack SOURCE DEST, or "
        "SOURCE --seal STORE)");
  } else if (!seal && p.positionals().size() == 1) {
    usage = InvalidArgument(
        "missing DEST, the bundle directory to create (or give --seal STORE to unpack "
        "into a sealed store)");
  } else if (p.positionals().size() > (seal ? 1u : 2u)) {
    usage = InvalidArgument(seal ? "--seal STORE takes no DEST: unpack SOURCE --seal STORE"
                                 : "too many arguments: sealroot unpack SOURCE DEST");
  }
  if (!usage.ok()) return cli::ReportError(p, usage);
  auto ref = image::Reference::Parse(p.positionals()[0]);
  if (!ref.ok()) return cli::ReportError(p, ref.status());
  auto pipe = MakePipeline(p);
  if (!pipe.ok()) return cli::ReportError(p, pipe.status());
  std::unique_ptr<ProgressDisplay> progress = MakeProgress(p, (*pipe)->options);
  json out = {{"image", ref->ToString()}};
  Status s;
  if (seal) {
    s = RunSeal(p, *ref, **pipe, out);
  } else {
    image::DirSinkOptions sink_options{p.Bool("rootless"), p.Bool("replace"), true};
    auto sink = image::OpenDirSink(p.positionals()[1], sink_options);
    s = sink.ok() ? image::PullAndUnpack(*ref, (*pipe)->options, **sink).status() : sink.status();
    out["bundle"] = p.positionals()[1];
  }
  progress->Finish(s.ok());
  if (!s.ok()) return cli::ReportError(p, s);
  if (p.Bool("json")) {
    std::cout << out.dump() << std::endl;
  } else if (seal) {
    std::cout << out["root_hash"].get<std::string>() << std::endl;
  }
  return cli::kExitOk;
}

int Pull(Args args) {
  ArgParser p("sealroot pull", "SOURCE oci:DIR[:TAG]",
              "Copy one platform of an image, every blob verified, into an OCI image layout.");
  AddSourceFlags(p);
  p.Flag("quiet", "no progress line and no summary line");
  if (auto rc = cli::ParseCommandLine(p, args)) return *rc;
  if (p.positionals().size() < 2) {
    return cli::ReportError(
        p, InvalidArgument(p.positionals().empty()
                               ? "missing SOURCE and DEST (usage: sealroot pull SOURCE oci:DIR[:TAG])"
                               : "missing DEST, the OCI layout to copy into (oci:DIR[:TAG])"));
  }
  if (Status s = p.ExpectPositionals(2, 2); !s.ok()) return cli::ReportError(p, s);
  auto ref = image::Reference::Parse(p.positionals()[0]);
  if (!ref.ok()) return cli::ReportError(p, ref.status());
  auto dest = image::Reference::Parse(p.positionals()[1]);
  if (!dest.ok()) return cli::ReportError(p, dest.status());
  auto pipe = MakePipeline(p);
  if (!pipe.ok()) return cli::ReportError(p, pipe.status());
  std::unique_ptr<ProgressDisplay> progress = MakeProgress(p, (*pipe)->options);
  Status s = image::PullToLayout(*ref, *dest, (*pipe)->options);
  progress->Finish(s.ok());
  if (!s.ok()) return cli::ReportError(p, s);
  if (p.Bool("json"))
    std::cout << json{{"image", ref->ToString()}, {"destination", dest->ToString()}}.dump() << std::endl;
  return cli::kExitOk;
}

}  // namespace sealroot::tool

namespace sealroot::tool {
namespace {

json InspectJson(const image::Reference& ref, const image::ResolvedImage& img) {
  json layers = json::array();
  for (std::size_t i = 0; i < img.parsed.layers.size(); ++i) {
    const image::Descriptor& d = img.parsed.layers[i];
    layers.push_back({{"digest", d.digest.str()},
                      {"size", d.size},
                      {"media_type", d.media_type},
                      {"diff_id", img.config.diff_ids[i].str()}});
  }
  json out = {
      {"image", ref.ToString()},
      {"digest", img.manifest.digest.str()},
      {"media_type", img.manifest.media_type},
      {"platform", image::Platform{img.config.os, img.config.architecture, img.config.variant}.ToString()},
      {"manifest", json::parse(img.manifest.bytes)},
      {"config", json::parse(img.config_json)},
      {"layers", layers}};
  if (img.index) {
    out["index_digest"] = img.index->digest.str();
    json platforms = json::array();
    auto index = image::ParseIndex(img.index->bytes, img.index->media_type);
    if (index.ok()) {
      for (const auto& e : index->manifests) {
        if (e.platform) platforms.push_back(e.platform->ToString());
      }
    }
    out["platforms"] = platforms;
  }
  return out;
}

std::string Joined(const json& list) {
  std::string out;
  for (const auto& v : list) out += (out.empty() ? "" : " ") + v.get<std::string>();
  return out;
}

void PrintInspect(const json& j) {
  std::cout << "Image:       " << j["image"].get<std::string>() << "\n";
  if (j.contains("index_digest")) {
    std::cout << "Index:       " << j["index_digest"].get<std::string>() << "\n";
    std::cout << "Platforms:   " << Joined(j["platforms"]) << "\n";
  }
  std::cout << "Manifest:    " << j["digest"].get<std::string>() << " (" << j["media_type"].get<std::string>()
            << ")\n";
  std::cout << "Platform:    " << j["platform"].get<std::string>() << "\n";
  const json& cfg = j["config"].value("config", json::object());
  for (const char* key : {"Entrypoint", "Cmd", "Env"}) {
    if (cfg.contains(key) && cfg[key].is_array())
      std::cout << std::string(key) + ":" << std::string(12 - std::string(key).size(), ' ')
                << Joined(cfg[key]) << "\n";
  }
  for (const char* key : {"WorkingDir", "User"}) {
    if (cfg.contains(key) && cfg[key].is_string())
      std::cout << std::string(key) + ":" << std::string(12 - std::string(key).size(), ' ')
                << cfg[key].get<std::string>() << "\n";
  }
  std::cout << "Layers:\n";
  for (const auto& l : j["layers"]) {
    std::cout << "  " << l["digest"].get<std::string>() << "  " << l["size"].get<std::int64_t>() << " bytes  "
              << l["media_type"].get<std::string>() << "\n";
  }
}

}  // namespace

int Inspect(Args args) {
  ArgParser p("sealroot inspect", "SOURCE",
              "Show an image's manifest, config, layers and platforms (manifest and config verified).");
  AddSourceFlags(p);
  p.Flag("raw", "print the manifest (or index) exactly as the source holds it, verified, and nothing else");
  p.Flag("config", "print the image's config (verified) and nothing else");
  if (auto rc = cli::ParseCommandLine(p, args)) return *rc;
  if (p.positionals().empty())
    return cli::ReportError(p, InvalidArgument("missing SOURCE, the image to inspect"));
  if (Status s = p.ExpectPositionals(1, 1); !s.ok()) return cli::ReportError(p, s);
  auto ref = image::Reference::Parse(p.positionals()[0]);
  if (!ref.ok()) return cli::ReportError(p, ref.status());
  // Inspect reports the policy's verdict (below) instead of enforcing it.
  auto pipe = MakePipeline(p, /*enforce_policy=*/false);
  if (!pipe.ok()) return cli::ReportError(p, pipe.status());
  auto source = image::OpenImageSource(*ref, (*pipe)->options);
  if (!source.ok()) return cli::ReportError(p, source.status());
  if (p.Bool("raw")) {
    auto top = (*source)->GetManifest(ref->TagOrDigest());
    if (top.ok() && ref->digest && top->digest != *ref->digest)
      top = DataLoss("manifest digest mismatch: got " + top->digest.str() + ", want " + ref->digest->str());
    if (!top.ok())
      return cli::ReportError(p, std::move(top).status().WithContext("inspecting " + ref->ToString()));
    std::cout << top->bytes << std::flush;
    return cli::kExitOk;
  }
  auto resolved = image::ResolveImage(**source, (*pipe)->options);
  if (!resolved.ok())
    return cli::ReportError(p, std::move(resolved).status().WithContext("inspecting " + ref->ToString()));
  if (p.Bool("config")) {
    std::cout << resolved->config_json << std::flush;
    return cli::kExitOk;
  }
  json j = InspectJson(*ref, *resolved);
  auto trust = image::InspectTrust(**source, resolved->manifest, image::TrustOptionsFromFlags(p));
  if (p.Bool("json")) {
    j["trust"] =
        trust.ok() ? json::parse(image::TrustReportJson(*trust)) : json{{"error", trust.status().message()}};
    std::cout << j.dump(2) << std::endl;
  } else {
    PrintInspect(j);
    std::cout << (trust.ok() ? image::FormatTrustReport(*trust)
                             : "trust: " + trust.status().message() + "\n");
  }
  return cli::kExitOk;
}

}  // namespace sealroot::tool
