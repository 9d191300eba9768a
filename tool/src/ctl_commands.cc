// `sealroot ctl`: a client of the enclave-agent API for people and scripts. Every subcommand is
// one or a few ttrpc calls (the same API a shim uses), printed as text or, with --json, as one
// JSON object on stdout.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent.pb.h"
#include "agent/spec/oci_spec.h"
#include "base/cli.h"
#include "base/file.h"
#include "health.pb.h"
#include "image.pb.h"
#include "rpc/ttrpc.h"
#include "tool/src/commands.h"

namespace sealroot::tool {
namespace {

using nlohmann::json;
using rpc::ListenAddress;

constexpr char kDefaultAddress[] = "unix:///run/sealroot/agent.sock";
constexpr char kAgentService[] = "grpc.AgentService";

struct Subcommand {
  std::string_view name;
  std::string_view synopsis;
  std::string_view summary;
  Result<json> (*run)(ArgParser& parser, rpc::ttrpc::Client& client);
};

// One unary call: serialize, call, parse.
template <typename Response, typename Request>
Result<Response> Call(rpc::ttrpc::Client& client, std::string_view service, std::string_view method,
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

Result<json> Pull(ArgParser& parser, rpc::ttrpc::Client& client) {
  ::grpc::PullImageRequest request;
  request.set_image(parser.positionals().at(0));
  request.set_container_id(parser.Get("container-id").value_or(""));
  if (auto file = parser.Get("creds-file")) {
    SR_ASSIGN_OR_RETURN(std::string creds, ReadFile(*file, 4096));
    while (!creds.empty() && (creds.back() == '\n' || creds.back() == '\r')) creds.pop_back();
    request.set_source_creds(std::move(creds));
  } else if (auto creds = parser.Get("creds")) {
    request.set_source_creds(*creds);
  }
  SR_ASSIGN_OR_RETURN(auto response,
                      Call<::grpc::PullImageResponse>(client, "grpc.Image", "PullImage", request));
  return json{{"image_ref", response.image_ref()}, {"container_id", request.container_id()}};
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

Result<json> Create(ArgParser& parser, rpc::ttrpc::Client& client) {
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
  SR_RETURN_IF_ERROR(client.Call(kAgentService, "CreateContainer", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"state", "created"}};
}

Result<json> Start(ArgParser& parser, rpc::ttrpc::Client& client) {
  ::grpc::StartContainerRequest request;
  request.set_container_id(Id(parser));
  SR_RETURN_IF_ERROR(client.Call(kAgentService, "StartContainer", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"state", "running"}};
}

Result<json> Wait(ArgParser& parser, rpc::ttrpc::Client& client) {
  ::grpc::WaitProcessRequest request;
  request.set_container_id(Id(parser));
  request.set_exec_id(parser.Get("exec-id").value_or(""));
  SR_ASSIGN_OR_RETURN(auto response,
                      Call<::grpc::WaitProcessResponse>(client, kAgentService, "WaitProcess", request));
  return json{{"container_id", Id(parser)}, {"exit_status", response.status()}};
}

// Streams stdout (or stderr) until EOF; text mode writes the bytes through as they come.
Result<json> Logs(ArgParser& parser, rpc::ttrpc::Client& client) {
  ::grpc::ReadStreamRequest request;
  request.set_container_id(Id(parser));
  request.set_exec_id(parser.Get("exec-id").value_or(""));
  request.set_len(64u << 10);
  const char* method = parser.Bool("stderr") ? "ReadStderr" : "ReadStdout";
  std::string all;
  while (true) {
    SR_ASSIGN_OR_RETURN(auto chunk, Call<::grpc::ReadStreamResponse>(client, kAgentService, method, request));
    if (chunk.data().empty()) break;
    if (parser.Bool("json")) {
      all += chunk.data();
    } else {
      std::cout.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size())).flush();
    }
  }
  return json{{"container_id", Id(parser)}, {"data", all}};
}

Result<json> Exec(ArgParser& parser, rpc::ttrpc::Client& client) {
  ::grpc::ExecProcessRequest request;
  request.set_container_id(Id(parser));
  auto exec_id = parser.Get("exec-id");
  if (!exec_id) return InvalidArgument("exec needs --exec-id");
  request.set_exec_id(*exec_id);
  for (auto it = parser.positionals().begin() + 1; it != parser.positionals().end(); ++it) {
    request.mutable_process()->add_args(*it);
  }
  if (request.process().args_size() == 0) return InvalidArgument("exec needs a command after --");
  if (parser.Bool("tty")) {
    request.mutable_process()->set_terminal(true);
    // The size of the terminal ctl runs in, when it runs in one.
    winsize size{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_row != 0 && size.ws_col != 0) {
      request.mutable_process()->mutable_consolesize()->set_height(size.ws_row);
      request.mutable_process()->mutable_consolesize()->set_width(size.ws_col);
    }
  }
  SR_RETURN_IF_ERROR(client.Call(kAgentService, "ExecProcess", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"exec_id", *exec_id}};
}

Result<json> Resize(ArgParser& parser, rpc::ttrpc::Client& client) {
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
  SR_RETURN_IF_ERROR(client.Call(kAgentService, "TtyWinResize", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"rows", rows}, {"columns", columns}};
}

Result<json> Remove(ArgParser& parser, rpc::ttrpc::Client& client) {
  ::grpc::RemoveContainerRequest request;
  request.set_container_id(Id(parser));
  SR_RETURN_IF_ERROR(client.Call(kAgentService, "RemoveContainer", request.SerializeAsString()).status());
  return json{{"container_id", Id(parser)}, {"removed", true}};
}

Result<json> Health(ArgParser&, rpc::ttrpc::Client& client) {
  SR_ASSIGN_OR_RETURN(
      auto health, Call<::grpc::HealthCheckResponse>(client, "grpc.Health", "Check", ::grpc::CheckRequest()));
  return json{{"status", ::grpc::HealthCheckResponse::ServingStatus_Name(health.status())}};
}

Result<json> AgentStatus(ArgParser& parser, rpc::ttrpc::Client& client) {
  SR_ASSIGN_OR_RETURN(json out, Health(parser, client));
  SR_ASSIGN_OR_RETURN(auto version, Call<::grpc::VersionCheckResponse>(client, "grpc.Health", "Version",
                                                                       ::grpc::CheckRequest()));
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
    {"exec", "ID -- COMMAND...", "run a command in a container (if the agent's policy allows it)", Exec},
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
  if (name == "pull") {
    parser.Option("container-id", "ID", "the container this image is for");
    parser.Option("creds", "USER:PASS", "registry credentials (visible in /proc: prefer --creds-file)");
    parser.Option("creds-file", "FILE", "read USER:PASS from FILE");
  } else if (name == "create") {
    parser.Option("image", "IMAGE", "pull IMAGE inside CreateContainer (kata image_guest_pull)");
    parser.Option("spec", "FILE", "an OCI runtime spec (config.json), forwarded whole");
    parser.Option("env", "NAME=VALUE", "add an environment variable (repeatable)");
    parser.Option("cwd", "DIR", "working directory");
  } else if (name == "wait" || name == "logs" || name == "exec" || name == "resize") {
    parser.Option("exec-id", "ID", "an exec'd process instead of the container's init");
    if (name == "logs") parser.Flag("stderr", "read stderr instead of stdout");
    if (name == "exec") parser.Flag("tty", "give the process a terminal (sized as ctl's own)");
    if (name == "resize") {
      parser.Option("rows", "N", "terminal rows");
      parser.Option("columns", "N", "terminal columns");
    }
  }
}

void PrintText(std::string_view name, const json& out) {
  if (name == "logs") return;  // already streamed
  if (name == "pull") {
    std::cout << out["image_ref"].get<std::string>() << "\n";
  } else if (name == "wait") {
    std::cout << out["exit_status"].get<int>() << "\n";
  } else if (name == "health" || name == "status") {
    for (const auto& [key, value] : out.items()) std::cout << key << ": " << value.get<std::string>() << "\n";
  }
}

void PrintUsage(std::ostream& out) {
  out << "Usage: sealroot ctl SUBCOMMAND [OPTIONS] [ARGS]\n\nTalk to an enclave-agent over ttrpc.\n\n";
  for (const Subcommand& s : kSubcommands) {
    out << "  " << s.name << std::string(8 - s.name.size(), ' ') << s.summary << "\n";
  }
}

// The subcommand may follow common options ("ctl --address A pull IMAGE"): find the first word
// that is not an option or an option's value, and move it to the front.
std::vector<std::string> SubcommandFirst(Args args) {
  std::vector<std::string> out(args.begin(), args.end());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == "--address" || out[i] == "--log-level") {
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

    const char* env_address = std::getenv("SEALROOT_AGENT_ADDRESS");
    std::string address_text = parser.Get("address").value_or(env_address ? env_address : kDefaultAddress);
    Result<ListenAddress> address = ListenAddress::Parse(address_text);
    if (!address.ok()) return cli::ReportError(parser, address.status());
    auto client = rpc::ttrpc::Client::Connect(*address);
    if (!client.ok()) return cli::ReportError(parser, client.status());
    Result<json> out = sub.run(parser, **client);
    if (!out.ok()) return cli::ReportError(parser, out.status());
    if (parser.Bool("json")) {
      std::cout << out->dump() << std::endl;
    } else {
      PrintText(sub.name, *out);
    }
    return cli::kExitOk;
  }
  std::cerr << "sealroot ctl: unknown subcommand '" << args[0] << "'\n";
  PrintUsage(std::cerr);
  return cli::kExitUsage;
}

}  // namespace sealroot::tool
