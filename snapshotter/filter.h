// containerd's filter syntax, as its List/Walk calls send it: each string is a conjunction of
// selectors separated by ',' (`kind==committed,labels."containerd.io/snapshot.ref"==sha256:ab…`,
// `parent=="k8s.io/3/x"`, `name~=^ext`, `labels.x` for presence); the strings of a list are
// alternatives. Field paths are dot-separated, each part a name or a double-quoted string;
// values are bare (up to the next ',') or double-quoted with Go escapes.
//
// Thread-safety: a value type.
#pragma once

#include <functional>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace sealroot::snapshotter {

class Filter {
 public:
  // The value of a field path, or nullopt when the object has no such field.
  using Fields = std::function<std::optional<std::string>(std::span<const std::string> path)>;

  // An empty list matches everything.
  static Result<Filter> Parse(std::span<const std::string> filters);

  bool Match(const Fields& fields) const;

 private:
  struct Selector {
    std::vector<std::string> path;
    enum class Op { kPresent, kEqual, kNotEqual, kMatches } op = Op::kPresent;
    std::string value;
    std::optional<std::regex> regex;
  };
  std::vector<std::vector<Selector>> alternatives_;
};

}  // namespace sealroot::snapshotter
