#include "shim/bootstrap.h"

#include <fcntl.h>
#include <google/protobuf/any.pb.h>
#include <google/protobuf/util/time_util.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "containerd_task.pb.h"
#include "rpc/server.h"
#include "rpc/ttrpc.h"
#include "runtime_options.pb.h"
#include "shim/config.h"
#include "shim/pod.h"
#include "shim/spec.h"
#include "shim/task_service.h"

namespace sealroot::shim {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr char kBundleRecord[] = "sealroot.json";  // what `delete` needs, written by `start`

rpc::ListenAddress UnixAddress(const std::string& socket) {
  return {.kind = rpc::ListenAddress::Kind::kUnix, .path = socket};
}

// Whether a shim daemon serves `socket`. Only an answer proves it: a daemon being killed may keep
// its listening socket open a moment longer than containerd's connection to it, and a bare
// connect then still succeeds. A daemon that does not answer in time is taken to be alive (busy):
// a pod is never torn down on a guess.
constexpr auto kProbeTimeout = 2s;
Status ProbeShim(const std::string& socket) {
  return rpc::ttrpc::Probe(UnixAddress(socket), kProbeTimeout);
}

// The runtime options on stdin (a protobuf Any): a runtimeoptions.v1.Options names the config.
Result<std::string> ConfigPathFromOptions(std::string_view bytes) {
  if (bytes.empty()) return std::string(kDefaultConfigPath);
  google::protobuf::Any any;
  if (!any.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgument("runtime options: not a protobuf Any");
  }
  if (!any.type_url().ends_with("runtimeoptions.v1.Options")) return std::string(kDefaultConfigPath);
  ::runtimeoptions::v1::Options options;
  if (!options.ParseFromString(any.value())) return InvalidArgument("runtime options: malformed Options");
  return options.config_path().empty() ? std::string(kDefaultConfigPath) : options.config_path();
}

// The pod a container belongs to: its sandbox's id for a CRI app container, else its own id.
std::string PodOf(const json& config, const std::string& id) {
  auto annotations = Annotations(config);
  auto type = annotations.find("io.kubernetes.cri.container-type");
  if (type != annotations.end() && type->second == "container") {
    auto sandbox = annotations.find("io.kubernetes.cri.sandbox-id");
    if (sandbox != annotations.end()) return sandbox->second;
  }
  return id;
}

Result<std::string> SpawnDaemon(const ShimFlags& flags, const std::string& socket,
                                const std::string& config_path) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return ErrnoStatus("readlink /proc/self/exe", errno);
  self[n] = '\0';
  std::vector<std::string> args = {self,
                                   "-namespace",
                                   flags.ns,
                                   "-address",
                                   flags.containerd_address,
                                   "-publish-binary",
                                   flags.publish_binary,
                                   "-id",
                                   flags.id,
                                   "-socket",
                                   socket,
                                   "-config",
                                   config_path};
  if (flags.debug) args.push_back("-debug");
  args.push_back("serve");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    setsid();
    int null = ::open("/dev/null", O_RDWR);
    // containerd reads the shim's log from the bundle's `log` FIFO; its stdout must not be the
    // pipe containerd reads `start`'s answer from.
    int log = ::open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (log >= 0) fcntl(log, F_SETFL, fcntl(log, F_GETFL) & ~O_NONBLOCK);
    dup2(null, 0);
    dup2(null, 1);
    dup2(log >= 0 ? log : null, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (rpc::ttrpc::Dial(UnixAddress(socket)).ok()) return "unix://" + socket;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return Internal("the shim daemon exited at start");
    std::this_thread::sleep_for(5ms);
  }
  kill(pid, SIGKILL);
  return DeadlineExceeded("the shim daemon did not listen within 10 s");
}

// What `start` leaves in the bundle for `delete`: where the pod's shim listens and which pod it is.
struct BundleRecord {
  std::string config, ns, pod, socket;
};

std::string ToJson(const BundleRecord& r) {
  return json{{"config", r.config}, {"namespace", r.ns}, {"pod", r.pod}, {"socket", r.socket}}.dump();
}

Result<BundleRecord> ParseBundleRecord(std::string_view text) {
  const json doc = json::parse(text, nullptr, false);
  if (!doc.is_object()) return InvalidArgument("not a JSON object");
  BundleRecord r;
  for (auto [key, field] : {std::pair{"config", &r.config}, std::pair{"namespace", &r.ns},
                            std::pair{"pod", &r.pod}, std::pair{"socket", &r.socket}}) {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
      return InvalidArgument(std::string("\"") + key + "\": expected a non-empty string");
    *field = it->get<std::string>();
  }
  return r;
}

// `delete` after a shim that containerd lost: a pod whose shim is gone is torn down. containerd
// also runs it after a normal removal, when a live shim still serves the pod.
Status CleanUpIfShimIsGone(const BundleRecord& record) {
  const Status probed = ProbeShim(record.socket);
  if (probed.code() == Code::kDeadlineExceeded) {
    return DeadlineExceeded("the pod's shim did not answer within " +
                            std::to_string(std::chrono::seconds(kProbeTimeout).count()) +
                            " s; its pod is left to it");
  }
  if (probed.code() != Code::kUnavailable) return OkStatus();
  SR_ASSIGN_OR_RETURN(ShimConfig config, LoadShimConfig(record.config));
  Status cleaned = CleanupPod(PodPathsFor(config, record.ns, record.pod));
  unlink(record.socket.c_str());
  return cleaned;
}

}  // namespace

Result<ShimFlags> ParseShimFlags(const std::vector<std::string>& args) {
  ShimFlags flags;
  const std::pair<const char*, std::string*> options[] = {{"namespace", &flags.ns},
                                                          {"address", &flags.containerd_address},
                                                          {"publish-binary", &flags.publish_binary},
                                                          {"id", &flags.id},
                                                          {"bundle", &flags.bundle},
                                                          {"socket", &flags.socket},
                                                          {"config", &flags.config_path}};
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    if (!name.starts_with("-")) {
      if (!flags.action.empty()) return InvalidArgument("unexpected argument " + name);
      flags.action = name;
      continue;
    }
    name.erase(0, name.starts_with("--") ? 2 : 1);
    if (name == "debug" || name == "v") {
      flags.debug = flags.debug || name == "debug";
      if (name == "v") flags.action = "version";
      continue;
    }
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return InvalidArgument("-" + name + " needs a value");
    }
    bool known = false;
    for (auto [option, target] : options) {
      if (name == option) {
        *target = value;
        known = true;
      }
    }
    // containerd's other shims take these; accepted and unused.
    if (!known && name != "socket-fd" && name != "systemd-cgroup")
      return InvalidArgument("unknown flag -" + name);
  }
  return flags;
}

int StartCommand(const ShimFlags& flags) {
  Result<std::string> options = ReadFd(0, 1u << 20);
  Result<std::string> config_path = options.ok() ? ConfigPathFromOptions(*options) : options.status();
  Result<ShimConfig> config = config_path.ok() ? LoadShimConfig(*config_path) : config_path.status();
  Result<std::string> bundle_text = ReadFile("config.json", 4u << 20);
  Status status = !config.ok() ? config.status() : bundle_text.status();
  if (!status.ok()) {
    std::cout << "sealroot shim start: " << status.message() << std::endl;
    return 1;
  }
  json bundle_config = json::parse(*bundle_text, nullptr, false);
  const std::string pod = PodOf(bundle_config, flags.id);
  const std::string key = flags.containerd_address + "\n" + flags.ns + "\n" + pod;
  const std::string socket = JoinPath(config->socket_root, HexEncode(Sha256Of(key)));
  Result<std::string> address = "unix://" + socket;
  if (ProbeShim(socket).code() == Code::kUnavailable) {
    if (Status made = MakeDirs(config->socket_root, 0700); !made.ok()) address = made;
    if (address.ok()) address = SpawnDaemon(flags, socket, *config_path);
  }
  if (address.ok()) {
    const BundleRecord record{.config = *config_path, .ns = flags.ns, .pod = pod, .socket = socket};
    Status written = WriteFileAtomic(kBundleRecord, ToJson(record), 0600);
    if (written.ok()) written = WriteFileAtomic("address", *address, 0600);
    if (!written.ok()) address = written;
  }
  if (!address.ok()) {
    std::cout << "sealroot shim start: " << address.status().message() << std::endl;
    return 1;
  }
  std::cout << *address << std::flush;
  return 0;
}

int DeleteCommand(const ShimFlags& flags) {
  const std::string bundle = flags.bundle.empty() ? "." : flags.bundle;
  // No record: `start` never got as far as a shim, and there is nothing to clean up.
  if (Result<std::string> text = ReadFile(JoinPath(bundle, kBundleRecord), 1u << 16); text.ok()) {
    Result<BundleRecord> record = ParseBundleRecord(*text);
    Status done = record.ok() ? CleanUpIfShimIsGone(*record)
                              : std::move(record).status().WithContext(JoinPath(bundle, kBundleRecord));
    // containerd logs what `delete` writes on stderr as cleanup warnings.
    if (!done.ok()) std::cerr << "sealroot shim delete: " << done.message() << "\n";
  }
  ::containerd::task::v2::DeleteResponse response;
  response.set_exit_status(128 + SIGKILL);
  *response.mutable_exited_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  std::cout << response.SerializeAsString() << std::flush;
  return 0;
}

int ServeCommand(const ShimFlags& flags) {
  signal(SIGPIPE, SIG_IGN);
  InstallInterruptHandler();
  // The first container's bundle was the working directory; the pod outlives it.
  if (chdir("/") != 0) return 1;
  Result<ShimConfig> config = LoadShimConfig(flags.config_path);
  if (!config.ok()) {
    SR_LOG(kError) << config.status().message();
    return 1;
  }
  if (auto level = log::ParseLevel(flags.debug ? "debug" : config->log_level); level.ok())
    log::SetLevel(*level);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 1;
  self[n] = '\0';

  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  EventPublisher events(ttrpc_address ? ttrpc_address : "", flags.ns);
  Mutex mu;
  std::condition_variable_any cv;
  bool shutdown = false;
  TaskService service({*config, flags.ns, self}, events, [&] {
    MutexLock lock(mu);
    shutdown = true;
    cv.notify_all();
  });
  TaskRouter router(service);
  Result<std::unique_ptr<rpc::TtrpcService>> server = rpc::TtrpcService::Start(
      rpc::ListenAddress{.kind = rpc::ListenAddress::Kind::kUnix, .path = flags.socket}, router);
  if (!server.ok()) {
    SR_LOG(kError) << "listening on " << flags.socket << ": " << server.status().message();
    return 1;
  }
  SR_LOG(kInfo) << "serving " << flags.ns << "/" << flags.id << " on " << flags.socket;
  {
    MutexLock lock(mu);
    while (!shutdown && !Interrupted()) cv.wait_for(mu, 200ms);
  }
  if (Interrupted()) service.Terminate();
  // The Shutdown call's reply goes out before the connections close.
  std::this_thread::sleep_for(50ms);
  (*server)->Stop();
  SR_LOG(kInfo) << "shim exiting";
  return 0;
}

}  // namespace sealroot::shim
