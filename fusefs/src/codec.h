// Little-endian serialization for sealfs records. The reader never trusts lengths: every read
// is bounds-checked and a short or malformed buffer is an error, not a crash.
//
// Thread-safety: value types; not synchronized.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sealroot::fusefs {

class ByteWriter {
 public:
  void U8(std::uint8_t v) { out_.push_back(v); }
  void U16(std::uint16_t v) { Int(v, 2); }
  void U32(std::uint32_t v) { Int(v, 4); }
  void U64(std::uint64_t v) { Int(v, 8); }
  void I64(std::int64_t v) { Int(static_cast<std::uint64_t>(v), 8); }
  void Bytes(std::span<const std::uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  // A u32 length followed by the bytes.
  void Blob(std::string_view s) {
    U32(static_cast<std::uint32_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  std::vector<std::uint8_t>& bytes() { return out_; }

 private:
  void Int(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t> out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> in) : in_(in) {}

  bool U8(std::uint8_t& v) { return Int(v, 1); }
  bool U16(std::uint16_t& v) { return Int(v, 2); }
  bool U32(std::uint32_t& v) { return Int(v, 4); }
  bool U64(std::uint64_t& v) { return Int(v, 8); }
  bool I64(std::int64_t& v) {
    std::uint64_t u = 0;
    if (!Int(u, 8)) return false;
    v = static_cast<std::int64_t>(u);
    return true;
  }
  bool Bytes(std::span<std::uint8_t> out) {
    if (in_.size() - pos_ < out.size()) return false;
    std::memcpy(out.data(), in_.data() + pos_, out.size());
    pos_ += out.size();
    return true;
  }
  // A u32 length followed by at most `max` bytes.
  bool Blob(std::string& s, std::size_t max) {
    std::uint32_t n = 0;
    if (!U32(n) || n > max || in_.size() - pos_ < n) return false;
    s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }
  std::size_t remaining() const { return in_.size() - pos_; }

 private:
  template <typename T>
  bool Int(T& v, int n) {
    if (in_.size() - pos_ < static_cast<std::size_t>(n)) return false;
    std::uint64_t r = 0;
    for (int i = 0; i < n; ++i) r |= static_cast<std::uint64_t>(in_[pos_ + i]) << (8 * i);
    v = static_cast<T>(r);
    pos_ += n;
    return true;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

}  // namespace sealroot::fusefs
