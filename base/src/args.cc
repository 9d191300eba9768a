#include "base/args.h"

#include <sstream>

namespace sealroot {

ArgParser::ArgParser(std::string command, std::string positional_synopsis, std::string summary)
    : command_(std::move(command)), synopsis_(std::move(positional_synopsis)), summary_(std::move(summary)) {}

void ArgParser::Flag(std::string name, std::string help, bool default_value) {
  order_.push_back(name);
  specs_[std::move(name)] = Spec{false, default_value, "", std::move(help)};
}

void ArgParser::Option(std::string name, std::string value_name, std::string help) {
  order_.push_back(name);
  specs_[std::move(name)] = Spec{true, false, std::move(value_name), std::move(help)};
}

Status ArgParser::Parse(int argc, char** argv, int first) {
  std::vector<std::string> args;
  for (int i = first; i < argc; ++i) args.emplace_back(argv[i]);
  return Parse(args);
}

Status ArgParser::Parse(std::span<const std::string> args) {
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      positionals_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    auto spec = specs_.find(name);
    if (spec == specs_.end())
      return InvalidArgument("unknown option --" + name + " (see " + command_ + " --help)");
    if (!spec->second.takes_value) {
      std::string value = inline_value.value_or("true");
      if (value != "true" && value != "false") {
        return InvalidArgument("option --" + name + " takes true or false, not '" + value + "'");
      }
      values_[name].push_back(value);
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size())
        return InvalidArgument("option --" + name + " needs a value (" + spec->second.value_name + ")");
      inline_value = args[++i];
    }
    values_[name].push_back(*inline_value);
  }
  return OkStatus();
}

bool ArgParser::Bool(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    auto spec = specs_.find(name);
    return spec != specs_.end() && spec->second.default_value;
  }
  return it->second.back() == "true";
}

bool ArgParser::Has(std::string_view name) const {
  return values_.count(name) != 0;
}

std::optional<std::string> ArgParser::Get(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ArgParser::GetAll(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

Status ArgParser::ExpectPositionals(std::size_t min, std::size_t max) const {
  if (positionals_.size() < min || positionals_.size() > max) {
    return InvalidArgument("usage: " + command_ + " [OPTIONS] " + synopsis_);
  }
  return OkStatus();
}

std::string ArgParser::Help() const {
  std::ostringstream out;
  out << "Usage: " << command_ << " [OPTIONS] " << synopsis_ << "\n\n" << summary_ << "\n\nOptions:\n";
  for (const std::string& name : order_) {
    const Spec& spec = specs_.at(name);
    std::string left = "  --" + name + (spec.takes_value ? " " + spec.value_name : "");
    out << left;
    out << std::string(left.size() < 34 ? 34 - left.size() : 1, ' ') << spec.help << "\n";
  }
  return out.str();
}

}  // namespace sealroot
