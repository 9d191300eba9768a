#include "tests/shim/containerd_fixture.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "base/file.h"
#include "tests/support/images.h"

namespace sealroot::testing::shim {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

void Check(const CommandResult& result, const std::string& what) {
  if (!result.ok()) throw std::runtime_error(what + ": " + result.err + result.out);
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The enclave layout every test enclave is signed for (small: measuring is faster).
const std::vector<std::string> kLayout = {"--heap-size", "1048576", "--threads", "2"};

}  // namespace

Material::Material() {
  const std::string sealroot = BuiltProgram("sealroot");
  // busybox images whose default commands are what the tests run (a workload policy accepts
  // an image's own command).
  std::string hello = BuildBusyboxImage(dir / "hello", "hello");
  ConfigureImage(hello, {"--clear=config.cmd", "--config.cmd=-c",
                         "--config.cmd=echo hello from sealroot in $(pwd); exit 3"});
  std::string sleeper = BuildBusyboxImage(dir / "sleeper", "sleeper");
  WriteTar(dir / "marker.tar", {TarEntry{.name = "etc/sealroot-marker", .data = "inside the sealed root\n"}});
  AddLayer(sleeper, dir / "marker.tar");
  ConfigureImage(sleeper,
                 {"--clear=config.cmd", "--config.cmd=-c", "--config.cmd=echo started; exec sleep 600"});
  std::string plain = BuildBusyboxImage(dir / "plain", "plain");
  ConfigureImage(plain,
                 {"--clear=config.cmd", "--config.cmd=-c", "--config.cmd=echo hello from cri; exit 5"});
  std::string limits = BuildBusyboxImage(dir / "limits", "limits");
  ConfigureImage(limits, {"--clear=config.cmd", "--config.cmd=-c",
                          "--config.cmd=echo memory limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                          "2>/dev/null || cat /sys/fs/cgroup/memory.max); exit 6"});
  registry.Push(limits, "shim/limits:1");
  limits_image = registry.host() + "/shim/limits:1";
  std::string namespaces = BuildBusyboxImage(dir / "namespaces", "namespaces");
  ConfigureImage(namespaces, {"--clear=config.cmd", "--config.cmd=-c",
                              "--config.cmd=echo $(readlink /proc/self/ns/net) $(readlink /proc/self/ns/ipc) "
                              "$(readlink /proc/self/ns/uts) $(hostname)"});
  registry.Push(namespaces, "shim/namespaces:1");
  namespaces_image = registry.host() + "/shim/namespaces:1";
  std::string volume = BuildBusyboxImage(dir / "volume", "volume");
  ConfigureImage(volume, {"--clear=config.cmd", "--config.cmd=-c",
                          "--config.cmd=echo sealed-$((6*7))-marker > /data/marker; exec sleep 600"});
  registry.Push(volume, "shim/volume:1");
  volume_image = registry.host() + "/shim/volume:1";
  registry.Push(plain, "shim/plain:1");
  plain_image = registry.host() + "/shim/plain:1";
  registry.Push(hello, "shim/hello:1");
  registry.Push(sleeper, "shim/sleeper:1");
  hello_image = registry.host() + "/shim/hello:1";
  sleeper_image = registry.host() + "/shim/sleeper:1";

  // sealroot-boot's manifest: it accepts keys only from this signer's product 1 (the agent).
  Check(Run({sealroot, "enclave", "keygen", dir / "signer.pem"}), "enclave keygen");
  CommandResult signer = Run({sealroot, "enclave", "sign", BuiltProgram("sealroot-boot"), "--key",
                              dir / "signer.pem", "--out", dir / "unused.sig", "--json"});
  Check(signer, "enclave sign --json");
  Write(dir / "boot-manifest.json",
        json{{"stub",
              {{"mrsigner", json::parse(signer.out).at("mrsigner")}, {"isv_prod_id", 1}, {"min_isv_svn", 1}}}}
            .dump());
  auto sign = [&](const std::string& program, const std::string& manifest, const std::string& out,
                  const std::string& prod) {
    std::vector<std::string> argv = {
        sealroot,           "enclave", "sign", BuiltProgram(program), "--manifest", manifest,    "--key",
        dir / "signer.pem", "--out",   out,    "--isv-prod-id",       prod,         "--isv-svn", "1"};
    argv.insert(argv.end(), kLayout.begin(), kLayout.end());
    Check(Run(argv), "enclave sign " + program);
  };
  sign("sealroot-boot", dir / "boot-manifest.json", dir / "boot.sig", "2");
  std::vector<std::string> measure = {sealroot,     "enclave",
                                      "measure",    BuiltProgram("sealroot-boot"),
                                      "--manifest", dir / "boot-manifest.json"};
  measure.insert(measure.end(), kLayout.begin(), kLayout.end());
  CommandResult boot_mr = Run(measure);
  Check(boot_mr, "enclave measure");

  socket_root = dir / "s";
  const json program = {{"heap_size", 1 << 20}, {"threads", 2}};
  json boot = program;
  boot.update({{"executable", BuiltProgram("sealroot-boot")}, {"sigstruct", dir / "boot.sig"}});
  // Two image owners' workload policies: none (the image's own command, no exec), and one that
  // allows a pod command of its choosing and two exec commands.
  for (const auto& [name, workload] :
       {std::pair{std::string("default"), json::object()},
        std::pair{
            std::string("policy"),
            json{{"args", {kOwnerAllowedCommand}},
                 {"exec", {{"cat", "/etc/sealroot-marker"}, {"sh", "-c", "exit 7"}, {"cat", "/data/marker"}}},
                 {"volumes", {"/data"}}}}}) {
    json manifest = {
        {"registry", {{"tls_verify", false}}},
        // Signatures are the trust tests' business: this policy accepts any image.
        {"trust", {{"policy", json::parse(R"({"default": [{"type": "insecureAcceptAnything"}]})")}}},
        {"app_enclaves", json::array({json{{"mrenclave", Trim(boot_mr.out)}}})},
        {"workload", workload},
        {"boot", boot}};
    manifest["boot"]["manifest"] = dir / "boot-manifest.json";
    const std::string manifest_path = dir / ("agent-" + name + ".json");
    Write(manifest_path, manifest.dump(2));
    sign("enclave-agent", manifest_path, dir / ("agent-" + name + ".sig"), "1");
    json agent = program;
    agent.update(
        {{"executable", BuiltProgram("enclave-agent")}, {"sigstruct", dir / ("agent-" + name + ".sig")}});
    json shim = {{"launcher", sealroot},
                 {"agent", agent},
                 {"boot", boot},
                 {"manifest", manifest_path},
                 {"state_root", dir / "pods"},
                 {"socket_root", socket_root},
                 {"log_level", "debug"}};
    Write(dir / ("shim-" + name + ".json"), shim.dump(2));
  }
  shim_config = dir / "shim-default.json";
  policy_shim_config = dir / "shim-policy.json";
}

Material& M() {
  static Material* material = new Material();
  return *material;
}

Containerd::Containerd(bool cri, const std::string& extra_config) {
  socket_ = dir_ / "c.sock";
  // Top-level keys first: after a [table] header a key belongs to that table.
  std::string config =
      "version = 2\nroot = \"" + (dir_ / "root") + "\"\nstate = \"" + (dir_ / "state") + "\"\n";
  if (!cri) config += "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n";
  config += "[grpc]\n  address = \"" + socket_ + "\"\n[debug]\n  level = \"debug\"\n";
  config +=
      "[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n"
      "  sandbox_image = \"" +
      M().plain_image +
      "\"\n"
      "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n"
      "  runtime_type = \"io.containerd.runc.v2\"\n"
      "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.sealroot]\n"
      "  runtime_type = \"io.containerd.sealroot.v2\"\n"
      "  pod_annotations = [\"io.sealroot.*\"]\n"
      "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.sealroot.options]\n"
      "  ConfigPath = \"" +
      M().shim_config + "\"\n" + extra_config;
  if (cri) {
    // A pod with a network of its own needs CNI (containerd 1.6 refuses it without a network
    // config): a bridge of this containerd's own, no gateway, addresses from a local range.
    bridge_ = "srcni-" + dir_.path().substr(dir_.path().size() - 6);
    std::filesystem::create_directories(dir_ / "cni");
    Write(
        dir_ / "cni/10-pod.conflist",
        json{{"cniVersion", "0.4.0"},
             {"name", "sealroot-test"},
             {"plugins",
              json::array({json{
                  {"type", "bridge"},
                  {"bridge", bridge_},
                  {"isGateway", false},
                  {"ipMasq", false},
                  {"ipam",
                   {{"type", "host-local"}, {"subnet", "10.213.0.0/24"}, {"dataDir", dir_ / "cni-ipam"}}}}})}}
            .dump());
    config += "[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n  conf_dir = \"" +
              (dir_ / "cni") + "\"\n";
  }
  Write(dir_ / "config.toml", config);
  std::filesystem::create_directory(dir_ / "rootfs");  // `ctr run --rootfs`: left empty, never used
  Start();
}

void Containerd::Start() {
  const char* path = std::getenv("PATH");
  std::string bin = BuiltProgram("");
  process_ = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{"containerd", "--config", dir_ / "config.toml"}, dir_ / "containerd.log",
      std::map<std::string, std::string>{{"PATH", bin + ":" + (path ? path : "/usr/bin:/bin")}});
  for (int i = 0; i < 200; ++i) {
    if (Run({"ctr", "--address", socket_, "version"}, {.timeout = 5s}).ok()) return;
    std::this_thread::sleep_for(100ms);
  }
  throw std::runtime_error("containerd did not come up:\n" + Log());
}

void Containerd::Restart() {
  process_->Stop(SIGTERM);
  Start();
}

Containerd::~Containerd() {
  process_.reset();
  // Whatever a failed test left: shims of this containerd (their -address names its socket),
  // their pods' agents, mounts under its root.
  for (int pid : ProcessesMentioning(socket_)) kill(pid, SIGKILL);
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  std::vector<std::string> mounts;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string skip, point;
    fields >> skip >> skip >> skip >> skip >> point;
    if (point.starts_with(dir_.path())) mounts.push_back(point);
  }
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) umount2(it->c_str(), MNT_DETACH);
  if (!bridge_.empty()) (void)Run({"ip", "link", "delete", bridge_}, {.timeout = 10s});
}

CommandResult Containerd::Ctr(const std::vector<std::string>& args, std::chrono::seconds timeout,
                              const std::string& stdin_data) {
  std::vector<std::string> argv = {"ctr", "--address", socket_, "--namespace", "shimtest"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {.stdin_data = stdin_data, .timeout = timeout});
}

std::vector<std::string> Containerd::RunArgs(const std::string& image, const std::string& id,
                                             const std::string& shim_config) const {
  return {"run",
          "--runtime",
          "io.containerd.sealroot.v2",
          "--runtime-config-path",
          shim_config.empty() ? M().shim_config : shim_config,
          "--annotation",
          "io.kubernetes.cri.image-name=" + image,
          "--rootfs",
          dir_ / "rootfs",
          id};
}

std::string Containerd::Log() const {
  std::ifstream in(dir_ / "containerd.log");
  std::stringstream out;
  out << in.rdbuf();
  std::string text = out.str();
  return text.size() > 20000 ? text.substr(text.size() - 20000) : text;
}

std::vector<int> ProcessesMentioning(const std::string& needle) {
  std::vector<int> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = readdir(proc)) {
    int pid = std::atoi(entry->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    // A process may exit between readdir and the read (ESRCH): it mentions nothing any more.
    Result<std::string> cmdline = ReadFile("/proc/" + std::string(entry->d_name) + "/cmdline");
    if (cmdline.ok() && cmdline->find(needle) != std::string::npos) out.push_back(pid);
  }
  closedir(proc);
  return out;
}

std::string CommandLineOf(int pid) {
  Result<std::string> cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmdline.ok()) return "(exited)";
  std::replace(cmdline->begin(), cmdline->end(), '\0', ' ');
  return *cmdline;
}

std::vector<int> ProcessesStillMentioning(const std::string& needle) {
  std::vector<int> left = ProcessesMentioning(needle);
  for (int i = 0; i < 50 && !left.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    left = ProcessesMentioning(needle);
  }
  return left;
}

}  // namespace sealroot::testing::shim
