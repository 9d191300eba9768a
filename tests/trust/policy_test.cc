// containers-policy.json: strict parsing, scope selection (most specific wins), every
// signedIdentity variant, the default policy.
#include "image/src/trust/policy.h"

#include <gtest/gtest.h>

#include "base/encoding.h"
#include "base/file.h"
#include "image/src/trust/docker_ref.h"
#include "image/src/trust/verifier.h"
#include "tests/trust/fixture.h"

namespace sealroot::testing::trust {
namespace {

using image::trust::DockerRef;
using image::trust::Policy;
using image::trust::SignedIdentity;

Status ParseError(const std::string& json) {
  return Policy::Parse(json, "test policy").status();
}

TEST(PolicyAttack, StrictParsingRejectsWhatContainersImageRejects) {
  const std::string key = M().Path("pub.gpg");
  const std::vector<std::string> bad = {
      "",
      "[]",
      R"({})",
      R"({"default":[]})",
      R"({"default":[{"type":"insecureAcceptAnything"}],"extra":1})",
      R"({"default":[{"type":"insecureAcceptAnything","x":1}]})",
      R"({"default":[{"type":"insecureAcceptAnything"}],"default":[{"type":"reject"}]})",
      R"({"default":[{"type":"rejectt"}]})",
      R"({"default":[{"type":"signedBy","keyType":"GPGKeys"}]})",
      R"({"default":[{"type":"signedBy","keyType":"X509Certificates","keyPath":")" + key + R"("}]})",
      R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" + key + R"(","keyData":"eA=="}]})",
      R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/nonexistent/key.gpg"}]})",
      R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" + M().Path("rsa.pub") + R"("}]})",
      R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" + key +
          R"(","signedIdentity":{"type":"exactReference","dockerReference":"docker.io/library/busybox"}}]})",
      R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" + key +
          R"(","signedIdentity":{"type":"exactRepository","dockerRepository":"busybox:latest"}}]})",
      R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" + key +
          R"(","signedIdentity":{"type":"remapIdentity","prefix":"Not A Prefix","signedPrefix":"a.io"}}]})",
      R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" + key +
          R"(","signedIdentity":{"type":"matchExact","extra":1}}]})",
      R"({"default":[{"type":"sigstoreSigned","keyPath":")" + M().Path("ec.pem.missing") + R"("}]})",
      R"({"default":[{"type":"sigstoreSigned","fulcio":{}}]})",
      R"({"default":[{"type":"sigstoreSigned","keyPath":")" + key + R"("}]})",
      R"({"default":[{"type":"reject"}],"transports":{"nope":{}}})",
      R"({"default":[{"type":"reject"}],"transports":{"docker":{"busybox":[{"type":"reject"}]}}})",
      R"({"default":[{"type":"reject"}],"transports":{"docker":{"docker.io/library/busybox":[]}}})",
      R"({"default":[{"type":"reject"}],"transports":{"oci":{"relative/dir":[{"type":"reject"}]}}})",
      R"({"default":[{"type":"reject"}],"transports":{"oci":{"/a/../b":[{"type":"reject"}]}}})",
  };
  for (const std::string& policy : bad) {
    Status s = ParseError(policy);
    EXPECT_FALSE(s.ok()) << "accepted: " << policy;
  }
}

TEST(Policy, EveryRequirementTypeParses) {
  const std::string key = M().Path("pub.gpg");
  std::string policy = R"({"default":[{"type":"reject"}],"transports":{"docker":{
      "a.io/x":[{"type":"insecureAcceptAnything"}],
      "a.io/y":[{"type":"signedBy","keyType":"GPGKeys","keyPaths":[")" +
                       key + R"(",")" + M().Path("other.gpg") + R"("]}],
      "a.io/z":[{"type":"signedBy","keyType":"GPGKeys","keyData":")" +
                       Base64Encode(AsBytes(ReadFileOrDie(key))) + R"(",
                 "signedIdentity":{"type":"remapIdentity","prefix":"a.io/z","signedPrefix":"b.io/z"}}],
      "a.io/w":[{"type":"sigstoreSigned","keyPath":")" +
                       M().Path("ec.pub") + R"(","signedIdentity":{"type":"matchRepository"}}],
      "*.b.io":[{"type":"sigstoreSigned","keyPath":")" +
                       M().Path("ed.pub") + R"("}]},
    "oci":{"":[{"type":"insecureAcceptAnything"}]}, "dir":{"":[{"type":"reject"}]}}})";
  auto p = Policy::Parse(policy, "test");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
}

std::string Selected(const Policy& p, const image::Reference& ref) {
  return p.For(ref).scope;
}

TEST(Policy, MostSpecificDockerScopeWins) {
  auto p = Policy::Parse(R"({"default":[{"type":"reject"}],"transports":{"docker":{
      "":[{"type":"reject"}],
      "*.example.com":[{"type":"reject"}],
      "reg.example.com":[{"type":"reject"}],
      "reg.example.com/ns":[{"type":"reject"}],
      "reg.example.com/ns/app":[{"type":"reject"}],
      "reg.example.com/ns/app:v1":[{"type":"insecureAcceptAnything"}]}}})",
                         "t");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(Selected(*p, DockerReference("reg.example.com", "ns/app", "v1")),
            "docker:reg.example.com/ns/app:v1");
  EXPECT_EQ(Selected(*p, DockerReference("reg.example.com", "ns/app", "v2")),
            "docker:reg.example.com/ns/app");
  EXPECT_EQ(Selected(*p, DockerReference("reg.example.com", "ns/other", "v1")), "docker:reg.example.com/ns");
  EXPECT_EQ(Selected(*p, DockerReference("reg.example.com", "app", "v1")), "docker:reg.example.com");
  EXPECT_EQ(Selected(*p, DockerReference("mirror.example.com", "app", "v1")), "docker:*.example.com");
  EXPECT_EQ(Selected(*p, DockerReference("quay.io", "app", "v1")), "docker:");
  image::Reference oci;
  oci.transport = image::Transport::kOciLayout;
  oci.path = "/some/dir";
  EXPECT_EQ(Selected(*p, oci), "default");
}

TEST(Policy, DockerHubShortNamesAreNormalised) {
  auto p = Policy::Parse(R"({"default":[{"type":"reject"}],"transports":{"docker":{
      "docker.io/library/busybox":[{"type":"insecureAcceptAnything"}]}}})",
                         "t");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Selected(*p, DockerReference("docker.io", "busybox", "")), "docker:docker.io/library/busybox");
  EXPECT_EQ(Selected(*p, DockerReference("index.docker.io", "library/busybox", "1")),
            "docker:docker.io/library/busybox");
}

TEST(Policy, MostSpecificOciScopeWins) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp / "images/app").ok());
  std::string dir = tmp / "images/app";
  auto p = Policy::Parse(R"({"default":[{"type":"reject"}],"transports":{"oci":{
      "":[{"type":"reject"}],
      ")" + tmp.path() + R"(":[{"type":"reject"}],
      ")" + dir + R"(":[{"type":"reject"}],
      ")" + dir + R"(:v1":[{"type":"insecureAcceptAnything"}]},
      "oci-archive":{")" + tmp.path() +
                             R"(/a.tar":[{"type":"reject"}]}}})",
                         "t");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  image::Reference ref;
  ref.transport = image::Transport::kOciLayout;
  ref.path = dir;
  ref.tag = "v1";
  EXPECT_EQ(Selected(*p, ref), "oci:" + dir + ":v1");
  ref.tag = "v2";
  EXPECT_EQ(Selected(*p, ref), "oci:" + dir);
  ref.path = tmp / "images/other";
  EXPECT_EQ(Selected(*p, ref), "oci:" + tmp.path());
  ref.path = "/elsewhere";
  EXPECT_EQ(Selected(*p, ref), "oci:");
  ref.transport = image::Transport::kOciArchive;
  ref.path = tmp / "a.tar";
  EXPECT_EQ(Selected(*p, ref), "oci-archive:" + tmp.path() + "/a.tar");
}

DockerRef Ref(const std::string& s) {
  auto r = DockerRef::Parse(s);
  EXPECT_TRUE(r.ok()) << s;
  return *r;
}

SignedIdentity Identity(const std::string& json) {
  std::string policy = R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" +
                       M().Path("pub.gpg") + R"(","signedIdentity":)" + json + "}]}";
  auto p = Policy::Parse(policy, "t");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p->For(DockerReference("x.io", "y", "z")).requirements->front().identity;
}

TEST(SignedIdentity, EveryVariant) {
  const std::string digest = "@sha256:" + std::string(64, 'a');
  auto image_tag = std::optional(Ref("r.io/ns/app:v1"));
  auto image_digest = std::optional(Ref("r.io/ns/app" + digest));
  std::optional<DockerRef> no_docker_identity;

  SignedIdentity rde = Identity(R"({"type":"matchRepoDigestOrExact"})");
  EXPECT_TRUE(rde.Matches(image_tag, Ref("r.io/ns/app:v1")));
  EXPECT_FALSE(rde.Matches(image_tag, Ref("r.io/ns/app:v2")));
  EXPECT_TRUE(rde.Matches(image_digest, Ref("r.io/ns/app:whatever")));
  EXPECT_FALSE(rde.Matches(image_digest, Ref("r.io/ns/other:v1")));
  EXPECT_FALSE(rde.Matches(no_docker_identity, Ref("r.io/ns/app:v1")));

  SignedIdentity exact = Identity(R"({"type":"matchExact"})");
  EXPECT_TRUE(exact.Matches(image_tag, Ref("r.io/ns/app:v1")));
  EXPECT_FALSE(exact.Matches(image_digest, Ref("r.io/ns/app:v1")));
  EXPECT_TRUE(exact.Matches(image_digest, Ref("r.io/ns/app" + digest)));

  SignedIdentity repo = Identity(R"({"type":"matchRepository"})");
  EXPECT_TRUE(repo.Matches(image_tag, Ref("r.io/ns/app:other")));
  EXPECT_TRUE(repo.Matches(image_tag, Ref("r.io/ns/app")));
  EXPECT_FALSE(repo.Matches(image_tag, Ref("r.io/ns/app2:v1")));

  SignedIdentity exact_ref = Identity(R"({"type":"exactReference","dockerReference":"busybox:1"})");
  EXPECT_TRUE(exact_ref.Matches(no_docker_identity, Ref("docker.io/library/busybox:1")));
  EXPECT_FALSE(exact_ref.Matches(image_tag, Ref("busybox:2")));

  SignedIdentity exact_repo = Identity(R"({"type":"exactRepository","dockerRepository":"q.io/app"})");
  EXPECT_TRUE(exact_repo.Matches(image_tag, Ref("q.io/app:any")));
  EXPECT_FALSE(exact_repo.Matches(image_tag, Ref("q.io/app2:any")));

  SignedIdentity remap =
      Identity(R"({"type":"remapIdentity","prefix":"r.io/ns","signedPrefix":"upstream.io/team"})");
  EXPECT_TRUE(remap.Matches(image_tag, Ref("upstream.io/team/app:v1")));
  EXPECT_FALSE(remap.Matches(image_tag, Ref("r.io/ns/app:v1")));
  EXPECT_TRUE(remap.Matches(std::optional(Ref("r.io/nsx/app:v1")), Ref("r.io/nsx/app:v1")))
      << "no prefix match at a '/' boundary: falls back to matchRepoDigestOrExact";
}

TEST(DockerRefAttack, InvalidReferencesAreErrors) {
  for (const char* bad : {"", "app/UPPER", "a//b", "a/b:", "a/b@sha256:zz",
                          "a/b@sha256:"
                          "../../etc",
                          "-a/b", "a/b:-tag"}) {
    EXPECT_FALSE(DockerRef::Parse(bad).ok()) << bad;
  }
  EXPECT_EQ(Ref("busybox").String(), "docker.io/library/busybox");
  EXPECT_EQ(Ref("localhost/app:1").String(), "localhost/app:1");
  EXPECT_EQ(Ref("127.0.0.1:5000/a/b:c").Name(), "127.0.0.1:5000/a/b");
}

TEST(DefaultPolicy, RejectsEverythingAndInsecurePolicyAcceptsEverything) {
  LayoutImage plain = ReadLayout(M().Path("plain"));
  FakeSource source(DockerReference("127.0.0.1:5000", "app", "v1"));
  image::ManifestBytes m = source.AddManifest("v1", plain.manifest.bytes);
  image::TrustOptions options;
  auto verifier = image::MakeSignatureVerifier(options);
  ASSERT_TRUE(verifier.ok());
  Status s = (*verifier)->VerifyImage(source, m);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("default"), std::string::npos) << s.message();
  options.insecure_policy = true;
  auto insecure = image::MakeSignatureVerifier(options);
  ASSERT_TRUE(insecure.ok());
  EXPECT_TRUE((*insecure)->VerifyImage(source, m).ok());
  options.policy_path = M().Path("policy.json");
  EXPECT_FALSE(image::MakeSignatureVerifier(options).ok()) << "--policy with --insecure-policy is ambiguous";
}

TEST(Policy, AllRequirementsOfTheScopeMustPass) {
  LayoutImage plain = ReadLayout(M().Path("plain"));
  FakeSource source(DockerReference("127.0.0.1:5000", "app", "v1"));
  image::ManifestBytes m = source.AddManifest("v1", plain.manifest.bytes);
  TempDir tmp;
  ASSERT_TRUE(WriteFileAtomic(
                  tmp / "p.json",
                  std::string_view(R"({"default":[{"type":"insecureAcceptAnything"},{"type":"reject"}]})"))
                  .ok());
  image::TrustOptions options;
  options.policy_path = tmp / "p.json";
  auto verifier = image::MakeSignatureVerifier(options);
  ASSERT_TRUE(verifier.ok());
  Status s = (*verifier)->VerifyImage(source, m);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("requirement reject"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace sealroot::testing::trust
