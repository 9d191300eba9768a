// Typed field readers for the boot spec parser (process_spec.cc, oci_linux.cc): each error is
// kInvalidArgument naming the field, and strings never carry a NUL byte (they end up as C
// strings in execve, mount and sethostname arguments).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sealroot::boot::spec_json {

using nlohmann::json;

inline Status FieldError(std::string_view field, std::string_view what) {
  return InvalidArgument("boot spec: " + std::string(field) + ": " + std::string(what));
}

inline const json* Find(const json& parent, std::string_view key) {
  auto it = parent.find(key);
  return it == parent.end() || it->is_null() ? nullptr : &*it;
}

inline Result<std::string> GetString(const json& parent, std::string_view key, std::string_view field) {
  const json* value = Find(parent, key);
  if (value == nullptr) return std::string();
  if (!value->is_string()) return FieldError(field, "must be a string");
  std::string out = value->get<std::string>();
  if (out.find('\0') != std::string::npos) return FieldError(field, "contains a NUL byte");
  return out;
}

inline Result<std::vector<std::string>> GetStrings(const json& parent, std::string_view key,
                                                   std::string_view field) {
  std::vector<std::string> out;
  const json* value = Find(parent, key);
  if (value == nullptr) return out;
  if (!value->is_array()) return FieldError(field, "must be an array of strings");
  for (const json& item : *value) {
    if (!item.is_string()) return FieldError(field, "must be an array of strings");
    std::string text = item.get<std::string>();
    if (text.find('\0') != std::string::npos) return FieldError(field, "contains a NUL byte");
    out.push_back(std::move(text));
  }
  return out;
}

template <typename T>
Result<T> GetUnsigned(const json& parent, std::string_view key, std::string_view field) {
  const json* value = Find(parent, key);
  if (value == nullptr) return T{0};
  if (!value->is_number_unsigned()) return FieldError(field, "must be a non-negative integer");
  auto number = value->get<std::uint64_t>();
  if (number > std::numeric_limits<T>::max()) return FieldError(field, "out of range");
  return static_cast<T>(number);
}

inline Result<bool> GetBool(const json& parent, std::string_view key, std::string_view field) {
  const json* value = Find(parent, key);
  if (value == nullptr) return false;
  if (!value->is_boolean()) return FieldError(field, "must be a boolean");
  return value->get<bool>();
}

}  // namespace sealroot::boot::spec_json
