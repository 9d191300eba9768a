// The one containers-auth.json lookup (image/registry_auth.h), as containers-auth.json(5) reads
// the file: an entry by host, by host/namespace prefix (most specific first), Docker's legacy URL
// keys, base64 "user:pass", identity tokens refused, and malformed documents named clearly.
#include "image/registry_auth.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"
#include "tests/support/process.h"

namespace sealroot::image {
namespace {

using nlohmann::json;

std::string Auth(const std::string& user_pass) {
  return Base64Encode(AsBytes(user_pass));
}

// The credentials found, "" for none, or the error as "CODE: message".
std::string Lookup(const json& doc, std::string_view registry, std::string_view repository) {
  Result<SecretBytes> creds = CredentialsFromAuthJson(doc.dump(), registry, repository);
  if (!creds.ok()) return creds.status().ToString();
  return std::string(AsChars(creds->span()));
}

TEST(RegistryAuthJson, AnEntryByHost) {
  json doc = {
      {"auths", {{"other:5000", {{"auth", Auth("a:b")}}}, {"127.0.0.1:5000", {{"auth", Auth("owner:pw")}}}}}};
  EXPECT_EQ(Lookup(doc, "127.0.0.1:5000", "team/app"), "owner:pw");
  EXPECT_EQ(Lookup(doc, "127.0.0.1:5000", ""), "owner:pw");
  EXPECT_EQ(Lookup(doc, "other:5000", "x"), "a:b");
  EXPECT_EQ(Lookup(doc, "127.0.0.1:5001", "team/app"), "") << "another port is another registry";
  EXPECT_EQ(Lookup(doc, "docker.io", "library/busybox"), "");
}

TEST(RegistryAuthJson, TheMostSpecificNamespaceWins) {
  // containers-auth.json(5)'s order: registry/namespace/user/image, .../user, .../namespace,
  // registry.
  json doc = {{"auths",
               {{"my-registry.local", {{"auth", Auth("host:1")}}},
                {"my-registry.local/foo", {{"auth", Auth("foo:2")}}},
                {"my-registry.local/foo/bar/image", {{"auth", Auth("image:3")}}}}}};
  EXPECT_EQ(Lookup(doc, "my-registry.local", "foo/bar/image"), "image:3");
  EXPECT_EQ(Lookup(doc, "my-registry.local", "foo/bar/other"), "foo:2");
  EXPECT_EQ(Lookup(doc, "my-registry.local", "foo/bar"), "foo:2");
  EXPECT_EQ(Lookup(doc, "my-registry.local", "foobar/image"), "host:1") << "prefixes end at a '/'";
  EXPECT_EQ(Lookup(doc, "my-registry.local", "baz"), "host:1");
  EXPECT_EQ(Lookup(doc, "my-registry.localhost", "foo/bar/image"), "")
      << "nor does a host match a longer one";
}

TEST(RegistryAuthJson, LegacyUrlKeysAndDockerHubSpellings) {
  json legacy = {{"auths",
                  {{"https://index.docker.io/v1/", {{"auth", Auth("hub:pw")}}},
                   {"http://127.0.0.1:5000/v2/ignored", {{"auth", Auth("local:pw")}}}}}};
  EXPECT_EQ(Lookup(legacy, "docker.io", "library/busybox"), "hub:pw");
  EXPECT_EQ(Lookup(legacy, "index.docker.io", "library/busybox"), "hub:pw");
  EXPECT_EQ(Lookup(legacy, "127.0.0.1:5000", "app"), "local:pw") << "a URL key names only its host";
  json spelled = {{"auths", {{"index.docker.io/team", {{"auth", Auth("team:pw")}}}}}};
  EXPECT_EQ(Lookup(spelled, "registry-1.docker.io", "team/app"), "team:pw");
  EXPECT_EQ(Lookup(spelled, "docker.io", "other/app"), "");
}

TEST(RegistryAuthJson, CredentialHelperMarkersArePassedOver) {
  json doc = {{"auths", {{"reg.example/team", json::object()}, {"reg.example", {{"auth", Auth("host:pw")}}}}},
              {"credHelpers", {{"other.example", "secretservice"}}}};
  EXPECT_EQ(Lookup(doc, "reg.example", "team/app"), "host:pw");
  EXPECT_EQ(Lookup(json{{"credHelpers", {{"reg.example", "pass"}}}}, "reg.example", "app"), "")
      << "a file without \"auths\" has no credentials";
  EXPECT_EQ(Lookup(json{{"auths", {{"reg.example", {{"auth", ""}}}}}}, "reg.example", "app"), "");
}

TEST(RegistryAuthJson, IdentityTokensAreRefusedClearly) {
  json doc = {{"auths", {{"reg.example", {{"auth", Auth("<token>:")}, {"identitytoken", "refresh-me"}}}}}};
  Result<SecretBytes> creds = CredentialsFromAuthJson(doc.dump(), "reg.example", "app");
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().code(), Code::kUnimplemented);
  EXPECT_NE(creds.status().message().find("identity token"), std::string::npos) << creds.status().ToString();
  EXPECT_NE(creds.status().message().find("reg.example"), std::string::npos);
  EXPECT_EQ(creds.status().message().find("refresh-me"), std::string::npos) << "the token must not be shown";
}

TEST(RegistryAuthJson, MalformedDocumentsAreClearErrors) {
  auto code_of = [](std::string_view text) {
    return CredentialsFromAuthJson(text, "reg.example", "app").status();
  };
  Status not_json = code_of("not json");
  EXPECT_EQ(not_json.code(), Code::kInvalidArgument);
  EXPECT_NE(not_json.message().find("not a containers-auth.json"), std::string::npos) << not_json.ToString();
  EXPECT_EQ(code_of("[1, 2]").code(), Code::kInvalidArgument);
  EXPECT_EQ(code_of(R"({"auths": ["reg.example"]})").code(), Code::kInvalidArgument);

  const std::string secret = "c2VjcmV0LXdpdGhvdXQtY29sb24";  // not padded: not base64
  Status bad_base64 = code_of(R"({"auths": {"reg.example": {"auth": ")" + secret + R"("}}})");
  EXPECT_EQ(bad_base64.code(), Code::kInvalidArgument);
  EXPECT_NE(bad_base64.message().find("reg.example"), std::string::npos) << bad_base64.ToString();
  EXPECT_EQ(bad_base64.message().find(secret), std::string::npos) << "the entry's content must not be shown";
  Status no_colon = code_of(R"({"auths": {"reg.example": {"auth": ")" + Auth("nocolon") + R"("}}})");
  EXPECT_EQ(no_colon.code(), Code::kInvalidArgument);
  EXPECT_NE(no_colon.message().find("user:pass"), std::string::npos) << no_colon.ToString();
  EXPECT_EQ(code_of(R"({"auths": {"reg.example": {"auth": 42}}})").code(), Code::kInvalidArgument);
  // A malformed entry the image does not use does not matter.
  EXPECT_EQ(Lookup(json{{"auths", {{"other.example", {{"auth", 42}}}}}}, "reg.example", "app"), "");
}

TEST(RegistryAuthJson, FromAFile) {
  sealroot::testing::TempDir dir;
  const std::string path = dir / "auth.json";
  std::ofstream(path) << json{{"auths", {{"reg.example/team", {{"auth", Auth("team:pw")}}}}}}.dump();
  Result<SecretBytes> creds = CredentialsFromAuthFile(path, "reg.example", "team/app");
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(AsChars(creds->span()), "team:pw");

  std::ofstream(dir / "broken.json") << "{";
  Status broken = CredentialsFromAuthFile(dir / "broken.json", "reg.example", "app").status();
  EXPECT_EQ(broken.code(), Code::kInvalidArgument);
  EXPECT_NE(broken.message().find(dir / "broken.json"), std::string::npos) << broken.ToString();
  EXPECT_EQ(CredentialsFromAuthFile(dir / "missing.json", "reg.example", "app").status().code(),
            Code::kNotFound);
}

}  // namespace
}  // namespace sealroot::image
