#include "base/args.h"

#include <gtest/gtest.h>

namespace sealroot {
namespace {

ArgParser MakeParser() {
  ArgParser p("sealroot unpack", "SOURCE DEST", "Unpack.");
  p.Flag("rootless", "no chown");
  p.Flag("tls-verify", "verify TLS", /*default_value=*/true);
  p.Option("creds", "USER:PASS", "credentials");
  p.Option("decryption-key", "FILE", "key");
  return p;
}

TEST(ArgParserTest, OptionsBeforeAndAfterPositionals) {
  ArgParser p = MakeParser();
  std::vector<std::string> args = {"--creds",          "u:p", "src",
                                   "--rootless",       "dst", "--decryption-key=a",
                                   "--decryption-key", "b",   "--tls-verify=false"};
  ASSERT_TRUE(p.Parse(args).ok());
  EXPECT_EQ(p.positionals(), (std::vector<std::string>{"src", "dst"}));
  EXPECT_EQ(*p.Get("creds"), "u:p");
  EXPECT_TRUE(p.Bool("rootless"));
  EXPECT_FALSE(p.Bool("tls-verify"));
  EXPECT_EQ(p.GetAll("decryption-key"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(p.ExpectPositionals(2, 2).ok());
}

TEST(ArgParserTest, DefaultsDoubleDashAndErrors) {
  ArgParser p = MakeParser();
  std::vector<std::string> args = {"--", "--rootless"};
  ASSERT_TRUE(p.Parse(args).ok());
  EXPECT_TRUE(p.Bool("tls-verify"));
  EXPECT_EQ(p.positionals(), (std::vector<std::string>{"--rootless"}));

  ArgParser q = MakeParser();
  std::vector<std::string> unknown = {"--nope"};
  EXPECT_EQ(q.Parse(unknown).code(), Code::kInvalidArgument);
  ArgParser r = MakeParser();
  std::vector<std::string> missing = {"--creds"};
  EXPECT_FALSE(r.Parse(missing).ok());
  ArgParser s = MakeParser();
  std::vector<std::string> bad_bool = {"--rootless=maybe"};
  EXPECT_FALSE(s.Parse(bad_bool).ok());
}

}  // namespace
}  // namespace sealroot
