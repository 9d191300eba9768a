#include "base/cli.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace sealroot::cli {

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
      return kExitUsage;
    case Code::kDataLoss:
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
      return kExitVerification;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kCancelled:
      return kExitInterrupted;
    default:
      return kExitFailure;
  }
}

void AddCommonFlags(ArgParser& parser) {
  parser.Flag("help", "show this help and exit");
  parser.Option("log-level", "LEVEL", "debug, info, warning (default), error or off");
  parser.Flag("json", "print machine-readable JSON on stdout");
}

std::optional<int> ParseCommandLine(ArgParser& parser, std::span<const std::string> args) {
  Status status = parser.Parse(args);
  bool short_help = false;  // -h, as every other tool spells --help
  for (const std::string& arg : args) {
    if (arg == "--") break;
    short_help = short_help || arg == "-h";
  }
  if (parser.Bool("help") || short_help) {
    std::cout << parser.Help();
    return kExitOk;
  }
  if (status.ok()) {
    if (auto level = parser.Get("log-level")) {
      auto parsed = log::ParseLevel(*level);
      if (!parsed.ok()) {
        status = parsed.status();
      } else {
        log::SetLevel(*parsed);
      }
    }
  }
  if (!status.ok()) return ReportError(parser, status);
  return std::nullopt;
}

int ReportError(const ArgParser& parser, const Status& status) {
  // With --json the error is also a document on stdout, for the program reading it; the line on
  // stderr stays, for the person watching.
  if (parser.Bool("json")) {
    nlohmann::json out = {
        {"error", {{"code", std::string(CodeName(status.code()))}, {"message", status.message()}}}};
    std::cout << out.dump() << std::endl;
  }
  std::cerr << parser.command() << ": error: " << status.message() << std::endl;
  return ExitCodeFor(status);
}

}  // namespace sealroot::cli
