// Parsers and small rules of the image path: references, digests, manifests and indexes,
// platform selection, image config, user resolution, the runtime spec, tar path cleaning.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/fd.h"
#include "image/config.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/src/tar_walk.h"
#include "tests/support/process.h"

namespace sealroot::image {
namespace {

const std::string kHex(64, 'a');
const std::string kDigest = "sha256:" + kHex;

TEST(Reference, DockerDefaults) {
  auto r = Reference::Parse("busybox");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->registry, "docker.io");
  EXPECT_EQ(r->repository, "library/busybox");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->ToString(), "docker://docker.io/library/busybox:latest");
}

TEST(Reference, HostPortTagDigest) {
  auto r = Reference::Parse("docker://127.0.0.1:5000/team/app:v1.2@" + kDigest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "team/app");
  EXPECT_EQ(r->tag, "v1.2");
  EXPECT_EQ(r->TagOrDigest(), kDigest);
  EXPECT_EQ(r->DockerReference(), "127.0.0.1:5000/team/app:v1.2@" + kDigest);
}

TEST(Reference, LayoutAndArchive) {
  auto l = Reference::Parse("oci:/tmp/x:tag");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->transport, Transport::kOciLayout);
  EXPECT_EQ(l->path, "/tmp/x");
  EXPECT_EQ(l->tag, "tag");
  auto a = Reference::Parse("oci-archive:/tmp/x.tar");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->transport, Transport::kOciArchive);
  EXPECT_EQ(a->tag, "");
}

TEST(Reference, RejectsMalformed) {
  for (const std::string& bad :
       std::vector<std::string>{"", "docker://", "UPPER/case", "host:5000/repo:bad tag", "repo@sha256:abc",
                                "repo@md5:" + kHex, "a//b", "host:port/x", "oci:", "-leading/dash"}) {
    EXPECT_FALSE(Reference::Parse(bad).ok()) << bad;
  }
}

TEST(Digest, PathTraversalDigestRejected) {  // CVE-2024-3727
  EXPECT_FALSE(Digest::Parse("sha256:../../../../etc/passwd").ok());
  EXPECT_FALSE(Digest::Parse("sha256:" + std::string(64, 'A')).ok());
  EXPECT_FALSE(Digest::Parse("sha512:" + kHex).ok());
  EXPECT_TRUE(Digest::Parse(kDigest).ok());
}

std::string ManifestJson(const std::string& layer_digest,
                         const std::string& media_type = std::string(kOciManifest)) {
  return R"({"schemaVersion":2,"mediaType":")" + media_type +
         R"(","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kDigest +
         R"(","size":10},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
         layer_digest + R"(","size":20}]})";
}

TEST(Manifest, Parses) {
  auto m = ParseManifest(ManifestJson(kDigest), kOciManifest);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->config.size, 10);
}

TEST(Manifest, MalformedLayerDigestRejected) {
  auto m = ParseManifest(ManifestJson("sha256:../../etc/passwd"), kOciManifest);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("malformed digest"), std::string::npos) << m.status().message();
}

TEST(Manifest, MediaTypeMismatchRejected) {
  EXPECT_FALSE(ParseManifest(ManifestJson(kDigest), kDockerManifest).ok());
  EXPECT_FALSE(ParseManifest(ManifestJson(kDigest, std::string(kOciIndex)), "").ok());
}

TEST(Manifest, GarbageRejected) {
  for (const std::string& bad : std::vector<std::string>{
           "", "[]", "{", R"({"schemaVersion":1})", R"({"schemaVersion":2,"layers":[]})",
           R"({"schemaVersion":2,"config":{"digest":")" + kDigest + R"(","size":-1},"layers":[]})"}) {
    EXPECT_FALSE(ParseManifest(bad, "").ok()) << bad;
  }
}

TEST(Index, PlatformSelection) {
  std::string index = R"({"schemaVersion":2,"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
                      std::string(64, '1') + R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
                      std::string(64, '2') +
                      R"(","size":1,"platform":{"os":"linux","architecture":"arm64"}}]})";
  auto parsed = ParseIndex(index, "");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto arm = SelectPlatform(*parsed, {"linux", "arm64", "v8"});  // v8 falls back to no variant
  ASSERT_TRUE(arm.ok());
  EXPECT_EQ(arm->digest.hex(), std::string(64, '2'));
  auto none = SelectPlatform(*parsed, {"linux", "s390x", ""});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("linux/amd64"), std::string::npos);
}

TEST(ImageConfig, ParsesAndRejects) {
  auto c = ParseImageConfig(R"({"architecture":"amd64","os":"linux","config":{"Entrypoint":["/a"],"Cmd":["b"],
     "Env":["X=1"],"WorkingDir":"/w","User":"1:2"},"rootfs":{"type":"layers","diff_ids":[")" +
                            kDigest + R"("]}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->entrypoint, std::vector<std::string>{"/a"});
  EXPECT_EQ(c->diff_ids.size(), 1u);
  EXPECT_FALSE(ParseImageConfig(R"({"rootfs":{"type":"other","diff_ids":[]}})").ok());
  EXPECT_FALSE(ParseImageConfig(R"({"rootfs":{"type":"layers","diff_ids":["sha256:nope"]}})").ok());
  EXPECT_FALSE(ParseImageConfig(R"({"config":{"Env":"X=1"},"rootfs":{"type":"layers","diff_ids":[]}})").ok());
}

TEST(ResolveUser, NamesNumbersAndGroups) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "etc");
  std::ofstream(dir / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
  std::ofstream(dir / "etc/group") << "root:x:0:\nextra:x:2000:app,other\nstaff:x:50:\n";
  UniqueFd root(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  auto app = ResolveUser("app", root.get());
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  EXPECT_EQ(app->uid, 1000u);
  EXPECT_EQ(app->home, "/home/app");
  EXPECT_EQ(app->additional_gids, std::vector<std::uint32_t>{2000});
  auto grouped = ResolveUser("app:staff", root.get());
  ASSERT_TRUE(grouped.ok());
  EXPECT_EQ(grouped->gid, 50u);
  EXPECT_TRUE(grouped->additional_gids.empty());
  auto numeric = ResolveUser("4242:7", root.get());
  ASSERT_TRUE(numeric.ok());
  EXPECT_EQ(numeric->uid, 4242u);
  EXPECT_EQ(numeric->gid, 7u);
  EXPECT_FALSE(ResolveUser("nobody-here", root.get()).ok());
  EXPECT_FALSE(ResolveUser("app:nogroup", root.get()).ok());
}

TEST(ResolveUser, PasswdSymlinkOutsideRootIsConfined) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "etc");
  // A hostile image points /etc/passwd at the host's file: it must resolve inside the root.
  std::filesystem::create_symlink("/etc/passwd", dir / "etc/passwd");
  UniqueFd root(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_FALSE(ResolveUser("root", root.get()).ok());
}

TEST(RuntimeSpec, ProcessFromImageConfig) {
  ImageConfig c;
  c.entrypoint = {"/bin/app", "-x"};
  c.cmd = {"serve"};
  c.env = {"PATH=/custom", "A=b"};
  c.user = "12:34";
  auto spec = RuntimeSpecFromImageConfig(c, {});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const auto& p = (*spec)["process"];
  EXPECT_EQ(p["args"], nlohmann::json({"/bin/app", "-x", "serve"}));
  EXPECT_EQ(p["env"], nlohmann::json({"PATH=/custom", "TERM=xterm", "A=b"}));
  EXPECT_EQ(p["cwd"], "/");
  EXPECT_EQ(p["user"]["uid"], 12);
  EXPECT_EQ(p["user"]["gid"], 34);
}

TEST(TarPath, Cleaning) {
  EXPECT_EQ(*internal::CleanEntryPath("./a//b/./c/"), "a/b/c");
  EXPECT_EQ(*internal::CleanEntryPath("./"), "");
  EXPECT_FALSE(internal::CleanEntryPath("../etc/passwd").ok());
  EXPECT_FALSE(internal::CleanEntryPath("a/../../b").ok());
  EXPECT_FALSE(internal::CleanEntryPath("/etc/passwd").ok());
}

// A layer whose stream ends inside a GNU long-name entry makes libarchive fail without an error
// message; the walk reports it as a malformed tar instead of building a string from null (found
// by tests/fuzz/tar_walk_fuzz.cc).
TEST(TarWalk, StreamCutInsideAGnuLongNameIsAnErrorNotACrash) {
  std::string header(512, '\0');
  auto put = [&](std::size_t offset, std::string_view text) { header.replace(offset, text.size(), text); };
  put(0, "././@LongLink");
  put(100, "0000644");
  put(108, "0000000");
  put(116, "0000000");
  put(124, "00000000231");  // 153 bytes of name follow ... but only 24 do
  put(136, "00000000000");
  put(156, "L");
  put(257, "ustar  ");
  put(148, "        ");
  unsigned sum = 0;
  for (char c : header) sum += static_cast<unsigned char>(c);
  char checksum[8];
  std::snprintf(checksum, sizeof(checksum), "%06o", sum);
  put(148, std::string_view(checksum, 7));
  const std::string layer = header + std::string(24, 'x');

  class StringReader final : public Reader {
   public:
    explicit StringReader(std::string_view s) : s_(s) {}
    Result<std::size_t> Read(std::span<std::uint8_t> out) override {
      std::size_t n = std::min(out.size(), s_.size());
      std::copy_n(s_.data(), n, out.data());
      s_.remove_prefix(n);
      return n;
    }

   private:
    std::string_view s_;
  } reader(layer);
  class NoEntries final : public LayerSink {
   public:
    Status AddEntry(const Entry& e, Reader*) override { return Internal("unexpected entry " + e.path); }
    Status Commit() override { return OkStatus(); }
    void Abort(const Status&) override {}
  } sink;
  Status walked = internal::WalkTar(reader, sink);
  ASSERT_FALSE(walked.ok());
  EXPECT_EQ(walked.code(), Code::kDataLoss) << walked.ToString();
  EXPECT_NE(walked.message().find("malformed tar"), std::string::npos) << walked.ToString();
}

}  // namespace
}  // namespace sealroot::image
