// The whole key path through the real binaries: an image encrypted the way CoCo encrypts for a
// key broker (the layer key at kbs:///default/key/busybox) in an htpasswd registry; the owner's
// broker (`sealroot keyprovider --kbs --sim-root`) holding the layer key, the registry's auth.json
// and the signature policy; enclave-agent as a sim stub enclave (`sealroot enclave run`) whose
// only sources of keys, credentials and policy are the broker, named in its measured manifest.
// The expected agent pulls; the host has neither the key nor the credentials; an agent with an
// edited manifest or another layout (so another MRENCLAVE) gets nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace sealroot::kbs {
namespace {

using nlohmann::json;
using sealroot::testing::BackgroundProcess;
using sealroot::testing::BuiltProgram;
using sealroot::testing::TempDir;

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void MustRun(const std::vector<std::string>& argv) {
  auto r = sealroot::testing::Run(argv);
  ASSERT_TRUE(r.ok()) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.out << r.err;
}

class AgentFlow : public ::testing::Test {
 protected:
  void SetUp() override {
    // The encrypted image: skopeo (JWE for an RSA key), re-wrapped for the broker, pushed with
    // the registry's credentials.
    std::string plain = sealroot::testing::BuildBusyboxImage(dir_ / "layout", "busybox");
    MustRun({"openssl", "genrsa", "-out", dir_ / "layer.pem", "2048"});
    MustRun({"openssl", "rsa", "-in", dir_ / "layer.pem", "-pubout", "-out", dir_ / "layer.pub"});
    MustRun({"skopeo", "--insecure-policy", "copy", "--quiet", "--encryption-key",
             "jwe:" + dir_ / "layer.pub", plain, "oci:" + dir_ / "enc:busybox"});
    MustRun({"python3", sealroot::testing::SourceDir() + "/tests/kbs/coco_wrap.py", dir_ / "enc", "busybox",
             dir_ / "layer.pem", dir_ / "resources", "default/key/busybox"});
    registry_.Push("oci:" + dir_ / "enc:busybox", "enc/busybox:1");
    image_ = registry_.Ref("enc/busybox:1");
    // The broker's other resources: the registry credentials and the signature policy.
    json auth = {
        {"auths", {{registry_.host(), {{"auth", Base64Encode(AsBytes(std::string("owner:s3cret")))}}}}}};
    ASSERT_TRUE(MakeDirs(dir_ / "resources/default/credential", 0700).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ / "resources/default/credential/registry", auth.dump(), 0600).ok());
    json policy = {
        {"default", {{{"type", "reject"}}}},
        {"transports", {{"docker", {{registry_.host() + "/enc", {{{"type", "insecureAcceptAnything"}}}}}}}}};
    ASSERT_TRUE(MakeDirs(dir_ / "resources/default/policy", 0700).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ / "resources/default/policy/signature", policy.dump(), 0600).ok());

    MustRun({BuiltProgram("sealroot"), "enclave", "keygen", dir_ / "signer.pem"});
    port_ = sealroot::testing::FreePort();
    ASSERT_TRUE(WriteFileAtomic(dir_ / "manifest.json", Manifest().dump()).ok());
    auto measured =
        sealroot::testing::Run({BuiltProgram("sealroot"), "enclave", "measure", BuiltProgram("enclave-agent"),
                                "--manifest", dir_ / "manifest.json"});
    ASSERT_TRUE(measured.ok()) << measured.err;
    json trusted = {{"trusted", json::array({{{"mrenclave", Trimmed(measured.out)}}})}};
    ASSERT_TRUE(WriteFileAtomic(dir_ / "broker-policy.json", trusted.dump()).ok());
    broker_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{BuiltProgram("sealroot"), "keyprovider", "--kbs", "--log-level", "info",
                                 "--listen", "127.0.0.1:" + std::to_string(port_), "--sim-root", "--policy",
                                 dir_ / "broker-policy.json", "--resources", dir_ / "resources"},
        dir_ / "broker.log");
    ASSERT_TRUE(sealroot::testing::WaitForPort(port_));
  }

  // The agent's measured configuration: the broker is its only source of keys, credentials and
  // the signature policy.
  json Manifest() const {
    return {{"key_broker",
             {{"url", "http://127.0.0.1:" + std::to_string(port_)},
              {"credentials", "kbs:///default/credential/registry"},
              {"signature_policy", "kbs:///default/policy/signature"}}},
            {"registry", {{"tls_verify", false}}}};
  }

  // Starts enclave-agent as a sim enclave with `manifest` and `layout` flags (sign and run agree
  // on them); only its addresses and directories come from argv.
  std::unique_ptr<BackgroundProcess> StartAgent(const std::string& name,
                                                const std::vector<std::string>& layout,
                                                const json& manifest) {
    std::string d = dir_ / name;
    EXPECT_TRUE(MakeDirs(d, 0700).ok());
    EXPECT_TRUE(WriteFileAtomic(d + "/manifest.json", manifest.dump()).ok());
    std::vector<std::string> sign = {BuiltProgram("sealroot"),
                                     "enclave",
                                     "sign",
                                     BuiltProgram("enclave-agent"),
                                     "--key",
                                     dir_ / "signer.pem",
                                     "--out",
                                     d + "/agent.sig",
                                     "--isv-prod-id",
                                     "1",
                                     "--manifest",
                                     d + "/manifest.json"};
    sign.insert(sign.end(), layout.begin(), layout.end());
    auto signed_ = sealroot::testing::Run(sign);
    EXPECT_TRUE(signed_.ok()) << signed_.err;
    std::vector<std::string> run = {BuiltProgram("sealroot"),
                                    "enclave",
                                    "run",
                                    BuiltProgram("enclave-agent"),
                                    "--sigstruct",
                                    d + "/agent.sig",
                                    "--manifest",
                                    d + "/manifest.json"};
    run.insert(run.end(), layout.begin(), layout.end());
    run.insert(run.end(), {"--", "--ttrpc", "unix://" + d + "/agent.sock", "--state-dir", d + "/state",
                           "--store", d + "/store"});
    auto agent = std::make_unique<BackgroundProcess>(run, d + "/agent.log");
    for (int i = 0; i < 200; ++i) {
      if (Ctl(name, {"health"}).ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return agent;
  }

  sealroot::testing::CommandResult Ctl(const std::string& name, std::vector<std::string> args) {
    std::vector<std::string> argv = {BuiltProgram("sealroot"), "ctl", "--address",
                                     "unix://" + (dir_ / name) + "/agent.sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    return sealroot::testing::Run(argv);
  }

  std::string BrokerLog() {
    Result<std::string> text = ReadFile(dir_ / "broker.log");
    return text.ok() ? *text : "";
  }

  TempDir dir_;
  sealroot::testing::Registry registry_{{.tls = false, .user = "owner", .password = "s3cret"}};
  std::string image_;
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> broker_;
};

TEST_F(AgentFlow, TheExpectedAgentPullsWithKeysCredentialsAndPolicyFromTheBroker) {
  auto agent = StartAgent("good", {}, Manifest());
  auto pulled = Ctl("good", {"pull", image_, "--container-id", "c1"});
  ASSERT_TRUE(pulled.ok()) << pulled.out << pulled.err << "\nagent:\n"
                           << ReadFile(dir_ / "good/agent.log").value() << "\nbroker:\n"
                           << BrokerLog();
  std::string log = BrokerLog();
  EXPECT_NE(log.find("released default/credential/registry"), std::string::npos) << log;
  EXPECT_NE(log.find("released default/policy/signature"), std::string::npos) << log;
  EXPECT_NE(log.find("released default/key/busybox"), std::string::npos) << log;
  // The sealed store holds no busybox plaintext.
  auto grep = sealroot::testing::Run({"grep", "-rqa", "BusyBox is a multi-call binary", dir_ / "good/store"});
  EXPECT_EQ(grep.exit_code, 1);
}

TEST_F(AgentFlow, TheHostHasNeitherTheCredentialsNorTheKey) {
  // Pulling from the host: the registry wants credentials the host does not have.
  auto no_creds = sealroot::testing::Run({BuiltProgram("sealroot"), "unpack", "--insecure-policy",
                                          "--tls-verify=false", image_, dir_ / "host-bundle"});
  EXPECT_FALSE(no_creds.ok());
  // With the credentials, the layer key is still only at the broker.
  auto no_key =
      sealroot::testing::Run({BuiltProgram("sealroot"), "unpack", "--insecure-policy", "--tls-verify=false",
                              "--creds", "owner:s3cret", image_, dir_ / "host-bundle"});
  EXPECT_FALSE(no_key.ok());
  EXPECT_NE(no_key.err.find("encrypted"), std::string::npos) << no_key.err;
}

TEST_F(AgentFlow, AnAgentWithAnotherIdentityGetsNothing) {
  auto agent = StartAgent("other", {"--heap-size", "128M"}, Manifest());
  ASSERT_TRUE(Ctl("other", {"health"}).ok()) << ReadFile(dir_ / "other/agent.log").value();
  auto pulled = Ctl("other", {"pull", image_, "--container-id", "c2"});
  EXPECT_FALSE(pulled.ok());
  std::string log = BrokerLog();
  EXPECT_NE(log.find("untrusted enclave"), std::string::npos) << log;
  EXPECT_EQ(log.find("released"), std::string::npos) << log;
}

// The host edits the agent's configuration (here: only a limit) and signs it anew: another
// MRENCLAVE, nothing released.
TEST_F(AgentFlow, AnAgentWithAnEditedManifestGetsNothing) {
  json edited = Manifest();
  edited["limits"] = {{"max_layers", 1000}};
  auto agent = StartAgent("edited", {}, edited);
  ASSERT_TRUE(Ctl("edited", {"health"}).ok()) << ReadFile(dir_ / "edited/agent.log").value();
  auto pulled = Ctl("edited", {"pull", image_, "--container-id", "c3"});
  EXPECT_FALSE(pulled.ok());
  std::string log = BrokerLog();
  EXPECT_NE(log.find("untrusted enclave"), std::string::npos) << log;
  EXPECT_EQ(log.find("released"), std::string::npos) << log;
}

// Over HTTPS the broker's CA is part of the measured manifest: the agent talks only to a broker
// whose certificate that CA signed, so the host cannot put its own broker (or a proxy) in its
// place, even on the same address.
TEST_F(AgentFlow, OverHttpsTheAgentTalksOnlyToTheBrokerItsManifestNames) {
  for (const std::string name : {"owner", "impostor"}) {
    std::string p = dir_ / name;
    MustRun({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", p + "-ca.key", "-out", p + "-ca.pem", "-subj", "/CN=" + name + "-ca", "-days", "2"});
    MustRun({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             p + ".key", "-out", p + ".csr", "-subj", "/CN=127.0.0.1"});
    ASSERT_TRUE(WriteFileAtomic(p + ".ext", "subjectAltName=IP:127.0.0.1\n").ok());
    MustRun({"openssl", "x509", "-req", "-in", p + ".csr", "-CA", p + "-ca.pem", "-CAkey", p + "-ca.key",
             "-CAcreateserial", "-out", p + ".pem", "-days", "2", "-extfile", p + ".ext"});
  }
  const int tls_port = sealroot::testing::FreePort();
  json manifest = Manifest();
  manifest["key_broker"]["url"] = "https://127.0.0.1:" + std::to_string(tls_port);
  manifest["key_broker"]["ca"] = ReadFile(dir_ / "owner-ca.pem").value();
  ASSERT_TRUE(WriteFileAtomic(dir_ / "tls-manifest.json", manifest.dump()).ok());
  auto measured =
      sealroot::testing::Run({BuiltProgram("sealroot"), "enclave", "measure", BuiltProgram("enclave-agent"),
                              "--manifest", dir_ / "tls-manifest.json"});
  ASSERT_TRUE(measured.ok()) << measured.err;
  json trusted = {{"trusted", json::array({{{"mrenclave", Trimmed(measured.out)}}})}};
  ASSERT_TRUE(WriteFileAtomic(dir_ / "tls-policy.json", trusted.dump()).ok());
  auto broker_on_tls_port = [&](const std::string& name) {
    return std::make_unique<BackgroundProcess>(
        std::vector<std::string>{BuiltProgram("sealroot"), "keyprovider", "--kbs", "--log-level", "info",
                                 "--listen", "127.0.0.1:" + std::to_string(tls_port), "--sim-root",
                                 "--policy", dir_ / "tls-policy.json", "--resources", dir_ / "resources",
                                 "--tls-cert", dir_ / name + ".pem", "--tls-key", dir_ / name + ".key"},
        dir_ / name + "-broker.log");
  };

  auto owner = broker_on_tls_port("owner");
  ASSERT_TRUE(sealroot::testing::WaitForPort(tls_port));
  auto agent = StartAgent("tls", {}, manifest);
  auto pulled = Ctl("tls", {"pull", image_, "--container-id", "c1"});
  ASSERT_TRUE(pulled.ok()) << pulled.err << "\nagent:\n" << ReadFile(dir_ / "tls/agent.log").value();
  EXPECT_NE(ReadFile(dir_ / "owner-broker.log").value().find("released default/key/busybox"),
            std::string::npos);

  // The host swaps in a broker of its own (same resources, same policy, another CA's certificate).
  owner->Stop();
  auto impostor = broker_on_tls_port("impostor");
  ASSERT_TRUE(sealroot::testing::WaitForPort(tls_port));
  auto second = StartAgent("tls2", {}, manifest);
  auto refused = Ctl("tls2", {"pull", image_, "--container-id", "c2"});
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.err.find("key broker"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("certificate"), std::string::npos) << refused.err;
  EXPECT_EQ(ReadFile(dir_ / "impostor-broker.log").value().find("released"), std::string::npos);

  // A certificate and key that do not belong together never serve.
  auto mismatched = sealroot::testing::Run({BuiltProgram("sealroot"), "keyprovider", "--kbs", "--listen",
                                            "127.0.0.1:0", "--sim-root", "--policy", dir_ / "tls-policy.json",
                                            "--resources", dir_ / "resources", "--tls-cert",
                                            dir_ / "owner.pem", "--tls-key", dir_ / "impostor.key"});
  EXPECT_EQ(mismatched.exit_code, 2) << mismatched.err;
  EXPECT_NE(mismatched.err.find("does not match"), std::string::npos) << mismatched.err;
}

}  // namespace
}  // namespace sealroot::kbs
