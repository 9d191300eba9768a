// The client side of the key-provider protocol: gRPC KeyProviderService and `cmd` providers.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/fd.h"
#include "base/file.h"
#include "image/trust/keyprovider.h"
#include "keyprovider.grpc.pb.h"

extern char** environ;

namespace sealroot::image::trust {
namespace {

using nlohmann::json;
constexpr std::size_t kMaxResponse = 1 << 20;

Result<KeyProvider> ParseProvider(const std::string& name, const json& entry) {
  if (!entry.is_object()) return InvalidArgument("key provider \"" + name + "\": not an object");
  KeyProvider p{name, {}, {}, {}, {}};
  for (auto& [kind, value] : entry.items()) {
    if (kind == "grpc" && value.is_string()) {
      p.grpc_address = value.get<std::string>();
    } else if (kind == "cmd" && value.is_object()) {
      for (auto& [field, v] : value.items()) {
        if (field == "path" && v.is_string()) {
          p.cmd_path = v.get<std::string>();
        } else if (field == "args" && (v.is_array() || v.is_null())) {
          for (const json& a : v) {
            if (!a.is_string())
              return InvalidArgument("key provider \"" + name + "\": cmd.args holds a non-string");
            p.cmd_args.push_back(a.get<std::string>());
          }
        } else {
          return InvalidArgument("key provider \"" + name + "\": unknown or malformed cmd field \"" + field +
                                 "\"");
        }
      }
      if (p.cmd_path.empty()) return InvalidArgument("key provider \"" + name + "\": cmd.path is missing");
    } else {
      return InvalidArgument("key provider \"" + name + "\": unknown or malformed field \"" + kind + "\"");
    }
  }
  if (p.grpc_address.empty() == p.cmd_path.empty()) {
    return InvalidArgument("key provider \"" + name + "\": needs exactly one of \"grpc\" and \"cmd\"");
  }
  return p;
}

Result<SecretBytes> GrpcUnwrap(const KeyProvider& provider, std::span<const std::uint8_t> annotation,
                               std::chrono::seconds timeout) {
  auto channel = grpc::CreateChannel(provider.grpc_address, grpc::InsecureChannelCredentials());
  auto stub = keyprovider::KeyProviderService::NewStub(channel);
  keyprovider::keyProviderKeyWrapProtocolInput input;
  input.set_keyproviderkeywrapprotocolinput(BuildUnwrapRequest(annotation));
  keyprovider::keyProviderKeyWrapProtocolOutput output;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Status status = stub->UnWrapKey(&context, input, &output);
  if (!status.ok()) {
    return Unavailable("key provider \"" + provider.name + "\" at " + provider.grpc_address +
                       ": UnWrapKey failed: " + status.error_message());
  }
  std::string& bytes = *output.mutable_keyproviderkeywrapprotocoloutput();
  Result<SecretBytes> opts = ParseUnwrapResponse(AsBytes(bytes));
  SecureWipe({reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()});
  return opts;
}

// Writes the request to the provider's stdin. A provider that exits without reading must not
// kill us with SIGPIPE: the signal is blocked for this thread and a pending one consumed, so
// the process-wide disposition is left alone.
Status WriteRequest(int fd, std::string_view request) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  Status wrote = WriteAll(fd, AsBytes(request));
  if (!wrote.ok()) {
    timespec zero{};
    while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  return wrote;
}

// Runs the provider command with the request on stdin; its stdout is the response.
Result<SecretBytes> CmdUnwrap(const KeyProvider& provider, std::span<const std::uint8_t> annotation,
                              std::chrono::seconds timeout) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return ErrnoStatus("key provider: pipe", errno);
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus("key provider: pipe", errno);
  UniqueFd out_r(out[0]), out_w(out[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  std::vector<std::string> argv_store{provider.cmd_path};
  argv_store.insert(argv_store.end(), provider.cmd_args.begin(), provider.cmd_args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, provider.cmd_path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    return ErrnoStatus("key provider \"" + provider.name + "\": starting " + provider.cmd_path, rc);
  in_r.Reset();
  out_w.Reset();
  std::string request = BuildUnwrapRequest(annotation);
  Status wrote = WriteRequest(in_w.get(), request);
  in_w.Reset();
  SecretBytes response(kMaxResponse);
  std::size_t used = 0;
  Status read_status;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (read_status.ok()) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{out_r.get(), POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) == 0) {
      read_status = DeadlineExceeded("key provider \"" + provider.name + "\": no answer in time");
      ::kill(pid, SIGKILL);
      break;
    }
    ssize_t n = ::read(out_r.get(), response.data() + used, response.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_status = ErrnoStatus("key provider: reading its output", errno);
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
    if (used == response.size()) read_status = ResourceExhausted("key provider: response over 1 MiB");
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  SR_RETURN_IF_ERROR(read_status);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Unavailable("key provider \"" + provider.name + "\": " + provider.cmd_path + " failed (status " +
                       std::to_string(wstatus) + ")");
  }
  SR_RETURN_IF_ERROR(wrote);
  return ParseUnwrapResponse(response.span().first(used));
}

// CoCo's AnnotationPacket: the layer's private options sealed (AES-256-GCM, tag appended) under
// a key encryption key the broker holds at `kid`.
Result<SecretBytes> BrokerUnwrap(const KeyProvider& provider, std::span<const std::uint8_t> annotation) {
  json packet = json::parse(AsChars(annotation), nullptr, false);
  if (packet.is_discarded() || !packet.is_object()) return InvalidArgument("key broker annotation: not JSON");
  auto field = [&](const char* name) -> std::string {
    auto it = packet.find(name);
    return it != packet.end() && it->is_string() ? it->get<std::string>() : "";
  };
  if (field("wrap_type") != "A256GCM") {
    return InvalidArgument("key broker annotation: wrap_type \"" + field("wrap_type") + "\" (only A256GCM)");
  }
  std::string kid = field("kid");
  if (!kid.starts_with("kbs://")) return InvalidArgument("key broker annotation: kid is not a kbs:// URI");
  auto wrapped = Base64Decode(field("wrapped_data"));
  auto iv = Base64Decode(field("iv"));
  if (!wrapped.ok() || !iv.ok() || iv->size() != 12 || wrapped->size() < 16) {
    return InvalidArgument("key broker annotation: wrapped_data/iv are not base64 of the right size");
  }
  Result<SecretBytes> kek = provider.broker(kid);
  if (!kek.ok()) return std::move(kek).status().WithContext("layer key " + kid);
  if (kek->size() != 32) return InvalidArgument("layer key " + kid + ": not a 256-bit key");
  Result<SecretBytes> opts = AesGcmOpen(kek->span(), *iv, {}, *wrapped);
  if (!opts.ok()) return DataLoss("layer key " + kid + ": the wrapped layer options do not open with it");
  return opts;
}

}  // namespace

Result<std::vector<KeyProvider>> LoadKeyProviderConfig(const std::string& path) {
  SR_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument("keyprovider config " + path + ": not a JSON object");
  std::vector<KeyProvider> out;
  for (auto& [key, value] : j.items()) {
    if (key != "key-providers" || !value.is_object()) {
      return InvalidArgument("keyprovider config " + path + ": unknown or malformed field \"" + key + "\"");
    }
    for (auto& [name, entry] : value.items()) {
      Result<KeyProvider> p = ParseProvider(name, entry);
      if (!p.ok()) return std::move(p).status().WithContext("keyprovider config " + path);
      out.push_back(std::move(p).value());
    }
  }
  return out;
}

Result<SecretBytes> ProviderUnwrap(const KeyProvider& provider, std::span<const std::uint8_t> annotation,
                                   std::chrono::seconds timeout) {
  if (provider.broker) return BrokerUnwrap(provider, annotation);
  if (!provider.grpc_address.empty()) return GrpcUnwrap(provider, annotation, timeout);
  return CmdUnwrap(provider, annotation, timeout);
}

}  // namespace sealroot::image::trust
