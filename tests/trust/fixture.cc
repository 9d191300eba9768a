#include "tests/trust/fixture.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/crypto.h"
#include "base/file.h"
#include "tests/support/string_reader.h"

namespace sealroot::testing::trust {
namespace {

using nlohmann::json;

// Keys, a two-layer image and its encrypted variants; gpg keys. Runs in the material directory.
constexpr const char* kMakeMaterial = R"SH(set -e
openssl genrsa -out rsa.pem 2048 2>/dev/null
openssl rsa -in rsa.pem -pubout -out rsa.pub 2>/dev/null
openssl req -x509 -new -key rsa.pem -subj /CN=sealroot-test -days 30 -out rsa.crt
openssl pkcs8 -topk8 -in rsa.pem -out rsa-enc.pem -passout pass:correct-horse
openssl pkey -in rsa.pem -outform DER -out rsa.der
openssl genrsa -out other-rsa.pem 2048 2>/dev/null
openssl rsa -in other-rsa.pem -pubout -out other-rsa.pub 2>/dev/null
openssl ecparam -genkey -name prime256v1 -noout -out ec.pem
openssl ec -in ec.pem -pubout -out ec.pub 2>/dev/null
openssl pkey -in ec.pem -outform DER -out ec.der
openssl ecparam -genkey -name secp384r1 -noout -out ec384.pem
openssl ec -in ec384.pem -pubout -out ec384.pub 2>/dev/null
openssl ecparam -genkey -name prime256v1 -noout -out other-ec.pem
openssl ec -in other-ec.pem -pubout -out other-ec.pub 2>/dev/null
openssl genpkey -algorithm ed25519 -out ed.pem
openssl pkey -in ed.pem -pubout -out ed.pub
umoci init --layout plain
umoci new --image plain:t
umoci unpack --image plain:t bundle >/dev/null
mkdir -p bundle/rootfs/etc bundle/rootfs/data
echo hello > bundle/rootfs/etc/hello
head -c 200000 /dev/urandom > bundle/rootfs/data/random
umoci repack --image plain:t bundle
rm -rf bundle
umoci unpack --image plain:t bundle >/dev/null
echo second > bundle/rootfs/etc/second
rm bundle/rootfs/etc/hello
umoci repack --image plain:t bundle
rm -rf bundle
skopeo copy -q --encryption-key jwe:rsa.pub oci:plain:t oci:jwe-rsa:t
skopeo copy -q --encryption-key jwe:ec.pub oci:plain:t oci:jwe-ec:t
skopeo copy -q --encryption-key pkcs7:rsa.crt oci:plain:t oci:pkcs7:t
skopeo copy -q --encryption-key jwe:rsa.pub --encryption-key jwe:ec.pub --encrypt-layer 1 oci:plain:t oci:two:t
export GNUPGHOME=$PWD/gnupg
mkdir -m 700 gnupg
gpg -q --batch --passphrase '' --quick-gen-key "Sealroot Test <test@example.com>" ed25519 sign never 2>/dev/null
gpg -q --batch --passphrase '' --quick-gen-key "Other Signer <other@example.com>" rsa2048 sign never 2>/dev/null
gpg --list-keys --with-colons | awk -F: '/^fpr/{print $10}' > fingerprints
gpg -q --export "$(sed -n 1p fingerprints)" > pub.gpg
gpg -q --armor --export "$(sed -n 1p fingerprints)" > pub.asc
gpg -q --export "$(sed -n 2p fingerprints)" > other.gpg
)SH";

Material* Build() {
  auto* m = new Material();  // lives for the whole test binary
  CommandOptions options;
  options.cwd = m->dir.path();
  options.timeout = std::chrono::seconds(300);
  CommandResult r = Shell(kMakeMaterial, options);
  if (!r.ok()) {
    std::cerr << "making trust test material failed:\n" << r.out << r.err << std::endl;
    std::abort();
  }
  m->gnupg_home = m->Path("gnupg");
  std::istringstream fprs(ReadFileOrDie(m->Path("fingerprints")));
  fprs >> m->fpr >> m->other_fpr;
  return m;
}

}  // namespace

const Material& M() {
  static const Material* material = Build();
  return *material;
}

CommandResult MustShell(const std::string& script, const CommandOptions& options) {
  CommandOptions o = options;
  if (o.cwd.empty()) o.cwd = M().dir.path();
  if (!o.env.contains("GNUPGHOME")) o.env["GNUPGHOME"] = M().gnupg_home;
  CommandResult r = Shell("set -e\n" + script, o);
  EXPECT_TRUE(r.ok()) << script << "\n" << r.out << r.err;
  return r;
}

std::string ReadFileOrDie(const std::string& path) {
  Result<std::string> data = ReadFile(path);
  if (!data.ok()) {
    std::cerr << data.status().ToString() << std::endl;
    std::abort();
  }
  return *data;
}

image::Descriptor ParseDescriptor(const json& j) {
  image::Descriptor d{j.value("mediaType", ""),
                      *image::Digest::Parse(j["digest"].get<std::string>()),
                      j["size"].get<std::int64_t>(),
                      {}};
  if (j.contains("annotations")) {
    for (const auto& [k, v] : j["annotations"].items()) d.annotations[k] = v.get<std::string>();
  }
  return d;
}

LayoutImage ReadLayout(const std::string& dir, const std::string& tag) {
  json index = json::parse(ReadFileOrDie(dir + "/index.json"));
  for (const json& m : index["manifests"]) {
    if (m["annotations"].value("org.opencontainers.image.ref.name", "") != tag) continue;
    image::Digest digest = *image::Digest::Parse(m["digest"].get<std::string>());
    LayoutImage out{
        dir,
        {ReadFileOrDie(dir + "/blobs/sha256/" + std::string(digest.hex())), m["mediaType"], digest},
        {},
        {}};
    out.json = json::parse(out.manifest.bytes);
    for (const json& l : out.json["layers"]) out.layers.push_back(ParseDescriptor(l));
    return out;
  }
  std::cerr << "no tag " << tag << " in " << dir << std::endl;
  std::abort();
}

std::unique_ptr<Reader> BytesReader(std::string data, std::size_t piece) {
  return std::make_unique<sealroot::testing::StringReader>(std::move(data), piece);
}

Result<std::string> ReadAll(Reader& reader) {
  std::string out;
  std::vector<std::uint8_t> buf(65536);
  for (;;) {
    SR_ASSIGN_OR_RETURN(std::size_t n, reader.Read(buf));
    if (n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf.data()), n);
  }
}

Result<image::ManifestBytes> FakeSource::GetManifest(std::string_view tag_or_digest) {
  auto it = manifests_.find(tag_or_digest);
  if (it == manifests_.end()) return NotFound("manifest " + std::string(tag_or_digest) + " not found");
  return it->second;
}

Result<std::unique_ptr<Reader>> FakeSource::OpenBlob(const image::Descriptor& descriptor) {
  auto it = blobs_.find(descriptor.digest.str());
  if (it == blobs_.end()) return NotFound("blob " + descriptor.digest.str() + " not found");
  return BytesReader(it->second);
}

image::ManifestBytes FakeSource::AddManifest(const std::string& tag, std::string bytes) {
  image::Digest digest = image::Digest::FromSha256(Sha256Of(bytes));
  image::ManifestBytes m{std::move(bytes), "application/vnd.oci.image.manifest.v1+json", digest};
  manifests_.insert_or_assign(tag, m);
  manifests_.insert_or_assign(digest.str(), m);
  return m;
}

image::Digest FakeSource::AddBlob(std::string bytes) {
  image::Digest digest = image::Digest::FromSha256(Sha256Of(bytes));
  blobs_[digest.str()] = std::move(bytes);
  return digest;
}

image::Reference DockerReference(const std::string& host, const std::string& repo, const std::string& tag,
                                 const std::string& digest) {
  image::Reference ref;
  ref.transport = image::Transport::kDocker;
  ref.registry = host;
  ref.repository = repo;
  ref.tag = tag;
  if (!digest.empty()) ref.digest = *image::Digest::Parse(digest);
  return ref;
}

}  // namespace sealroot::testing::trust
