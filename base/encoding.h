// Hex and base64 (standard and URL-safe) encodings. Decoders reject malformed input.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sealroot {

std::string HexEncode(std::span<const std::uint8_t> bytes);  // lowercase
Result<std::vector<std::uint8_t>> HexDecode(std::string_view hex);
// True if `s` is exactly `size` lowercase hex characters.
bool IsLowerHex(std::string_view s, std::size_t size);

std::string Base64Encode(std::span<const std::uint8_t> bytes);  // standard, padded
// Accepts standard padded/unpadded base64; rejects anything else.
Result<std::vector<std::uint8_t>> Base64Decode(std::string_view text);
// URL-safe alphabet, no padding (JOSE).
std::string Base64UrlEncode(std::span<const std::uint8_t> bytes);
Result<std::vector<std::uint8_t>> Base64UrlDecode(std::string_view text);

}  // namespace sealroot
