// Strict JSON for trust inputs (policies, signature payloads): duplicate object members are
// errors (two parsers could otherwise disagree on which one counts), and objects are checked
// against the exact set of members they may hold.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sealroot::image::trust {

Result<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view what);

// kInvalidArgument unless `value` is an object whose members are all in `allowed`.
Status CheckMembers(const nlohmann::json& value, std::initializer_list<std::string_view> allowed,
                    std::string_view what);

// The string member `name` of `obj`; kInvalidArgument if absent (when required) or not a string.
Result<std::string> StringMember(const nlohmann::json& obj, std::string_view name, std::string_view what,
                                 bool required = true);

}  // namespace sealroot::image::trust
