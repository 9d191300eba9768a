// Conventions shared by every sealroot command (README "Exit codes"):
//   0 success, 1 failure, 2 usage error, 3 verification failed (digest, MAC, signature, policy,
//   tampered store), 4 not found, 130 interrupted.
// Errors go to stderr as "sealroot <command>: error: <message>", or as one JSON object
// {"error":{"code":"DATA_LOSS","message":...}} on stdout with --json.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "base/args.h"
#include "base/status.h"

namespace sealroot::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitVerification = 3;
inline constexpr int kExitNotFound = 4;
inline constexpr int kExitInterrupted = 130;

int ExitCodeFor(const Status& status);

// Adds --help, --log-level LEVEL and --json to a command's parser.
void AddCommonFlags(ArgParser& parser);

// Parses `args` and applies --log-level. Returns an exit code when the command must stop now
// (--help printed, or a usage error reported); std::nullopt when it should run.
std::optional<int> ParseCommandLine(ArgParser& parser, std::span<const std::string> args);

// Reports `status` (text on stderr, or JSON on stdout when --json) and returns its exit code.
int ReportError(const ArgParser& parser, const Status& status);

}  // namespace sealroot::cli
