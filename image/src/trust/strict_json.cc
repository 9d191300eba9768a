#include "image/src/trust/strict_json.h"

#include <set>
#include <vector>

namespace sealroot::image::trust {

using nlohmann::json;

Result<json> ParseStrictJson(std::string_view text, std::string_view what) {
  std::vector<std::set<std::string>> open_objects;
  bool duplicate = false;
  std::string duplicate_name;
  json::parser_callback_t check = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = true;
          duplicate_name = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json j = json::parse(text, check, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(std::string(what) + ": not valid JSON");
  if (duplicate)
    return InvalidArgument(std::string(what) + ": member \"" + duplicate_name + "\" appears twice");
  return j;
}

Status CheckMembers(const json& value, std::initializer_list<std::string_view> allowed,
                    std::string_view what) {
  if (!value.is_object()) return InvalidArgument(std::string(what) + ": not a JSON object");
  for (const auto& [name, member] : value.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == name;
    if (!known) return InvalidArgument(std::string(what) + ": unknown field \"" + name + "\"");
  }
  return OkStatus();
}

Result<std::string> StringMember(const json& obj, std::string_view name, std::string_view what,
                                 bool required) {
  auto it = obj.find(name);
  if (it == obj.end()) {
    if (required) return InvalidArgument(std::string(what) + ": missing \"" + std::string(name) + "\"");
    return std::string();
  }
  if (!it->is_string())
    return InvalidArgument(std::string(what) + ": \"" + std::string(name) + "\" is not a string");
  return it->get<std::string>();
}

}  // namespace sealroot::image::trust
