// The TOML subset and the registries.conf model, without a registry: the syntax containers'
// files use, errors that name file and line, prefix choice, remaps, mirrors and drop-in merging.
#include "image/src/registries_conf.h"

#include <gtest/gtest.h>

#include "image/src/toml.h"

namespace sealroot::image::internal {
namespace {

TEST(TomlTest, ParsesWhatContainersFilesUse) {
  auto doc = ParseToml(R"(# comment
unqualified-search-registries = [
  "a.example",  # trailing comment
  'b.example',
]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
[[registry]]
prefix = "x.example/ns"
location = """y.example"""
insecure = true
mirror = [{ location = "m.example", insecure = false }]
[[registry]]
location = "z.example:5000"
blocked = false
weight = 1_000
[[registry.mirror]]
location = "m2.example"
)",
                       "t.conf");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["unqualified-search-registries"], nlohmann::json({"a.example", "b.example"}));
  EXPECT_EQ((*doc)["aliases"]["fedora"], "registry.fedoraproject.org/fedora");
  ASSERT_EQ((*doc)["registry"].size(), 2u);
  EXPECT_EQ((*doc)["registry"][0]["location"], "y.example");
  EXPECT_EQ((*doc)["registry"][0]["mirror"][0]["location"], "m.example");
  EXPECT_EQ((*doc)["registry"][1]["weight"], 1000);
  EXPECT_EQ((*doc)["registry"][1]["mirror"][0]["location"], "m2.example");
}

TEST(TomlTest, ErrorsNameFileAndLine) {
  for (const char* bad : {"a = \"unterminated\n", "a = {b = 1, b = 2}\n", "[t\n", "a = [1 2]\n", "a = nope\n",
                          "a = \"x\" b = 1\n"}) {
    auto doc = ParseToml(std::string("# first\n") + bad, "bad.conf");
    ASSERT_FALSE(doc.ok()) << bad;
    EXPECT_EQ(doc.status().code(), Code::kInvalidArgument);
    EXPECT_NE(doc.status().message().find("bad.conf:2"), std::string::npos) << doc.status().message();
  }
}

Reference Ref(const std::string& text) {
  return *Reference::Parse(text);
}

TEST(RegistriesConfTest, LongestPrefixRemapsAndMirrorsFirst) {
  RegistriesConf conf;
  ASSERT_TRUE(conf.Merge(R"(
[[registry]]
prefix = "example.com"
location = "plain.example"
[[registry]]
prefix = "example.com/team"
location = "internal.example/mirror-of-team"
insecure = true
[[registry.mirror]]
location = "m.example/t"
[[registry.mirror]]
location = "d.example/t"
pull-from-mirror = "digest-only"
)",
                         "r.conf")
                  .ok());
  auto e = conf.EndpointsFor(Ref("example.com/team/app:1"));
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->size(), 2u) << "the digest-only mirror is not used for a tag";
  EXPECT_EQ((*e)[0].registry, "m.example");
  EXPECT_EQ((*e)[0].repository, "t/app");
  EXPECT_TRUE((*e)[0].mirror);
  EXPECT_EQ((*e)[1].registry, "internal.example");
  EXPECT_EQ((*e)[1].repository, "mirror-of-team/app");
  EXPECT_TRUE((*e)[1].insecure);
  auto by_digest = conf.EndpointsFor(Ref("example.com/team/app@sha256:" + std::string(64, 'a')));
  ASSERT_TRUE(by_digest.ok());
  EXPECT_EQ(by_digest->size(), 3u);
  // "example.com/teamwork" is not under "example.com/team": prefixes match at a '/'.
  auto other = conf.EndpointsFor(Ref("example.com/teamwork/app:1"));
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ((*other)[0].registry, "plain.example");
  EXPECT_EQ((*other)[0].repository, "teamwork/app");
}

TEST(RegistriesConfTest, DropInsReplaceBySamePrefixAndWildcardsMatchHosts) {
  RegistriesConf conf;
  ASSERT_TRUE(conf.Merge("unqualified-search-registries = [\"a.example\"]\n[[registry]]\nlocation = "
                         "\"q.example\"\ninsecure = true\n",
                         "main.conf")
                  .ok());
  ASSERT_TRUE(
      conf.Merge(
              "unqualified-search-registries = [\"b.example\"]\n[[registry]]\nlocation = "
              "\"q.example\"\nblocked = true\n[[registry]]\nprefix = \"*.corp.example\"\ninsecure = true\n",
              "50-drop.conf")
          .ok());
  EXPECT_EQ(conf.unqualified_search_registries(), std::vector<std::string>{"b.example"});
  auto blocked = conf.EndpointsFor(Ref("q.example/x:1"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), Code::kPermissionDenied);
  EXPECT_NE(blocked.status().message().find("blocked"), std::string::npos);
  auto wild = conf.EndpointsFor(Ref("deep.host.corp.example/x:1"));
  ASSERT_TRUE(wild.ok());
  ASSERT_EQ(wild->size(), 1u);
  EXPECT_EQ((*wild)[0].registry, "deep.host.corp.example");
  EXPECT_TRUE((*wild)[0].insecure);
}

TEST(RegistriesConfTest, VersionOneTablesAreRead) {
  RegistriesConf conf;
  ASSERT_TRUE(
      conf.Merge("[registries.search]\nregistries = ['s.example']\n[registries.insecure]\nregistries = "
                 "['i.example']\n[registries.block]\nregistries = ['b.example']\n",
                 "v1.conf")
          .ok());
  EXPECT_EQ(conf.unqualified_search_registries(), std::vector<std::string>{"s.example"});
  auto insecure = conf.EndpointsFor(Ref("i.example/x:1"));
  ASSERT_TRUE(insecure.ok());
  EXPECT_TRUE((*insecure)[0].insecure);
  EXPECT_FALSE(conf.EndpointsFor(Ref("b.example/x:1")).ok());
}

}  // namespace
}  // namespace sealroot::image::internal
