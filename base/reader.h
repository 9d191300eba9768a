// Reader: the one byte-stream interface. Every stage of the image pipeline is a Reader pulling
// from the stage before it (registry/file bytes -> digest tee -> decrypt -> decompress -> DiffID
// tee -> tar walk), and the sealed store's writer pulls a file's content from one. Pull-based
// chains keep memory bounded: each stage owns at most one buffer.
//
// Thread-safety: one thread at a time, unless an implementation says otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/status.h"

namespace sealroot {

class Reader {
 public:
  virtual ~Reader() = default;
  // Reads up to out.size() bytes into `out`. Returns the count; 0 means end of stream. After an
  // error the reader is unusable; errors say what failed (e.g. "blob sha256:..: digest mismatch").
  virtual Result<std::size_t> Read(std::span<std::uint8_t> out) = 0;
};

}  // namespace sealroot
