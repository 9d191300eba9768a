// StringReader: a Reader (base/reader.h) over a string, for tests that feed sinks, sealers and
// parsers from memory; `piece` caps each Read (short reads, as a pipe or socket gives them).
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <span>
#include <string>

#include "base/reader.h"

namespace sealroot::testing {

class StringReader final : public Reader {
 public:
  explicit StringReader(std::string data, std::size_t piece = std::numeric_limits<std::size_t>::max())
      : data_(std::move(data)), piece_(piece) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    std::size_t n = std::min({out.size(), piece_, data_.size() - pos_});
    std::copy_n(data_.data() + pos_, n, out.data());
    pos_ += n;
    return n;
  }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  std::string data_;
  std::size_t piece_;
  std::size_t pos_ = 0;
};

}  // namespace sealroot::testing
