// containerd-shim-sealroot-v2 against the real containerd 1.6 (Debian's), through ctr: each test
// starts a private containerd with the sealroot runtime; the pod's stub enclave (enclave-agent
// as a sim enclave) pulls the image named by annotation from a loopback registry, and each
// container runs in its own sealroot-boot app enclave from the sealed root.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "containerd_task.pb.h"
#include "rpc/ttrpc.h"
#include "tests/shim/containerd_fixture.h"
#include "tests/support/images.h"

namespace sealroot::testing::shim {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

void Check(const CommandResult& result, const std::string& what) {
  if (!result.ok()) throw std::runtime_error(what + ": " + result.err + result.out);
}
void Must(const Status& status) {
  if (!status.ok()) throw std::runtime_error(status.ToString());
}

// An image owner's key broker and a confidential image for it: busybox encrypted for the broker
// (the layer key at kbs:///default/key/shim, as CoCo encrypts) and signed with gpg (lookaside
// signatures) into the loopback registry; the broker (`sealroot keyprovider --kbs`, sim quote
// root) releases the key only to the agent measured with the manifest that names it and
// requires the signature; a shim config for that agent. Built on first use.
struct BrokerMaterial {
  BrokerMaterial() {
    const std::string sealroot = BuiltProgram("sealroot");
    const std::string host = M().registry.host();
    Must(MakeDirs(dir / "gnupg", 0700));
    const CommandOptions gpg = {.env = {{"GNUPGHOME", dir / "gnupg"}}};
    Check(Run({"gpg", "-q", "--batch", "--passphrase", "", "--quick-gen-key",
               "Image Owner <owner@example.com>", "ed25519", "sign", "never"},
              gpg),
          "gpg key");
    const std::string fingerprint =
        Shell("gpg --list-keys --with-colons | awk -F: '/^fpr/{print $10; exit}'", gpg).out;
    Check(Run({"gpg", "-q", "--export", "--output", dir / "owner.gpg", fingerprint.substr(0, 40)}, gpg),
          "gpg export");
    std::string plain = BuildBusyboxImage(dir / "layout", "enc");
    ConfigureImage(plain,
                   {"--clear=config.cmd", "--config.cmd=-c", "--config.cmd=echo hello from a sealed image"});
    Check(Run({"openssl", "genrsa", "-out", dir / "layer.pem", "2048"}), "genrsa");
    Check(Run({"openssl", "rsa", "-in", dir / "layer.pem", "-pubout", "-out", dir / "layer.pub"}), "rsa");
    Check(Run({"skopeo", "--insecure-policy", "copy", "--quiet", "--encryption-key",
               "jwe:" + dir / "layer.pub", plain, "oci:" + dir / "enc:enc"}),
          "encrypting");
    Check(Run({"python3", SourceDir() + "/tests/kbs/coco_wrap.py", dir / "enc", "enc", dir / "layer.pem",
               dir / "resources", "default/key/shim"}),
          "wrapping the layer key for the broker");
    Must(MakeDirs(dir / "registries.d", 0700));
    Must(WriteFileAtomic(dir / "registries.d/shim.yaml",
                         "docker:\n  " + host + ":\n    lookaside: file://" + dir / "sigs" +
                             "\n    lookaside-staging: file://" + dir / "sigs" + "\n"));
    Check(Run({"skopeo", "--insecure-policy", "--registries.d", dir / "registries.d", "copy", "--quiet",
               "--dest-tls-verify=false", "--sign-by", fingerprint.substr(0, 40), "oci:" + dir / "enc:enc",
               "docker://" + host + "/shim/enc:1"},
              gpg),
          "signing and pushing");
    image = host + "/shim/enc:1";

    // The agent's manifest: the default one, with the broker and a policy requiring the owner's
    // signature (the key inline: never a host path).
    port = FreePort();
    json manifest = json::parse(ReadFile(M().dir / "agent-default.json").value());
    manifest["key_broker"] = {{"url", "http://127.0.0.1:" + std::to_string(port)}};
    manifest["trust"] = {
        {"registries_d", dir / "registries.d"},
        {"policy",
         {{"default", json::array({json{{"type", "reject"}}})},
          {"transports",
           {{"docker",
             {{host + "/shim/enc",
               json::array(
                   {json{{"type", "signedBy"},
                         {"keyType", "GPGKeys"},
                         {"keyData", Base64Encode(AsBytes(ReadFile(dir / "owner.gpg").value()))}}})}}}}}}}};
    Must(WriteFileAtomic(dir / "agent.json", manifest.dump(2)));
    const std::vector<std::string> layout = {"--heap-size", "1048576", "--threads", "2"};
    std::vector<std::string> sign = {sealroot,        "enclave",
                                     "sign",          BuiltProgram("enclave-agent"),
                                     "--manifest",    dir / "agent.json",
                                     "--key",         M().dir / "signer.pem",
                                     "--out",         dir / "agent.sig",
                                     "--isv-prod-id", "1",
                                     "--isv-svn",     "1"};
    sign.insert(sign.end(), layout.begin(), layout.end());
    Check(Run(sign), "signing the agent");
    std::vector<std::string> measure = {
        sealroot, "enclave", "measure", BuiltProgram("enclave-agent"), "--manifest", dir / "agent.json"};
    measure.insert(measure.end(), layout.begin(), layout.end());
    CommandResult measured = Run(measure);
    Check(measured, "measuring the agent");
    std::string mrenclave = measured.out.substr(0, measured.out.find('\n'));
    Must(WriteFileAtomic(dir / "broker-policy.json",
                         json{{"trusted", json::array({json{{"mrenclave", mrenclave}}})}}.dump()));
    broker = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{sealroot, "keyprovider", "--kbs", "--log-level", "info", "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--sim-root", "--policy",
                                 dir / "broker-policy.json", "--resources", dir / "resources"},
        dir / "broker.log");
    if (!WaitForPort(port)) throw std::runtime_error("the broker does not listen: " + BrokerLog());
    json shim = json::parse(ReadFile(M().shim_config).value());
    shim["agent"]["sigstruct"] = dir / "agent.sig";
    shim["manifest"] = dir / "agent.json";
    shim_config = dir / "shim-broker.json";
    Must(WriteFileAtomic(shim_config, shim.dump(2)));
  }
  std::string BrokerLog() const {
    Result<std::string> log = ReadFile(dir / "broker.log");
    return log.ok() ? *log : "";
  }

  TempDir dir;
  int port = 0;
  std::string image, shim_config;
  std::unique_ptr<BackgroundProcess> broker;
};

class ShimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { M(); }

  // Polls `ctr task ls` until `id` is in `state`.
  bool WaitForState(const std::string& id, const std::string& state, std::chrono::seconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (TaskState(id) == state) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  std::string TaskState(const std::string& id) {
    CommandResult ls = containerd_.Ctr({"task", "ls"});
    std::istringstream lines(ls.out);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string task, pid, status;
      fields >> task >> pid >> status;
      if (task == id) return status;
    }
    return "";
  }
  // Nothing of any pod is left on the host: no state directory, socket, process or mount.
  void ExpectNothingLeft() {
    const std::string pods = M().dir / "pods";
    // The shim removes its socket as it exits, which may be just after `ctr run --rm` returns; a
    // killed shim's pod is removed by the `delete` containerd runs, slower still on a loaded
    // machine with the instrumented build.
    for (int i = 0; i < 300 && !(Empty(pods) && Empty(M().socket_root)); ++i)
      std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(Empty(pods)) << "pod state left in " << pods << "\n" << Logs();
    // Named, with any process still listening on them.
    EXPECT_TRUE(Empty(M().socket_root))
        << "sockets left in " << M().socket_root << ": " << Shell("ls -A " + M().socket_root).out
        << Shell("ss -xlp | grep " + M().socket_root).out;
    EXPECT_TRUE(ProcessesStillMentioning(pods).empty()) << "a pod's agent still runs";
    for (int pid : ProcessesStillMentioning(containerd_.socket())) {
      ADD_FAILURE() << "a shim still runs: " << CommandLineOf(pid);
    }
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::string text((std::istreambuf_iterator<char>(mountinfo)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find(M().dir.path()), std::string::npos) << "a mount is left under " << M().dir.path();
  }
  static bool Empty(const std::string& dir) {
    return !std::filesystem::exists(dir) || std::filesystem::is_empty(dir);
  }
  std::string Logs() {
    std::string out = "containerd log:\n" + containerd_.Log();
    CommandResult agent_logs = Shell("tail -n 40 " + (M().dir / "pods") + "/*/agent.log 2>/dev/null");
    return out + "\nagent logs:\n" + agent_logs.out;
  }
  std::vector<std::string> Run(const std::string& image, const std::string& id,
                               std::vector<std::string> extra = {}, const std::string& shim_config = "") {
    std::vector<std::string> args = containerd_.RunArgs(image, id, shim_config);
    args.insert(args.begin() + 1, extra.begin(), extra.end());
    return args;
  }

  Containerd containerd_;
};

TEST_F(ShimTest, CtrRunPrintsTheOutputAndReturnsTheExitCode) {
  CommandResult run = containerd_.Ctr(Run(M().hello_image, "hello", {"--rm"}));
  // The image's working directory (/root), not ctr's default ("/"): the image decides.
  EXPECT_EQ(run.out, "hello from sealroot in /root\n") << run.err << Logs();
  EXPECT_EQ(run.exit_code, 3) << run.err << Logs();
  EXPECT_EQ(containerd_.Ctr({"container", "ls", "-q"}).out, "");
  // The image was named, never pulled on the host: containerd's store holds nothing.
  EXPECT_EQ(containerd_.Ctr({"images", "ls", "-q"}).out, "");
  EXPECT_EQ(containerd_.Ctr({"content", "ls", "-q"}).out, "");
  ExpectNothingLeft();
}

// `ctr run --memory-limit` sets the container's cgroup limit, which the container reads from
// inside. The limit is below what the boot's init (the container's supervisor, a fresh exec of
// sealroot-boot, under ASan here) touches while it starts up: were that counted, the OOM killer
// would end init before the entrypoint ran and ctr would exit 1. ctr's default spec mounts no
// cgroup filesystem (under runc neither); the CRI's does, so the test asks for it as the CRI
// would.
TEST_F(ShimTest, CtrRunWithAMemoryLimitSeesItInside) {
  constexpr std::uint64_t kLimit = 6 << 20;
  CommandResult run =
      containerd_.Ctr(Run(M().limits_image, "limited",
                          {"--rm", "--memory-limit", std::to_string(kLimit), "--mount",
                           "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev"}));
  EXPECT_EQ(run.out, "memory limit " + std::to_string(kLimit) + "\n") << run.err << Logs();
  EXPECT_EQ(run.exit_code, 6) << run.err << Logs();
  ExpectNothingLeft();
}

// `ctr task metrics` decodes what the shim's Task.Stats returns: containerd's cgroup v1
// metrics of the container's own cgroup, read through the pod's agent and the container's
// boot. Task.Update (what the CRI's UpdateContainerResources sends; ctr has no command for it)
// changes the limits, and the metrics show them.
TEST_F(ShimTest, TaskMetricsShowTheCgroupAndUpdateChangesIt) {
  ASSERT_TRUE(containerd_.Ctr(Run(M().sleeper_image, "measured", {"-d"})).ok()) << Logs();
  ASSERT_TRUE(WaitForState("measured", "RUNNING")) << containerd_.Ctr({"task", "ls"}).out << Logs();
  auto metrics = [&]() -> nlohmann::json {
    CommandResult out = containerd_.Ctr({"task", "metrics", "--format", "json", "measured"});
    EXPECT_TRUE(out.ok()) << out.err << Logs();
    return nlohmann::json::parse(out.out, nullptr, /*allow_exceptions=*/false);
  };
  nlohmann::json before = metrics();
  ASSERT_TRUE(before.is_object()) << before.dump();
  EXPECT_GT(before["memory"]["usage"]["usage"].get<std::uint64_t>(), 0u) << before.dump();
  EXPECT_GE(before["pids"]["current"].get<std::uint64_t>(), 1u) << before.dump();
  EXPECT_GT(before["cpu"]["usage"]["total"].get<std::uint64_t>(), 0u) << before.dump();

  // The shim's ttrpc address, as containerd keeps it in the task's bundle.
  auto address =
      ReadFile(containerd_.root() + "/state/io.containerd.runtime.v2.task/shimtest/measured/address");
  ASSERT_TRUE(address.ok()) << address.status().ToString();
  auto listen = rpc::ListenAddress::Parse(*address);
  ASSERT_TRUE(listen.ok()) << *address;
  auto client = rpc::ttrpc::Client::Connect(*listen);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  containerd::task::v2::UpdateTaskRequest update;
  update.set_id("measured");
  update.mutable_resources()->set_type_url(
      "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
  update.mutable_resources()->set_value(R"({"memory":{"limit":402653184},"pids":{"limit":40}})");
  auto updated = (*client)->Call("containerd.task.v2.Task", "Update", update.SerializeAsString());
  ASSERT_TRUE(updated.ok()) << updated.status().ToString() << Logs();
  nlohmann::json after = metrics();
  EXPECT_EQ(after["memory"]["usage"]["limit"], 384 << 20) << after.dump();
  EXPECT_EQ(after["pids"]["limit"], 40) << after.dump();

  EXPECT_TRUE(containerd_.Ctr({"task", "kill", "--signal", "SIGKILL", "measured"}).ok());
  ASSERT_TRUE(WaitForState("measured", "STOPPED")) << containerd_.Ctr({"task", "ls"}).out << Logs();
  EXPECT_TRUE(containerd_.Ctr({"task", "rm", "measured"}).ok());
  EXPECT_TRUE(containerd_.Ctr({"container", "rm", "measured"}).ok());
  ExpectNothingLeft();
}

TEST_F(ShimTest, TaskLsShowsStatesAndKillStopsTheContainer) {
  CommandResult run = containerd_.Ctr(Run(M().sleeper_image, "sleeper", {"-d"}));
  ASSERT_TRUE(run.ok()) << run.err << Logs();
  ASSERT_TRUE(WaitForState("sleeper", "RUNNING")) << containerd_.Ctr({"task", "ls"}).out << Logs();
  CommandResult killed = containerd_.Ctr({"task", "kill", "--signal", "SIGKILL", "sleeper"});
  ASSERT_TRUE(killed.ok()) << killed.err;
  ASSERT_TRUE(WaitForState("sleeper", "STOPPED")) << containerd_.Ctr({"task", "ls"}).out << Logs();
  EXPECT_TRUE(containerd_.Ctr({"task", "rm", "sleeper"}).ok());
  CommandResult removed = containerd_.Ctr({"container", "rm", "sleeper"});
  EXPECT_TRUE(removed.ok()) << removed.err;
  ExpectNothingLeft();
}

TEST_F(ShimTest, ExecIsRefusedByDefault) {
  ASSERT_TRUE(containerd_.Ctr(Run(M().sleeper_image, "noexec", {"-d"})).ok()) << Logs();
  ASSERT_TRUE(WaitForState("noexec", "RUNNING")) << Logs();
  CommandResult exec =
      containerd_.Ctr({"task", "exec", "--exec-id", "probe", "noexec", "cat", "/etc/sealroot-marker"});
  EXPECT_NE(exec.exit_code, 0);
  EXPECT_EQ(exec.out, "");
  EXPECT_NE(exec.err.find("ExecProcess"), std::string::npos) << exec.err;
  EXPECT_TRUE(containerd_.Ctr({"task", "kill", "--signal", "SIGKILL", "noexec"}).ok());
  ASSERT_TRUE(WaitForState("noexec", "STOPPED")) << Logs();
  EXPECT_TRUE(containerd_.Ctr({"task", "rm", "noexec"}).ok());
  EXPECT_TRUE(containerd_.Ctr({"container", "rm", "noexec"}).ok());
  ExpectNothingLeft();
}

TEST_F(ShimTest, ExecRunsInsideTheSealedRootWhenThePolicyAllowsIt) {
  ASSERT_TRUE(containerd_.Ctr(Run(M().sleeper_image, "withexec", {"-d"}, M().policy_shim_config)).ok())
      << Logs();
  ASSERT_TRUE(WaitForState("withexec", "RUNNING")) << Logs();
  CommandResult exec =
      containerd_.Ctr({"task", "exec", "--exec-id", "probe", "withexec", "cat", "/etc/sealroot-marker"});
  EXPECT_EQ(exec.out, "inside the sealed root\n") << exec.err << Logs();
  EXPECT_EQ(exec.exit_code, 0);
  CommandResult failing =
      containerd_.Ctr({"task", "exec", "--exec-id", "fails", "withexec", "sh", "-c", "exit 7"});
  EXPECT_EQ(failing.exit_code, 7) << failing.err;
  CommandResult unlisted =
      containerd_.Ctr({"task", "exec", "--exec-id", "unlisted", "withexec", "cat", "/etc/passwd"});
  EXPECT_NE(unlisted.exit_code, 0);
  EXPECT_EQ(unlisted.out, "");
  EXPECT_NE(unlisted.err.find("workload policy"), std::string::npos) << unlisted.err;
  EXPECT_TRUE(containerd_.Ctr({"task", "kill", "--signal", "SIGKILL", "withexec"}).ok());
  ASSERT_TRUE(WaitForState("withexec", "STOPPED")) << Logs();
  EXPECT_TRUE(containerd_.Ctr({"task", "rm", "withexec"}).ok());
  EXPECT_TRUE(containerd_.Ctr({"container", "rm", "withexec"}).ok());
  ExpectNothingLeft();
}

// The image owner's workload policy decides what runs, not the host's `ctr run` command line.
TEST_F(ShimTest, ACommandOtherThanTheImagesIsRefusedUnlessThePolicyAllowsIt) {
  std::vector<std::string> host_chosen = Run(M().hello_image, "hostcmd", {"--rm"});
  host_chosen.insert(host_chosen.end(), {"sh", "-c", "echo host-chosen"});
  CommandResult refused = containerd_.Ctr(host_chosen);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(refused.out.find("host-chosen"), std::string::npos) << refused.out;
  EXPECT_NE(refused.err.find("process.args"), std::string::npos) << refused.err << Logs();
  (void)containerd_.Ctr({"container", "rm", "hostcmd"});
  ExpectNothingLeft();

  // Allowed by the owner's policy: it runs.
  std::vector<std::string> allowed = Run(M().hello_image, "ownercmd", {"--rm"}, M().policy_shim_config);
  allowed.insert(allowed.end(), kOwnerAllowedCommand.begin(), kOwnerAllowedCommand.end());
  CommandResult ran = containerd_.Ctr(allowed);
  EXPECT_EQ(ran.out, "owner-allowed\n") << ran.err << Logs();
  EXPECT_EQ(ran.exit_code, 4) << ran.err;
  // The same policy does not open other commands.
  host_chosen = Run(M().hello_image, "hostcmd2", {"--rm"}, M().policy_shim_config);
  host_chosen.insert(host_chosen.end(), {"sh", "-c", "echo host-chosen"});
  refused = containerd_.Ctr(host_chosen);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("process.args"), std::string::npos) << refused.err;
  (void)containerd_.Ctr({"container", "rm", "hostcmd2"});
  ExpectNothingLeft();
}

// A Kubernetes emptyDir (the CRI's bind of kubelet's .../volumes/kubernetes.io~empty-dir/NAME),
// or a destination a ctr user names in the io.sealroot.sealed-volumes annotation, is a
// directory of the container's sealed root: the container reads back what it wrote, the host's
// emptyDir stays empty, and no file under the test's containerd or pod state holds it in
// plaintext (the sealed upper holds it encrypted).
TEST_F(ShimTest, EmptyDirLivesInTheSealedRoot) {
  const std::string empty_dir =
      containerd_.root() + "/kubelet/pods/uid-1/volumes/kubernetes.io~empty-dir/scratch";
  std::filesystem::create_directories(empty_dir);
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"emptydir", {"-d", "--mount", "type=bind,src=" + empty_dir + ",dst=/data,options=rbind:rw"}},
      {"annotated", {"-d", "--annotation", "io.sealroot.sealed-volumes=/data"}}};
  for (const auto& [id, extra] : cases) {
    SCOPED_TRACE(id);
    CommandResult run = containerd_.Ctr(Run(M().volume_image, id, extra, M().policy_shim_config));
    ASSERT_TRUE(run.ok()) << run.err << Logs();
    ASSERT_TRUE(WaitForState(id, "RUNNING")) << Logs();
    // The container writes the marker once it runs: read it back through an exec the policy allows.
    CommandResult read;
    for (int i = 0; i < 100 && read.out != std::string(kVolumeMarker) + "\n"; ++i) {
      read = containerd_.Ctr(
          {"task", "exec", "--exec-id", "read" + std::to_string(i), id, "cat", "/data/marker"});
      if (read.out.empty()) std::this_thread::sleep_for(200ms);
    }
    EXPECT_EQ(read.out, std::string(kVolumeMarker) + "\n") << read.err << Logs();
    EXPECT_TRUE(std::filesystem::is_empty(empty_dir));
    for (const std::string& tree : {containerd_.root(), M().dir / "pods"}) {
      CommandResult found =
          Shell("grep -r -l -a -s --devices=skip " + std::string(kVolumeMarker) + " " + tree);
      EXPECT_EQ(found.out, "") << "plaintext on the host";
    }
    EXPECT_TRUE(containerd_.Ctr({"task", "kill", "--signal", "SIGKILL", id}).ok());
    ASSERT_TRUE(WaitForState(id, "STOPPED")) << Logs();
    EXPECT_TRUE(containerd_.Ctr({"task", "rm", id}).ok());
    EXPECT_TRUE(containerd_.Ctr({"container", "rm", id}).ok());
    ExpectNothingLeft();
  }
  // The search finds a plaintext copy.
  std::ofstream(empty_dir + "/planted") << kVolumeMarker;
  EXPECT_NE(
      Shell("grep -r -l -a -s --devices=skip " + std::string(kVolumeMarker) + " " + containerd_.root()).out,
      "");
}

// Any other host directory reaches a container only where the owner's workload policy declares
// a volume: the agent refuses the rest, naming the mount.
TEST_F(ShimTest, HostBindMountsNeedTheOwnersPolicy) {
  TempDir host_dir;
  CommandResult refused = containerd_.Ctr(
      Run(M().hello_image, "hostbind",
          {"--rm", "--mount", "type=bind,src=" + host_dir.path() + ",dst=/data,options=rbind:rw"}));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(refused.out, "");
  EXPECT_NE(refused.err.find("bind mount of " + host_dir.path() + " on /data"), std::string::npos)
      << refused.err;
  (void)containerd_.Ctr({"container", "rm", "hostbind"});
  ExpectNothingLeft();
}

// `ctr run` of a signed and encrypted image: the pod's agent verifies the signature, gets the
// layer key from the owner's broker (which released it to that agent only) and runs the image;
// its output comes back. containerd never fetched a layer, the host holds no key.
TEST_F(ShimTest, CtrRunsASignedAndEncryptedImageWithTheBrokersKey) {
  static BrokerMaterial* broker = new BrokerMaterial();
  ASSERT_FALSE(broker->image.empty()) << "the broker's material failed";
  CommandResult run = containerd_.Ctr(Run(broker->image, "sealed", {"--rm"}, broker->shim_config));
  EXPECT_EQ(run.out, "hello from a sealed image\n") << run.err << Logs() << broker->BrokerLog();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(broker->BrokerLog().find("released default/key/shim"), std::string::npos) << broker->BrokerLog();
  EXPECT_EQ(containerd_.Ctr({"content", "ls", "-q"}).out, "");
  ExpectNothingLeft();
  // An agent whose manifest names no broker has no key for it: the pull fails, nothing runs.
  CommandResult keyless = containerd_.Ctr(Run(broker->image, "keyless", {"--rm"}));
  EXPECT_NE(keyless.exit_code, 0);
  EXPECT_EQ(keyless.out, "");
  EXPECT_NE(keyless.err.find("no decryption key"), std::string::npos) << keyless.err;
  (void)containerd_.Ctr({"container", "rm", "keyless"});
  ExpectNothingLeft();
}

TEST_F(ShimTest, ShimKilledWithSigkillIsCleanedUpByDelete) {
  ASSERT_TRUE(containerd_.Ctr(Run(M().sleeper_image, "victim", {"-d"})).ok()) << Logs();
  ASSERT_TRUE(WaitForState("victim", "RUNNING")) << Logs();
  std::vector<int> shims = ProcessesMentioning(containerd_.socket());
  ASSERT_EQ(shims.size(), 1u);
  ASSERT_EQ(kill(shims[0], SIGKILL), 0);
  // containerd notices the dead shim, runs its `delete` and reports the task stopped (or gone).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string state = TaskState("victim");
    if (state.empty() || state == "STOPPED") break;
    std::this_thread::sleep_for(100ms);
  }
  (void)containerd_.Ctr({"task", "rm", "victim"});
  CommandResult removed = containerd_.Ctr({"container", "rm", "victim"});
  EXPECT_TRUE(removed.ok()) << removed.err << Logs();
  ExpectNothingLeft();
}

TEST_F(ShimTest, ContainerdRestartFindsTheShimAgain) {
  ASSERT_TRUE(containerd_.Ctr(Run(M().sleeper_image, "survivor", {"-d"})).ok()) << Logs();
  ASSERT_TRUE(WaitForState("survivor", "RUNNING")) << Logs();
  containerd_.Restart();
  EXPECT_TRUE(WaitForState("survivor", "RUNNING", 20s)) << containerd_.Ctr({"task", "ls"}).out << Logs();
  EXPECT_TRUE(containerd_.Ctr({"task", "kill", "--signal", "SIGKILL", "survivor"}).ok());
  ASSERT_TRUE(WaitForState("survivor", "STOPPED")) << Logs();
  EXPECT_TRUE(containerd_.Ctr({"task", "rm", "survivor"}).ok());
  EXPECT_TRUE(containerd_.Ctr({"container", "rm", "survivor"}).ok());
  ExpectNothingLeft();
}

}  // namespace
}  // namespace sealroot::testing::shim
