// `sealroot ctl`: a client of the enclave-agent API for people and scripts. Every subcommand is
// one or a few calls of the API a shim uses (over ttrpc, or gRPC with --grpc), printed as text
// or, with --json, as one JSON object on stdout. `exec` relays the process's streams and exits
// with its status (ctl_exec.h).
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent.pb.h"
#include "agent/server/service.h"
#include "agent/spec/oci_spec.h"
#include "base/cli.h"
#include "base/crypto.h"
#include "base/encoding.h"
#include "base/file.h"
#include "health.pb.h"
#include "image.pb.h"
#include "image/reference.h"
#include "image/registry_auth.h"
#include "tool/src/agent_client.h"
#include "tool/src/commands.h"
#include "tool/src/ctl_exec.h"

namespace sealroot::tool {
namespace {

using nlohmann::json;
using rpc::ListenAddress;

constexpr char kDefaultAddress[] = "unix:///run/sealroot/agent.sock";
constexpr char kAgentService[] = "grpc.AgentService";

// What a subcommand talks to: a connected client, and where it is (exec opens more).
struct Agent {
  AgentEndpoint endpoint;
  std::unique_ptr<AgentClient> client;
};

struct Subcommand {
  std::string_view name;
  std::string_view synopsis;
  std::string_view summary;
  Result<json> (*run)(ArgParser& parser, Agent& agent);
};

// One unary call: serialize, call, parse.
template <typename Response, typename Request>
Result<Response> Call(AgentClient& client, std::string_view service, std::string_view method,
                      const Request& request) {
  SR_ASSIGN_OR_RETURN(std::string bytes, client.Call(service, method, request.SerializeAsString()));
  Response response;
  if (!response.ParseFromString(bytes))
    return Internal(std::string(method) + ": malformed response from the agent");
  return response;
}

const std::string& Id(const ArgParser& parser) {
  return parser.positionals().at(0);
}

void WipeString(std::string& text) {
  SecureWipe(std::span(reinterpret_cast<std::uint8_t*>(text.data()), text.size()));
}

// USER:PASS for `image` from a containers-auth.json (skopeo's --authfile;
// image/registry_auth.h), or the whole file when it is a USER:PASS line (--creds-file).
Result<std::string> CredentialsFromFile(const std::string& file, const std::string& image) {
  SR_ASSIGN_OR_RETURN(SecretBytes secret, ReadSecretFile(file, 1u << 20));
  std::string_view text = AsChars(secret.span());
  std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || text[first] != '{') {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    return std::string(text);
  }
  Result<image::Reference> ref = image::Reference::Parse(image);
  if (!ref.ok() || ref->registry.empty()) return std::string();  // not a registry image: no credentials
  Result<SecretBytes> creds = image::CredentialsFromAuthJson(text, ref->registry, ref->repository);
  if (!creds.ok()) return std::move(creds).status().WithContext(file);
  return std::string(AsChars(creds->span()));
}

// Prepares a container's root. Without --container-id the agent's own derivation names it
// (DerivedContainerId), sent explicitly so that ctl can print the id it made.
Result<json> Pull(ArgParser& parser, Agent& agent) {
  ::grpc::PullImageRequest request;
  const std::string& image = parser.positionals().at(0);
  request.set_image(image);
  request.set_container_id(parser.Get("container-id").value_or(agent::DerivedContainerId(image)));
  if (parser.Has("authfile") && parser.Has("creds-file"))
    return InvalidArgument("give one of --authfile and --creds-file (the same option)");
  if (auto file = parser.Has("authfile") ? parser.Get("authfile") : parser.Get("creds-file")) {
    SR_ASSIGN_OR_RETURN(std::string creds, CredentialsFromFile(*file, image));
    request.set_source_creds(creds);
    WipeString(creds);
  } else if (auto creds = parser.Get("creds")) {
    request.set_source_creds(*creds);
  }
  Result<::grpc::PullImageResponse> response =
      Call<::grpc::PullImageResponse>(*agent.client, "grpc.Image", "PullImage", request);
  WipeString(*request.mutable_source_creds());
  if (!response.ok()) return std::move(response).status();
  return json{{"image_ref", response->image_ref()}, {"container_id", request.container_id()}};
}

// The container's spec: --spec (a whole OCI runtime config.json, refused if it holds anything
// grpc.Spec cannot carry) or flags; a command after "--", --env and --cwd override it.
Result<::grpc::Spec> SpecFromFlags(const ArgParser& parser) {
  ::grpc::Spec spec;
  if (auto file = parser.Get("spec")) {
    SR_ASSIGN_OR_RETURN(std::string text, ReadFile(*file, 1u << 20));
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object())
      return InvalidArgument(*file + ": not a JSON OCI runtime spec");
    Result<::grpc::Spec> parsed = agent::SpecFromOciConfig(doc);
    if (!parsed.ok()) return std::move(parsed).status().WithContext(*file);
    spec = std::move(*parsed);
  }
  ::grpc::Process* process = spec.mutable_process();
  std::vector<std::string> command(parser.positionals().begin() + 1, parser.positionals().end());
  if (!command.empty()) {
    process->clear_args();
    for (const std::string& arg : command) process->add_args(arg);
  }
  for (const std::string& env : parser.GetAll("env")) process->add_env(env);
  if (auto cwd = parser.Get("cwd")) process->set_cwd(*cwd);
  return spec;
}

Result<json> Create(ArgParser& parser, Agent& agent) {
  ::grpc::CreateContainerRequest request;
  request.set_container_id(Id(parser));
  SR_ASSIGN_OR_RETURN(*request.mutable_oci(), SpecFromFlags(parser));
  if (auto image = parser.Get("image")) {
    // kata 3.x guest pull: the agent pulls inside CreateContainer.
    ::grpc::Storage* storage = request.add_storages();
    storage->set_driver("image_guest_pull");
    storage->set_source(*image);
    storage->add_driver_options("image_guest_pull={}");
  }
  SR_RETURN_IF_ERROR(
      agent.client->Call(kAgentService, "CreateContainer", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"state", "created"}};
}

Result<json> Start(ArgParser& parser, Agent& agent) {
  ::grpc::StartContainerRequest request;
  request.set_container_id(Id(parser));
  SR_RETURN_IF_ERROR(
      agent.client->Call(kAgentService, "StartContainer", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"state", "running"}};
}

Result<json> Wait(ArgParser& parser, Agent& agent) {
  ::grpc::WaitProcessRequest request;
  request.set_container_id(Id(parser));
  request.set_exec_id(parser.Get("exec-id").value_or(""));
  SR_ASSIGN_OR_RETURN(
      auto response, Call<::grpc::WaitProcessResponse>(*agent.client, kAgentService, "WaitProcess", request));
  return json{{"container_id", Id(parser)}, {"exit_status", response.status()}};
}

// Streams stdout (or stderr) until EOF; text mode writes the bytes through as they come.
Result<json> Logs(ArgParser& parser, Agent& agent) {
  ::grpc::ReadStreamRequest request;
  request.set_container_id(Id(parser));
  request.set_exec_id(parser.Get("exec-id").value_or(""));
  request.set_len(64u << 10);
  const char* method = parser.Bool("stderr") ? "ReadStderr" : "ReadStdout";
  std::string all;
  while (true) {
    SR_ASSIGN_OR_RETURN(auto chunk,
                        Call<::grpc::ReadStreamResponse>(*agent.client, kAgentService, method, request));
    if (chunk.data().empty()) break;
    if (parser.Bool("json")) {
      all += chunk.data();
    } else {
      std::cout.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size())).flush();
    }
  }
  return json{{"container_id", Id(parser)}, {"data", all}};
}

// Runs a command in a running container and relays it (ctl_exec.h); "exit_status" is the
// process's, and ctl's own exit code. --detach only starts it (then logs/wait --exec-id).
Result<json> Exec(ArgParser& parser, Agent& agent) {
  ::grpc::ExecProcessRequest request;
  request.set_container_id(Id(parser));
  std::string exec_id = parser.Get("exec-id").value_or("");
  if (exec_id.empty()) {
    std::array<std::uint8_t, 6> random{};
    RandomBytes(random);
    exec_id = "exec-" + HexEncode(random);
  }
  request.set_exec_id(exec_id);
  for (auto it = parser.positionals().begin() + 1; it != parser.positionals().end(); ++it) {
    request.mutable_process()->add_args(*it);
  }
  if (request.process().args_size() == 0) return InvalidArgument("exec needs a command after --");
  if (auto cwd = parser.Get("cwd")) request.mutable_process()->set_cwd(*cwd);
  for (const std::string& env : parser.GetAll("env")) request.mutable_process()->add_env(env);
  if (parser.Bool("tty")) {
    request.mutable_process()->set_terminal(true);
    // The size of the terminal ctl runs in, when it runs in one.
    winsize size{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_row != 0 && size.ws_col != 0) {
      request.mutable_process()->mutable_consolesize()->set_height(size.ws_row);
      request.mutable_process()->mutable_consolesize()->set_width(size.ws_col);
    }
  }
  json out{{"container_id", Id(parser)}, {"exec_id", exec_id}};
  if (parser.Bool("detach")) {
    SR_RETURN_IF_ERROR(
        agent.client->Call(kAgentService, "ExecProcess", request.SerializeAsString()).status());
    return out;
  }
  SR_ASSIGN_OR_RETURN(out["exit_status"], ExecAndRelay(agent.endpoint, request, parser.Bool("interactive")));
  return out;
}

// Every container the agent holds (ListContainers, a sealroot extension: design/api.md).
Result<json> Ps(ArgParser&, Agent& agent) {
  SR_ASSIGN_OR_RETURN(auto response,
                      Call<::grpc::ListContainersResponse>(*agent.client, kAgentService, "ListContainers",
                                                           ::grpc::ListContainersRequest()));
  json containers = json::array();
  for (const ::grpc::ContainerStatus& c : response.containers()) {
    json entry{{"container_id", c.container_id()}, {"image", c.image()}, {"state", c.state()}};
    entry["exit_status"] = c.exited() ? json(c.exit_status()) : json(nullptr);
    entry["execs"] = c.execs();
    containers.push_back(std::move(entry));
  }
  return json{{"containers", containers}};
}

Result<json> Resize(ArgParser& parser, Agent& agent) {
  ::grpc::TtyWinResizeRequest request;
  request.set_container_id(Id(parser));
  request.set_exec_id(parser.Get("exec-id").value_or(""));
  std::uint32_t rows = 0, columns = 0;
  const std::string rows_text = parser.Get("rows").value_or(""),
                    columns_text = parser.Get("columns").value_or("");
  auto parse = [](const std::string& text, std::uint32_t& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && !text.empty();
  };
  if (!parse(rows_text, rows) || !parse(columns_text, columns))
    return InvalidArgument("resize needs --rows and --columns");
  request.set_row(rows);
  request.set_column(columns);
  SR_RETURN_IF_ERROR(agent.client->Call(kAgentService, "TtyWinResize", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"rows", rows}, {"columns", columns}};
}

Result<json> Remove(ArgParser& parser, Agent& agent) {
  ::grpc::RemoveContainerRequest request;
  request.set_container_id(Id(parser));
  SR_RETURN_IF_ERROR(
      agent.client->Call(kAgentService, "RemoveContainer", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"removed", true}};
}

Result<json> Health(ArgParser&, Agent& agent) {
  SR_ASSIGN_OR_RETURN(auto health, Call<::grpc::HealthCheckResponse>(*agent.client, "grpc.Health", "Check",
                                                                     ::grpc::CheckRequest()));
  return json{{"status", ::grpc::HealthCheckResponse::ServingStatus_Name(health.status())}};
}

Result<json> AgentStatus(ArgParser& parser, Agent& agent) {
  SR_ASSIGN_OR_RETURN(json out, Health(parser, agent));
  SR_ASSIGN_OR_RETURN(auto version, Call<::grpc::VersionCheckResponse>(*agent.client, "grpc.Health",
                                                                       "Version", ::grpc::CheckRequest()));
  out["agent_version"] = version.agent_version();
  out["api_version"] = version.grpc_version();
  return out;
}

constexpr Subcommand kSubcommands[] = {
    {"pull", "IMAGE", "pull, verify, decrypt and seal an image for a container", Pull},
    {"create", "ID [-- COMMAND...]", "create a container (from a pulled image, or --image to pull now)",
     Create},
    {"start", "ID", "start a created container", Start},
    {"wait", "ID", "wait for a container's (or --exec-id's) exit status", Wait},
    {"logs", "ID", "print a container's stdout (or --stderr) until it closes", Logs},
    {"exec", "ID -- COMMAND...",
     "run a command in a container (if the agent's policy allows it); exits with its status", Exec},
    {"ps", "", "list the containers: image, state, exit status", Ps},
    {"resize", "ID", "set the terminal size of a container's (or --exec-id's) process", Resize},
    {"rm", "ID", "remove a container, its upper layer and any image only it used", Remove},
    {"status", "", "show the agent's health and version", AgentStatus},
    {"health", "", "check the agent's health", Health},
};

void AddSubcommandFlags(ArgParser& parser, std::string_view name) {
  cli::AddCommonFlags(parser);
  parser.Option(
      "address", "ADDR",
      std::string("agent ttrpc address (default $SEALROOT_AGENT_ADDRESS or ") + kDefaultAddress + ")");
  parser.Option("grpc", "ADDR",
                "talk gRPC to the agent's gRPC endpoint ADDR (unix:///PATH) instead of ttrpc");
  if (name == "pull") {
    parser.Option("container-id", "ID", "the container this image is for (default: derived from IMAGE)");
    parser.Option("creds", "USER:PASS", "registry credentials (visible in /proc: prefer --authfile)");
    parser.Option("authfile", "FILE", "credentials from a containers-auth.json, or a USER:PASS line");
    parser.Option("creds-file", "FILE", "the same as --authfile");
  } else if (name == "create") {
    parser.Option("image", "IMAGE", "pull IMAGE inside CreateContainer (kata image_guest_pull)");
    parser.Option("spec", "FILE", "an OCI runtime spec (config.json), forwarded whole");
    parser.Option("env", "NAME=VALUE", "add an environment variable (repeatable)");
    parser.Option("cwd", "DIR", "working directory");
  } else if (name == "wait" || name == "logs" || name == "exec" || name == "resize") {
    parser.Option("exec-id", "ID", "an exec'd process instead of the container's init");
    if (name == "logs") parser.Flag("stderr", "read stderr instead of stdout");
    if (name == "exec") {
      parser.Flag("tty", "give the process a terminal, sized as ctl's own (-t)");
      parser.Flag("interactive", "forward ctl's stdin to the process (-i); without it, its stdin is closed");
      parser.Flag("detach", "start the process and print its exec id (then logs/wait --exec-id)");
      parser.Option("env", "NAME=VALUE", "add an environment variable (repeatable)");
      parser.Option("cwd", "DIR", "working directory");
    }
    if (name == "resize") {
      parser.Option("rows", "N", "terminal rows");
      parser.Option("columns", "N", "terminal columns");
    }
  }
}

void PrintText(std::string_view name, const json& out) {
  if (name == "logs") return;  // already streamed
  if (name == "pull") {
    // The id is what later commands need (create/start ID); the pinned reference is for people.
    std::cerr << "pulled " << out["image_ref"].get<std::string>() << "\n";
    std::cout << out["container_id"].get<std::string>() << "\n";
  } else if (name == "exec") {
    if (!out.contains("exit_status")) std::cout << out["exec_id"].get<std::string>() << "\n";
  } else if (name == "ps") {
    std::printf("%-24s %-10s %-6s %s\n", "CONTAINER", "STATE", "EXIT", "IMAGE");
    for (const json& c : out["containers"]) {
      std::string exit = c["exit_status"].is_null() ? "-" : std::to_string(c["exit_status"].get<int>());
      std::printf("%-24s %-10s %-6s %s\n", c["container_id"].get<std::string>().c_str(),
                  c["state"].get<std::string>().c_str(), exit.c_str(), c["image"].get<std::string>().c_str());
    }
  } else if (name == "wait") {
    std::cout << out["exit_status"].get<int>() << "\n";
  } else if (name == "health" || name == "status") {
    for (const auto& [key, value] : out.items()) std::cout << key << ": " << value.get<std::string>() << "\n";
  }
}

void PrintUsage(std::ostream& out) {
  out << "Usage: sealroot ctl SUBCOMMAND [OPTIONS] [ARGS]\n\nTalk to an enclave-agent over ttrpc (or gRPC "
         "with "
         "--grpc ADDR).\n\n";
  for (const Subcommand& s : kSubcommands) {
    out << "  " << s.name << std::string(8 - s.name.size(), ' ') << s.summary << "\n";
  }
}

// The subcommand may follow common options ("ctl --address A pull IMAGE"): find the first word
// that is not an option or an option's value, and move it to the front. Short flags before "--"
// become long ones (-t, -i, -ti as ctr and kubectl spell them; ArgParser knows long ones only).
std::vector<std::string> SubcommandFirst(Args args) {
  std::vector<std::string> out;
  bool options = true;
  for (const std::string& arg : args) {
    if (arg == "--") options = false;
    if (options && (arg == "-t" || arg == "-i" || arg == "-ti" || arg == "-it")) {
      if (arg.find('t') != std::string::npos) out.push_back("--tty");
      if (arg.find('i') != std::string::npos) out.push_back("--interactive");
      continue;
    }
    out.push_back(arg);
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == "--") break;
    if (out[i] == "--address" || out[i] == "--grpc" || out[i] == "--log-level") {
      ++i;
      continue;
    }
    if (out[i].starts_with("-")) continue;
    std::rotate(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(i),
                out.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    break;
  }
  return out;
}

}  // namespace

int Ctl(Args raw_args) {
  const std::vector<std::string> reordered = SubcommandFirst(raw_args);
  Args args(reordered);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    PrintUsage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? cli::kExitUsage : cli::kExitOk;
  }
  for (const Subcommand& sub : kSubcommands) {
    if (sub.name != args[0]) continue;
    ArgParser parser("sealroot ctl " + std::string(sub.name), std::string(sub.synopsis),
                     std::string(sub.summary));
    AddSubcommandFlags(parser, sub.name);
    if (auto exit_code = cli::ParseCommandLine(parser, args.subspan(1))) return *exit_code;
    const std::size_t min_positionals = sub.synopsis.empty() ? 0 : 1;
    const bool takes_command = sub.synopsis.find("COMMAND") != std::string_view::npos;
    Status arity = parser.ExpectPositionals(min_positionals, takes_command ? SIZE_MAX : min_positionals);
    if (!arity.ok()) return cli::ReportError(parser, arity);

    Agent agent;
    if (auto grpc = parser.Get("grpc")) {
      if (parser.Has("address"))
        return cli::ReportError(parser, InvalidArgument("give one of --address and --grpc"));
      agent.endpoint = {*grpc, /*grpc=*/true};
    } else {
      const char* env_address = std::getenv("SEALROOT_AGENT_ADDRESS");
      agent.endpoint = {parser.Get("address").value_or(env_address ? env_address : kDefaultAddress)};
    }
    auto client = ConnectAgent(agent.endpoint);
    if (!client.ok()) return cli::ReportError(parser, client.status());
    agent.client = std::move(*client);
    Result<json> out = sub.run(parser, agent);
    if (!out.ok()) return cli::ReportError(parser, out.status());
    if (parser.Bool("json")) {
      std::cout << out->dump() << std::endl;
    } else {
      PrintText(sub.name, *out);
    }
    // exec exits as the process it ran did (a status past 255 — none should be — as 255).
    if (out->contains("exit_status") && sub.name == "exec")
      return std::clamp((*out)["exit_status"].get<int>(), 0, 255);
    return cli::kExitOk;
  }
  std::cerr << "sealroot ctl: unknown subcommand '" << args[0] << "'\n";
  PrintUsage(std::cerr);
  return cli::kExitUsage;
}

}  // namespace sealroot::tool
