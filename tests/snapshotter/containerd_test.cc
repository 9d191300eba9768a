// sealroot-snapshotter as containerd 1.6's proxy snapshotter (the private containerd of the shim
// tests, with `[proxy_plugins.sealroot]`): ordinary images pull and run with runc over its
// overlay mounts, its metadata survives a restart, and through the CRI (snapshotter "sealroot",
// snapshot annotations on) an encrypted image is pulled without any of its layers reaching the
// host, then runs in a sealroot pod from the stub enclave's own pull with the layer key from the
// owner's key broker.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/socket.h"
#include "tests/shim/containerd_fixture.h"
#include "tests/support/images.h"

namespace sealroot::testing::shim {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

void MustRun(const std::vector<std::string>& argv) {
  CommandResult r = Run(argv);
  ASSERT_TRUE(r.ok()) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.out << r.err;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A sealroot-snapshotter process with its own root and socket.
class Snapshotter {
 public:
  Snapshotter() = default;
  std::string socket() const { return dir_ / "sn.sock"; }
  std::string root() const { return dir_ / "root"; }
  // The config.toml part that makes containerd load it (and, for the CRI, use it).
  std::string ContainerdConfig(bool cri) const {
    std::string config =
        "[proxy_plugins.sealroot]\n  type = \"snapshot\"\n  address = \"" + socket() + "\"\n";
    if (cri) {
      config +=
          "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"sealroot\"\n"
          "  disable_snapshot_annotations = false\n";
    }
    return config;
  }
  // `settings`: more keys of the snapshotter's config.
  void Start(const std::string& containerd_socket, const json& settings = json::object()) {
    json config = {{"root", root()},
                   {"address", socket()},
                   {"containerd_address", containerd_socket},
                   {"log_level", "debug"}};
    config.update(settings);
    std::ofstream(dir_ / "snapshotter.json") << config.dump();
    process_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{BuiltProgram("sealroot-snapshotter"), "--config", dir_ / "snapshotter.json"},
        dir_ / "snapshotter.log");
    // Its socket file exists from bind(2) on, but it accepts connections only once it listens.
    ASSERT_TRUE(ConnectUnix(socket(), std::chrono::steady_clock::now() + 10s).ok()) << Log();
    // containerd's client of the snapshotter, which failed to reach it before (not yet started,
    // or restarted), dials again only after a backoff of a second or more; until then its calls
    // fail with the last error. Wait until containerd reaches it.
    const std::vector<std::string> list = {
        "ctr", "--address", containerd_socket, "snapshots", "--snapshotter", "sealroot", "ls"};
    bool reached = false;
    for (int i = 0; i < 100 && !(reached = sealroot::testing::Run(list).ok()); ++i)
      std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(reached) << Log();
  }
  int Stop() { return process_->Stop(SIGTERM); }
  std::string Log() const { return Slurp(dir_ / "snapshotter.log"); }
  json Metadata() const { return json::parse(Slurp(root() + "/metadata.json")); }

 private:
  TempDir dir_;
  std::unique_ptr<BackgroundProcess> process_;
};

std::vector<std::string> Sn(std::vector<std::string> args) {
  args.insert(args.begin(), {"snapshots", "--snapshotter", "sealroot"});
  return args;
}

// `ctr snapshots ls`: key -> parent ("" for none) of every committed snapshot.
std::map<std::string, std::string> Committed(Containerd& containerd) {
  CommandResult ls = containerd.Ctr(Sn({"ls"}));
  std::map<std::string, std::string> out;
  std::istringstream lines(ls.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (!f.empty() && f.back() == "Committed") out[f[0]] = f.size() == 3 ? f[1] : "";
  }
  return out;
}

TEST(SnapshotterContainerdTest, OrdinaryImagesPullAndRunWithRuncOverItsOverlayMounts) {
  Material& m = M();
  Snapshotter snapshotter;
  Containerd containerd(/*cri=*/false, snapshotter.ContainerdConfig(false));
  snapshotter.Start(containerd.socket());
  // sleeper: two layers (busybox, then a marker file), so its top is an overlay of two.
  for (const std::string& image : {m.plain_image, m.sleeper_image}) {
    CommandResult pulled =
        containerd.Ctr({"images", "pull", "--plain-http", "--snapshotter", "sealroot", image});
    ASSERT_TRUE(pulled.ok()) << pulled.err << containerd.Log() << snapshotter.Log();
  }
  CommandResult ran =
      containerd.Ctr({"run", "--rm", "--snapshotter", "sealroot", m.plain_image, "plain-runc"});
  EXPECT_EQ(ran.exit_code, 5) << ran.out << ran.err << snapshotter.Log();
  EXPECT_EQ(ran.out, "hello from cri\n");
  // The layers containerd unpacked are directories of the snapshotter's root.
  CommandResult busybox =
      sealroot::testing::Run({"sh", "-c", "ls " + snapshotter.root() + "/snapshots/*/fs/bin/busybox"});
  EXPECT_TRUE(busybox.ok()) << busybox.err;

  // Mounts as containerd's overlayfs snapshotter makes them.
  std::string top, bottom;  // a layer right above a base layer, and that base layer
  const std::map<std::string, std::string> committed = Committed(containerd);
  for (const auto& [key, parent] : committed) {
    auto below = committed.find(parent);
    if (below != committed.end() && below->second.empty()) std::tie(top, bottom) = std::pair(key, parent);
  }
  ASSERT_FALSE(top.empty()) << containerd.Ctr(Sn({"ls"})).out;
  ASSERT_TRUE(containerd.Ctr(Sn({"prepare", "work", top})).ok());
  CommandResult mounts = containerd.Ctr(Sn({"mounts", "/mnt", "work"}));
  ASSERT_TRUE(mounts.ok()) << mounts.err;
  EXPECT_TRUE(mounts.out.starts_with("mount -t overlay overlay /mnt -o ")) << mounts.out;
  EXPECT_NE(mounts.out.find("upperdir=" + snapshotter.root() + "/snapshots/"), std::string::npos)
      << mounts.out;
  EXPECT_NE(mounts.out.find("workdir=" + snapshotter.root() + "/snapshots/"), std::string::npos)
      << mounts.out;
  EXPECT_NE(mounts.out.find(",lowerdir=" + snapshotter.root() + "/snapshots/"), std::string::npos)
      << mounts.out;
  EXPECT_NE(mounts.out.find("/fs:" + snapshotter.root()), std::string::npos)
      << "two lower layers: " << mounts.out;
  // The mounts View itself returns: ctr's view, unlike its prepare, labels no gc.root, and
  // containerd's garbage collector may remove an unreferenced view before a later Mounts call.
  mounts = containerd.Ctr(Sn({"view", "--target", "/mnt", "one-layer", bottom}));
  ASSERT_TRUE(mounts.ok()) << mounts.err << snapshotter.Log();
  EXPECT_TRUE(mounts.out.starts_with("mount -t bind " + snapshotter.root() + "/snapshots/")) << mounts.out;
  EXPECT_NE(mounts.out.find("-o ro,rbind"), std::string::npos) << mounts.out;
  ASSERT_TRUE(containerd.Ctr(Sn({"prepare", "scratch"})).ok());
  mounts = containerd.Ctr(Sn({"mounts", "/mnt", "scratch"}));
  ASSERT_TRUE(mounts.ok()) << mounts.err << snapshotter.Log();
  EXPECT_NE(mounts.out.find("-o rw,rbind"), std::string::npos) << mounts.out;

  // Labels, usage, and the parent rule.
  ASSERT_TRUE(containerd.Ctr(Sn({"label", "work", "team=sealroot"})).ok());
  CommandResult info = containerd.Ctr(Sn({"info", "work"}));
  EXPECT_NE(info.out.find("\"team\": \"sealroot\""), std::string::npos) << info.out;
  CommandResult usage = containerd.Ctr(Sn({"usage", bottom}));
  EXPECT_NE(usage.out.find("MiB"), std::string::npos) << "busybox is more than a MiB: " << usage.out;
  CommandResult removed = containerd.Ctr(Sn({"rm", bottom}));
  EXPECT_FALSE(removed.ok());
  EXPECT_NE(removed.err.find("child"), std::string::npos) << removed.err;
  ASSERT_TRUE(containerd.Ctr(Sn({"rm", "work"})).ok());
  EXPECT_EQ(containerd.Ctr(Sn({"info", "work"})).exit_code, 1);
}

TEST(SnapshotterContainerdTest, MetadataSurvivesASnapshotterRestart) {
  Material& m = M();
  Snapshotter snapshotter;
  Containerd containerd(/*cri=*/false, snapshotter.ContainerdConfig(false));
  snapshotter.Start(containerd.socket());
  ASSERT_TRUE(
      containerd.Ctr({"images", "pull", "--plain-http", "--snapshotter", "sealroot", m.sleeper_image}).ok());
  std::map<std::string, std::string> before = Committed(containerd);
  ASSERT_EQ(before.size(), 2u);
  ASSERT_TRUE(containerd.Ctr(Sn({"prepare", "kept", before.begin()->first})).ok());
  ASSERT_TRUE(containerd.Ctr(Sn({"label", "kept", "survives=restart"})).ok());
  CommandResult mounts_before = containerd.Ctr(Sn({"mounts", "/mnt", "kept"}));

  EXPECT_EQ(snapshotter.Stop(), 0) << snapshotter.Log();
  snapshotter.Start(containerd.socket());
  EXPECT_EQ(Committed(containerd), before);
  CommandResult info = containerd.Ctr(Sn({"info", "kept"}));
  EXPECT_NE(info.out.find("\"survives\": \"restart\""), std::string::npos) << info.out << info.err;
  EXPECT_EQ(containerd.Ctr(Sn({"mounts", "/mnt", "kept"})).out, mounts_before.out);
  // The layers are still there: a container runs from them.
  CommandResult ran = containerd.Ctr({"run", "--rm", "--snapshotter", "sealroot", m.sleeper_image,
                                      "after-restart", "cat", "/etc/sealroot-marker"});
  EXPECT_TRUE(ran.ok()) << ran.err << snapshotter.Log();
  EXPECT_EQ(ran.out, "inside the sealed root\n");
}

// An image only the stub enclave may read: one layer made here (busybox and a secret line no
// other image has), encrypted with skopeo (JWE) and re-wrapped for the owner's key broker as
// CoCo does, in the shim tests' registry.
struct SecretImage {
  std::string ref;     // 127.0.0.1:PORT/snap/secret:1
  std::string secret;  // the line the container prints
  std::vector<std::string> layer_digests;
};

SecretImage MakeSecretImage(const TempDir& dir, const std::string& resources) {
  Material& m = M();
  SecretImage image;
  image.secret = "sealroot-secret-" + HexEncode(Sha256Of(dir.path())).substr(0, 16);
  Result<std::string> busybox = ReadFile("/bin/busybox");
  EXPECT_TRUE(busybox.ok());
  WriteTar(dir / "secret.tar", {TarEntry{.type = TarEntry::kDir, .name = "bin", .mode = 0755},
                                TarEntry{.name = "bin/busybox", .data = *busybox, .mode = 0755},
                                TarEntry{.type = TarEntry::kSymlink, .name = "bin/sh", .link = "busybox"},
                                TarEntry{.type = TarEntry::kSymlink, .name = "bin/cat", .link = "busybox"},
                                TarEntry{.type = TarEntry::kDir, .name = "etc", .mode = 0755},
                                TarEntry{.name = "etc/passwd", .data = "root:x:0:0:root:/root:/bin/sh\n"},
                                TarEntry{.name = "etc/group", .data = "root:x:0:\n"},
                                TarEntry{.name = "etc/sealroot-secret", .data = image.secret + "\n"}});
  std::string plain = NewLayoutImage(dir / "plain", "secret");
  AddLayer(plain, dir / "secret.tar");
  ConfigureImage(plain, {"--config.entrypoint=/bin/sh", "--config.cmd=-c",
                         "--config.cmd=cat /etc/sealroot-secret; exit 6"});
  MustRun({"openssl", "genrsa", "-out", dir / "layer.pem", "2048"});
  MustRun({"openssl", "rsa", "-in", dir / "layer.pem", "-pubout", "-out", dir / "layer.pub"});
  MustRun({"skopeo", "--insecure-policy", "copy", "--quiet", "--encryption-key", "jwe:" + dir / "layer.pub",
           plain, "oci:" + dir / "enc:secret"});
  MustRun({"python3", SourceDir() + "/tests/kbs/coco_wrap.py", dir / "enc", "secret", dir / "layer.pem",
           resources, "default/key/secret"});
  m.registry.Push("oci:" + dir / "enc:secret", "snap/secret:1");
  image.ref = m.registry.host() + "/snap/secret:1";
  CommandResult manifest =
      sealroot::testing::Run({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + image.ref});
  EXPECT_TRUE(manifest.ok()) << manifest.err;
  const json parsed = json::parse(manifest.out);
  for (const json& layer : parsed.at("layers")) {
    EXPECT_TRUE(layer["mediaType"].get<std::string>().ends_with("+encrypted")) << layer.dump();
    image.layer_digests.push_back(layer["digest"]);
  }
  return image;
}

// The shim config of a pod whose agent gets layer keys from the broker at `broker_url`: the
// shim tests' default agent manifest plus `key_broker`, signed with their key; returns the
// config's path and sets `mrenclave` to the agent's (what the broker's policy trusts).
std::string KeyBrokerShimConfig(const TempDir& dir, const std::string& broker_url, std::string& mrenclave) {
  Material& m = M();
  const std::vector<std::string> layout = {"--heap-size", "1048576", "--threads", "2"};
  json manifest = json::parse(Slurp(m.dir / "agent-default.json"));
  manifest["key_broker"] = {{"url", broker_url}};
  std::ofstream(dir / "agent-kbs.json") << manifest.dump(2);
  std::vector<std::string> sign = {BuiltProgram("sealroot"),
                                   "enclave",
                                   "sign",
                                   BuiltProgram("enclave-agent"),
                                   "--manifest",
                                   dir / "agent-kbs.json",
                                   "--key",
                                   m.dir / "signer.pem",
                                   "--out",
                                   dir / "agent-kbs.sig",
                                   "--isv-prod-id",
                                   "1",
                                   "--isv-svn",
                                   "1"};
  sign.insert(sign.end(), layout.begin(), layout.end());
  MustRun(sign);
  std::vector<std::string> measure = {BuiltProgram("sealroot"),      "enclave",    "measure",
                                      BuiltProgram("enclave-agent"), "--manifest", dir / "agent-kbs.json"};
  measure.insert(measure.end(), layout.begin(), layout.end());
  CommandResult measured = Run(measure);
  EXPECT_TRUE(measured.ok()) << measured.err;
  mrenclave = Trimmed(measured.out);
  json shim = json::parse(Slurp(m.shim_config));
  shim["agent"]["sigstruct"] = dir / "agent-kbs.sig";
  shim["manifest"] = dir / "agent-kbs.json";
  std::ofstream(dir / "shim-kbs.json") << shim.dump(2);
  return dir / "shim-kbs.json";
}

// Stubs for cri_pull_client.py, generated into `dir`.
void GenerateCriStubs(const TempDir& dir) {
  const std::string source = SourceDir() + "/tests";
  MustRun({"/usr/bin/python3", "-m", "grpc_tools.protoc", "-I", source + "/shim", "-I",
           source + "/snapshotter", "--python_out=" + dir.path(), "--grpc_python_out=" + dir.path(),
           source + "/shim/cri.proto", source + "/snapshotter/cri_image.proto"});
}

// cri_pull_client.py's JSON answer (`what`: pull, run or pull-run).
json Cri(const TempDir& dir, const Containerd& containerd, const std::string& image,
         const std::string& what) {
  CommandResult client =
      sealroot::testing::Run({"/usr/bin/python3", SourceDir() + "/tests/snapshotter/cri_pull_client.py",
                              dir.path(), containerd.socket(), image, "sealroot-kbs", dir / "logs", what},
                             {.timeout = std::chrono::seconds(600)});
  EXPECT_TRUE(client.ok()) << client.err;
  json out = json::parse(client.out, nullptr, false);
  EXPECT_TRUE(out.is_object()) << client.out << client.err;
  return out.is_object() ? out : json::object();
}

// containerd's whole log (debug level: every registry request with its URL).
std::string ContainerdLog(const Containerd& containerd) {
  return Slurp(containerd.root() + "/containerd.log");
}

// Every regular file under `dir` whose content contains `needle`.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  CommandResult grep = sealroot::testing::Run({"grep", "-rlaF", needle, dir});
  std::vector<std::string> out;
  std::istringstream lines(grep.out);
  for (std::string line; std::getline(lines, line);) out.push_back(line);
  return out;
}

TEST(SnapshotterCriTest, AnEncryptedImageIsPulledByTheStubEnclaveOnly) {
  Material& m = M();
  TempDir work;
  ASSERT_TRUE(MakeDirs(work / "resources", 0700).ok());
  SecretImage image = MakeSecretImage(work, work / "resources");
  ASSERT_FALSE(image.layer_digests.empty());

  // The owner's key broker: the layer key, for the pod agent's MRENCLAVE only.
  const int port = FreePort();
  std::string mrenclave;
  const std::string shim_config =
      KeyBrokerShimConfig(work, "http://127.0.0.1:" + std::to_string(port), mrenclave);
  std::ofstream(work / "broker-policy.json") << json{{"trusted", {{{"mrenclave", mrenclave}}}}}.dump();
  BackgroundProcess broker({BuiltProgram("sealroot"), "keyprovider", "--kbs", "--log-level", "info",
                            "--listen", "127.0.0.1:" + std::to_string(port), "--sim-root", "--policy",
                            work / "broker-policy.json", "--resources", work / "resources"},
                           work / "broker.log");
  ASSERT_TRUE(WaitForPort(port));

  Snapshotter snapshotter;
  const std::string runtime =
      "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.sealroot-kbs]\n"
      "  runtime_type = \"io.containerd.sealroot.v2\"\n"
      "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.sealroot-kbs.options]\n"
      "  ConfigPath = \"" +
      shim_config + "\"\n";
  Containerd containerd(/*cri=*/true, snapshotter.ContainerdConfig(true) + runtime);
  snapshotter.Start(containerd.socket());
  // The sandbox image, an ordinary one, unpacked by the snapshotter as overlayfs would.
  CommandResult pause =
      sealroot::testing::Run({"ctr", "--address", containerd.socket(), "--namespace", "k8s.io", "images",
                              "pull", "--plain-http", "--snapshotter", "sealroot", m.plain_image});
  ASSERT_TRUE(pause.ok()) << pause.err << snapshotter.Log();

  GenerateCriStubs(work);
  auto cri = [&](const std::string& what) {
    json out = Cri(work, containerd, image.ref, what);
    EXPECT_FALSE(out.contains("error")) << out.dump() << containerd.Log() << snapshotter.Log();
    return out;
  };

  // kubelet's PullImage: containerd fetches the manifest and config; the snapshotter answers each
  // layer's Prepare with a placeholder, so no layer is fetched or unpacked.
  json pulled = cri("pull");
  ASSERT_TRUE(pulled.contains("image_ref")) << pulled.dump();
  CommandResult content = sealroot::testing::Run(
      {"ctr", "--address", containerd.socket(), "-n", "k8s.io", "content", "ls", "-q"});
  ASSERT_TRUE(content.ok());
  // containerd's debug log names every registry request: the manifest, never a layer.
  const std::string log = ContainerdLog(containerd);
  EXPECT_NE(log.find("/v2/snap/secret/manifests/"), std::string::npos);
  for (const std::string& digest : image.layer_digests) {
    EXPECT_EQ(content.out.find(digest), std::string::npos)
        << "layer " << digest << " is in containerd's store";
    EXPECT_EQ(log.find("/blobs/" + digest), std::string::npos) << "containerd fetched layer " << digest;
  }
  EXPECT_NE(snapshotter.Log().find("confidential image " + image.ref), std::string::npos)
      << snapshotter.Log();
  json metadata = snapshotter.Metadata();
  int placeholders = 0;
  for (const auto& [key, s] : metadata["snapshots"].items()) {
    if (s["labels"].value("containerd.io/snapshot/cri.image-ref", "") != image.ref) continue;
    EXPECT_EQ(s["labels"].value("containerd.io/snapshot/sealroot.placeholder", ""), "true") << key;
    EXPECT_TRUE(std::filesystem::is_empty(snapshotter.root() + "/snapshots/" +
                                          std::to_string(s["id"].get<int>()) + "/fs"))
        << key;
    ++placeholders;
  }
  EXPECT_EQ(placeholders, static_cast<int>(image.layer_digests.size())) << metadata.dump(2);
  EXPECT_EQ(FilesContaining(snapshotter.root(), image.secret), std::vector<std::string>{});
  EXPECT_EQ(FilesContaining(containerd.root(), image.secret), std::vector<std::string>{});

  // The pod: the CRI prepares the container's root over the placeholders; the shim ignores it
  // and the stub enclave pulls the image, with the layer key from the broker.
  json ran = cri("run");
  EXPECT_EQ(ran.value("state", ""), "CONTAINER_EXITED") << ran.dump();
  EXPECT_EQ(ran.value("exit_code", -1), 6) << ran.dump();
  ASSERT_EQ(ran["log"].size(), 1u) << ran.dump() << Slurp(work / "broker.log");
  EXPECT_TRUE(ran["log"][0].get<std::string>().ends_with(" stdout F " + image.secret)) << ran.dump();
  EXPECT_EQ(ran.value("pod", ""), "removed") << ran.dump();
  EXPECT_NE(Slurp(work / "broker.log").find("released default/key/secret"), std::string::npos)
      << Slurp(work / "broker.log");
  // Still nothing of the image on the host.
  EXPECT_EQ(FilesContaining(snapshotter.root(), image.secret), std::vector<std::string>{});
  // The shim exits after it answered the pod's removal: give it the time to.
  for (int pid : ProcessesStillMentioning(containerd.socket()))
    ADD_FAILURE() << "a shim still runs: " << CommandLineOf(pid);
}

// The two ways an image is confidential, each alone: a pattern makes a plaintext image's layers
// placeholders; without detection (and no pattern) an encrypted image goes the host's way and
// containerd fails to unpack it, after fetching its layer, which is what the snapshotter avoids.
TEST(SnapshotterCriTest, PatternsAndEncryptionDetectionDecide) {
  Material& m = M();
  TempDir work;
  ASSERT_TRUE(MakeDirs(work / "resources", 0700).ok());
  SecretImage secret = MakeSecretImage(work, work / "resources");
  Snapshotter snapshotter;
  Containerd containerd(/*cri=*/true, snapshotter.ContainerdConfig(true));
  snapshotter.Start(containerd.socket(), {{"detect_encrypted", false},
                                          {"confidential_images", {m.registry.host() + "/shim/hello*"}}});
  GenerateCriStubs(work);

  json pulled = Cri(work, containerd, m.hello_image, "pull");
  EXPECT_FALSE(pulled.contains("error")) << pulled.dump() << snapshotter.Log();
  CommandResult manifest = sealroot::testing::Run(
      {"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + m.hello_image});
  ASSERT_TRUE(manifest.ok()) << manifest.err;
  const json hello = json::parse(manifest.out);
  CommandResult content = sealroot::testing::Run(
      {"ctr", "--address", containerd.socket(), "-n", "k8s.io", "content", "ls", "-q"});
  for (const json& layer : hello.at("layers")) {
    EXPECT_EQ(content.out.find(layer["digest"].get<std::string>()), std::string::npos) << layer.dump();
  }
  EXPECT_NE(snapshotter.Log().find("matches the pattern"), std::string::npos) << snapshotter.Log();
  CommandResult busybox =
      sealroot::testing::Run({"sh", "-c", "ls " + snapshotter.root() + "/snapshots/*/fs/bin/busybox"});
  EXPECT_FALSE(busybox.ok()) << "a layer was unpacked: " << busybox.out;

  json refused = Cri(work, containerd, secret.ref, "pull");
  ASSERT_TRUE(refused.contains("error")) << refused.dump();
  EXPECT_NE(refused["error"].get<std::string>().find("encrypted"), std::string::npos) << refused.dump();
  EXPECT_NE(ContainerdLog(containerd).find("/blobs/" + secret.layer_digests[0]), std::string::npos)
      << "the host fetched the layer";
}

}  // namespace
}  // namespace sealroot::testing::shim
