// The TOML that containers' configuration files use, parsed into JSON values: tables and
// arrays of tables (`[a.b]`, `[[a.b]]`), dotted and quoted keys, basic and literal strings
// (single- and multi-line), booleans, integers, floats, arrays (across lines) and inline
// tables. Dates are not supported (no containers file uses them). Private to image/.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "base/status.h"

namespace sealroot::image::internal {

// kInvalidArgument "ORIGIN:LINE: what" on a syntax error or a key defined twice.
Result<nlohmann::json> ParseToml(std::string_view text, std::string_view origin);

}  // namespace sealroot::image::internal
