// Test helpers for running real programs and servers: temp dirs, commands with captured
// output, free loopback ports, and paths to the project's built executables.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace sealroot::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction, or when
// the test binary exits if it is never destroyed (a fixture's material kept for every test).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0; }
};

struct CommandOptions {
  std::map<std::string, std::string> env;  // added to (or overriding) the inherited environment
  std::string stdin_data;
  std::string cwd;
  std::chrono::seconds timeout{300};
};

// Runs argv[0] (looked up in PATH) and waits for it. Output is captured.
CommandResult Run(const std::vector<std::string>& argv, const CommandOptions& options = {});
// Runs `sh -c script`.
CommandResult Shell(const std::string& script, const CommandOptions& options = {});

// A running background process, killed (SIGTERM, then SIGKILL) and reaped on destruction.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const std::string& log_path,
                    const std::map<std::string, std::string>& env = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `sig` and waits for exit; returns the exit code (128+N for signals).
  int Stop(int sig = 15);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
// Waits until something accepts TCP connections on 127.0.0.1:port.
bool WaitForPort(int port, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Path of a project executable in the build tree (sealroot, enclave-agent, sealroot-boot...).
std::string BuiltProgram(const std::string& name);
// The source tree (for fixtures under tests/).
std::string SourceDir();

}  // namespace sealroot::testing
