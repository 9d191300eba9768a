#include "boot/spec/process_spec.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>

#include "base/encoding.h"
#include "boot/spec/exec.h"
#include "boot/src/user.h"

namespace sealroot::boot {
namespace {

ProcessSpec Resolve(const std::string& json) {
  auto spec = ParseBootSpec(json);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  auto process = ResolveProcess(*spec);
  EXPECT_TRUE(process.ok()) << process.status().ToString();
  return *process;
}

Status ParseError(const std::string& json) {
  return ParseBootSpec(json).status();
}

using Strings = std::vector<std::string>;

TEST(ResolveProcessTest, ImageEntrypointAndCmdWhenSpecHasNoArgs) {
  ProcessSpec p = Resolve(R"({"image":{"Entrypoint":["/bin/echo"],"Cmd":["hello"],"WorkingDir":"/srv"}})");
  EXPECT_EQ(p.args, (Strings{"/bin/echo", "hello"}));
  EXPECT_EQ(p.cwd, "/srv");
  EXPECT_EQ(p.user.user, "0");
  EXPECT_TRUE(p.user.add_group_memberships);
}

TEST(ResolveProcessTest, SpecArgsReplaceEntrypointAndCmd) {
  ProcessSpec p =
      Resolve(R"({"process":{"args":["sh","-c","true"]},"image":{"Entrypoint":["/bin/echo"],"Cmd":["x"]}})");
  EXPECT_EQ(p.args, (Strings{"sh", "-c", "true"}));
}

TEST(ResolveProcessTest, EnvMergedWithSpecWinningByKey) {
  ProcessSpec p = Resolve(
      R"({"process":{"args":["a"],"env":["B=spec","C=new"]},"image":{"Env":["A=1","B=image","PATH=/bin"]}})");
  EXPECT_EQ(p.env, (Strings{"A=1", "B=spec", "PATH=/bin", "C=new"}));
}

TEST(ResolveProcessTest, SpecCwdAndUserOverrideImage) {
  ProcessSpec p = Resolve(
      R"({"process":{"args":["a"],"cwd":"/w","user":{"uid":7,"gid":8,"additionalGids":[9]}},
          "image":{"WorkingDir":"/srv","User":"app:staff"}})");
  EXPECT_EQ(p.cwd, "/w");
  EXPECT_EQ(p.user.user, "7");
  EXPECT_EQ(p.user.group, "8");
  EXPECT_EQ(p.user.additional_gids, (std::vector<gid_t>{9}));
  EXPECT_FALSE(p.user.add_group_memberships);
}

TEST(ResolveProcessTest, ImageUserWithGroup) {
  ProcessSpec p = Resolve(R"({"image":{"Cmd":["a"],"User":"app:staff"}})");
  EXPECT_EQ(p.user.user, "app");
  EXPECT_EQ(p.user.group, "staff");
  EXPECT_EQ(p.cwd, "/");
}

TEST(ResolveProcessTest, PinnedSpecCannotOverrideTheSignedImage) {
  ProcessSpec p = Resolve(
      R"({"pinToImage":true,"process":{"args":["/bin/sh"],"env":["A=evil"],"cwd":"/root","user":{"uid":0,"gid":0},
          "noNewPrivileges":true},"image":{"Cmd":["/app"],"Env":["A=1"],"User":"1000"}})");
  EXPECT_EQ(p.args, (Strings{"/app"}));
  EXPECT_EQ(p.env, (Strings{"A=1"}));
  EXPECT_EQ(p.cwd, "/");
  EXPECT_EQ(p.user.user, "1000");
  EXPECT_TRUE(p.no_new_privileges);
}

TEST(ResolveProcessTest, NoCommandAnywhereIsAnError) {
  auto spec = ParseBootSpec(R"({"image":{"Env":["A=1"]}})");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(ResolveProcess(*spec).status().code(), Code::kInvalidArgument);
}

TEST(ParseBootSpecTest, RlimitsAndFlags) {
  auto spec = ParseBootSpec(
      R"({"hostname":"h","process":{"args":["a"],"noNewPrivileges":true,
          "rlimits":[{"type":"RLIMIT_NOFILE","soft":100,"hard":200}]}})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->hostname, "h");
  ASSERT_EQ(spec->process.rlimits.size(), 1u);
  EXPECT_EQ(spec->process.rlimits[0].soft, 100u);
  EXPECT_EQ(spec->process.rlimits[0].hard, 200u);
  EXPECT_TRUE(spec->process.no_new_privileges);
}

TEST(ParseBootSpecTest, UnknownFieldsAreIgnoredAsTheRuntimeSpecRequires) {
  EXPECT_TRUE(
      ParseBootSpec(
          R"({"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["a"],"terminal":false}})")
          .ok());
}

TEST(ParseBootSpecTest, NulByteInArgumentCannotTruncateTheCommand) {
  Status s = ParseError(R"({"process":{"args":["/bin/true\u0000; rm -rf /"]}})");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("NUL"), std::string::npos) << s.message();
}

TEST(ParseBootSpecTest, OversizedSpecRefusedBeforeParsing) {
  std::string big = R"({"process":{"args":[")" + std::string(2u << 20, 'a') + R"("]}})";
  EXPECT_EQ(ParseError(big).code(), Code::kInvalidArgument);
}

TEST(ParseBootSpecTest, MalformedInputsNameTheField) {
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {"not json", "JSON"},
      {"[1,2]", "object"},
      {R"({"process":{"args":"sh"}})", "process.args"},
      {R"({"process":{"args":[1]}})", "process.args"},
      {R"({"process":{"cwd":"relative"}})", "process.cwd"},
      {R"({"process":{"env":["NOEQUALS"]}})", "process.env"},
      {R"({"process":{"env":["=value"]}})", "process.env"},
      {R"({"process":{"user":{"uid":-1}}})", "process.user.uid"},
      {R"({"process":{"user":{"uid":4294967296}}})", "process.user.uid"},
      {R"({"process":{"rlimits":[{"type":"RLIMIT_BOGUS","soft":1,"hard":1}]}})", "RLIMIT_BOGUS"},
      {R"({"process":{"rlimits":[{"type":"RLIMIT_NOFILE","soft":2,"hard":1}]}})", "soft limit above hard"},
      {R"({"process":{"noNewPrivileges":"yes"}})", "noNewPrivileges"},
      {R"({"image":{"WorkingDir":"srv"}})", "image.WorkingDir"},
      {R"({"pinToImage":1})", "pinToImage"},
      {R"({"hostname":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})", "hostname"},
  };
  for (const Case& c : cases) {
    Status s = ParseError(c.json);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.json;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << c.json << " -> " << s.message();
  }
}

TEST(ParseBootSpecTest, OciRuntimeSpecFields) {
  auto spec = ParseBootSpec(R"({"ociVersion":"1.0.2","hostname":"h","domainname":"d","root":{"readonly":true},
      "process":{"args":["a"],"terminal":true,"consoleSize":{"height":24,"width":80},"oomScoreAdj":-5,
        "user":{"uid":0,"gid":0,"umask":18},
        "capabilities":{"bounding":["CAP_KILL","CAP_NET_RAW"],"effective":["CAP_KILL"],"ambient":[]}},
      "mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","ro"]}],
      "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"}],
        "uidMappings":[{"containerID":0,"hostID":1000,"size":10}],"sysctl":{"net.ipv4.ip_forward":"1"},
        "resources":{"pids":{"limit":5}},"cgroupsPath":"/x","seccomp":{"defaultAction":"SCMP_ACT_ALLOW"},
        "rootfsPropagation":"rprivate","maskedPaths":["/proc/kcore"],"readonlyPaths":["/proc/sys"],
        "devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438,"uid":0,"gid":0}]}})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->domainname, "d");
  EXPECT_TRUE(spec->root_readonly);
  EXPECT_TRUE(spec->process.terminal);
  EXPECT_EQ(spec->process.console_width, 80u);
  EXPECT_EQ(spec->process.oom_score_adj, -5);
  EXPECT_EQ(spec->process.umask, 18u);
  ASSERT_TRUE(spec->process.capabilities.has_value());
  EXPECT_EQ(spec->process.capabilities->bounding, (std::vector<int>{5, 13}));
  ASSERT_TRUE(spec->mounts.has_value());
  EXPECT_EQ((*spec->mounts)[0].options, (Strings{"nosuid", "ro"}));
  ASSERT_TRUE(spec->linux.namespaces.has_value());
  EXPECT_EQ((*spec->linux.namespaces)[1].path, "/proc/1/ns/net");
  EXPECT_EQ(spec->linux.uid_mappings[0].host_id, 1000u);
  EXPECT_EQ(spec->linux.sysctl[0].first, "net.ipv4.ip_forward");
  EXPECT_EQ(spec->linux.resources_json, R"({"pids":{"limit":5}})");
  EXPECT_EQ(spec->linux.cgroups_path, "/x");
  EXPECT_EQ(spec->linux.rootfs_propagation, "rprivate");
  EXPECT_EQ(spec->linux.masked_paths, (Strings{"/proc/kcore"}));
  ASSERT_EQ(spec->linux.devices.size(), 1u);
  EXPECT_EQ(spec->linux.devices[0].minor, 229);
  EXPECT_EQ(spec->linux.devices[0].file_mode, 438u);
  ProcessSpec p = *ResolveProcess(*spec);
  EXPECT_EQ(p.umask, 18u);
  EXPECT_TRUE(p.capabilities.has_value());
}

TEST(ParseBootSpecTest, WhatCannotBeHonouredIsRefusedNamingTheField) {
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {R"({"process":{"apparmorProfile":"docker-default"}})", "process.apparmorProfile"},
      {R"({"process":{"selinuxLabel":"system_u:system_r:container_t"}})", "process.selinuxLabel"},
      {R"({"hooks":{"prestart":[{"path":"/bin/true"}]}})", "hooks"},
      {R"({"linux":{"mountLabel":"x"}})", "linux.mountLabel"},
      {R"({"linux":{"namespaces":[{"type":"time"}]}})", "linux.namespaces.type"},
      {R"({"linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}})", "linux.namespaces"},
      {R"({"process":{"capabilities":{"bounding":["CAP_BOGUS"]}}})", "process.capabilities.bounding"},
      {R"({"linux":{"devices":[{"path":"/etc/passwd","type":"c"}]}})", "linux.devices.path"},
      {R"({"linux":{"rootfsPropagation":"everywhere"}})", "linux.rootfsPropagation"},
      {R"({"linux":{"sysctl":{"../x":"1"}}})", "linux.sysctl"},
      {R"({"mounts":[{"destination":"relative","type":"tmpfs"}]})", "mounts.destination"},
      {R"({"process":{"oomScoreAdj":5000}})", "process.oomScoreAdj"},
      {R"({"process":{"user":{"umask":4096}}})", "process.user.umask"},
  };
  for (const Case& c : cases) {
    Status s = ParseError(c.json);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.json;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << c.json << " -> " << s.message();
  }
}

TEST(EncodeBootSpecTest, RoundTrips) {
  BootSpec spec;
  spec.hostname = "h";
  spec.process.args = {"sh", "-c", "echo \"quoted\""};
  spec.process.env = {"A=1"};
  spec.process.cwd = "/w";
  spec.process.user = SpecProcess::User{5, 6, {7}};
  spec.process.rlimits = {{RLIMIT_NOFILE, 10, 20}};
  spec.process.no_new_privileges = true;
  spec.pin_to_image = true;
  spec.image.cmd = {"/app"};
  auto parsed = ParseBootSpec(EncodeBootSpec(spec));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->hostname, "h");
  EXPECT_EQ(parsed->process.args, spec.process.args);
  EXPECT_EQ(parsed->process.env, spec.process.env);
  EXPECT_EQ(parsed->process.cwd, "/w");
  ASSERT_TRUE(parsed->process.user.has_value());
  EXPECT_EQ(parsed->process.user->uid, 5u);
  EXPECT_EQ(parsed->process.user->additional_gids, (std::vector<gid_t>{7}));
  ASSERT_EQ(parsed->process.rlimits.size(), 1u);
  EXPECT_EQ(parsed->process.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(parsed->process.rlimits[0].hard, 20u);
  EXPECT_TRUE(parsed->process.no_new_privileges);
  EXPECT_TRUE(parsed->pin_to_image);
  EXPECT_EQ(parsed->image.cmd, (Strings{"/app"}));
  // An unset user stays unset, so the image's User applies.
  spec.process.user.reset();
  EXPECT_FALSE(ParseBootSpec(EncodeBootSpec(spec))->process.user.has_value());
}

TEST(ExecRequestMacTest, BindsTheKeyAndTheRequest) {
  SecretBytes key = SecretBytes::Random(32);
  std::array<std::uint8_t, 32> challenge{};
  EXPECT_NE(ExecRequestMac(key, challenge, "{}"), ExecRequestMac(key, challenge, "{ }"));
  EXPECT_NE(ExecRequestMac(key, challenge, "{}"), ExecRequestMac(SecretBytes::Random(32), challenge, "{}"));
}

TEST(BootSpecDigestTest, IsSha256OfTheExactBytes) {
  EXPECT_EQ(HexEncode(BootSpecDigest("{}")),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  EXPECT_NE(BootSpecDigest("{}"), BootSpecDigest("{ }"));
}

constexpr std::string_view kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "broken line\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n";
constexpr std::string_view kGroup = "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:other\n";

UserRef Ref(std::string user, std::string group = "", std::vector<gid_t> gids = {},
            bool memberships = false) {
  UserRef ref;
  ref.user = std::move(user);
  ref.group = std::move(group);
  ref.additional_gids = std::move(gids);
  ref.add_group_memberships = memberships;
  return ref;
}

TEST(ResolveUserTest, NameGivesIdsHomeAndMemberships) {
  auto c = ResolveUser(Ref("app", "", {}, true), kPasswd, kGroup);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->uid, 1000u);
  EXPECT_EQ(c->gid, 1000u);
  EXPECT_EQ(c->home, "/home/app");
  EXPECT_EQ(c->groups, (std::vector<gid_t>{50}));
}

TEST(ResolveUserTest, NumericUserNeedsNoEntry) {
  auto c = ResolveUser(Ref("4242", "77", {3, 1}), kPasswd, kGroup);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->uid, 4242u);
  EXPECT_EQ(c->gid, 77u);
  EXPECT_EQ(c->home, "/");
  EXPECT_EQ(c->groups, (std::vector<gid_t>{1, 3}));
}

TEST(ResolveUserTest, GroupByName) {
  auto c = ResolveUser(Ref("1000", "staff"), kPasswd, kGroup);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->uid, 1000u);
  EXPECT_EQ(c->gid, 50u);
}

TEST(ResolveUserTest, UnknownNamesAreNotFound) {
  EXPECT_EQ(ResolveUser(Ref("nobody"), kPasswd, kGroup).status().code(), Code::kNotFound);
  EXPECT_EQ(ResolveUser(Ref("app", "nogroup"), kPasswd, kGroup).status().code(), Code::kNotFound);
  EXPECT_EQ(ResolveUser(Ref("app"), "", "").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sealroot::boot
