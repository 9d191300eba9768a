// A small command-line parser for every sealroot program: options may come before or after
// positionals, as `--name value` or `--name=value`; boolean flags accept `--name`,
// `--name=true|false`; `--` ends the options. Unknown options are errors.
//
//   ArgParser p("sealroot unpack", "SOURCE DEST", "Unpack an image into an OCI bundle.");
//   p.Flag("rootless", "do not chown or mknod; record ownership");
//   p.Option("creds", "USER:PASS", "registry credentials");
//   SR_RETURN_IF_ERROR(p.Parse(args));
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sealroot {

class ArgParser {
 public:
  ArgParser(std::string command, std::string positional_synopsis, std::string summary);

  // A boolean flag. `default_value` is what Bool() returns when the flag is absent.
  void Flag(std::string name, std::string help, bool default_value = false);
  // An option taking a value; may be given several times (GetAll returns them in order).
  void Option(std::string name, std::string value_name, std::string help);

  // Parses arguments (argv without the program/command names).
  Status Parse(std::span<const std::string> args);
  Status Parse(int argc, char** argv, int first = 1);

  bool Bool(std::string_view name) const;
  bool Has(std::string_view name) const;                        // given on the command line
  std::optional<std::string> Get(std::string_view name) const;  // last occurrence
  std::vector<std::string> GetAll(std::string_view name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

  // Checks the positional count; the error names the expected synopsis.
  Status ExpectPositionals(std::size_t min, std::size_t max) const;

  std::string Help() const;
  const std::string& command() const { return command_; }

 private:
  struct Spec {
    bool takes_value = false;
    bool default_value = false;
    std::string value_name;
    std::string help;
  };
  std::string command_, synopsis_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec, std::less<>> specs_;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::vector<std::string> positionals_;
};

}  // namespace sealroot
