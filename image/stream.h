// The stream stages of the layer pipeline (base/reader.h): readers over files, digest
// verification with a size cap, and decompression chosen by media type. Each stage owns one
// bounded buffer, so a chain streams any layer size in constant memory.
//
// Thread-safety: each reader is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/reader.h"
#include "base/status.h"
#include "image/digest.h"

namespace sealroot::image {

// Reads an fd until EOF.
std::unique_ptr<Reader> MakeFdReader(UniqueFd fd);

// Passes `inner` through, hashing it. Fails with kDataLoss naming `label` (e.g. "layer 2 blob
// sha256:ab..", "layer 2 DiffID") when more than `size` bytes arrive, or at end of stream when
// fewer arrived or the sha256 differs from `expected`. size < 0: no size check.
std::unique_ptr<Reader> MakeVerifyingReader(std::unique_ptr<Reader> inner, Digest expected, std::int64_t size,
                                            std::string label);

enum class Compression { kNone, kGzip, kZstd };
// From a layer media type (OCI and Docker, with the "+encrypted" suffix already removed);
// kInvalidArgument for types that are not layers we can read.
Result<Compression> CompressionOfLayer(std::string_view media_type);

enum class GzipBackend { kDefault, kZlib, kIsal };
bool HaveIsal();

// Decompresses `compressed`. Fails with kResourceExhausted once more than `max_output` bytes
// come out (decompression bombs), with kDataLoss on corrupt input or a bad checksum.
Result<std::unique_ptr<Reader>> MakeDecompressor(Compression compression, std::unique_ptr<Reader> compressed,
                                                 std::uint64_t max_output,
                                                 GzipBackend backend = GzipBackend::kDefault);

// Runs `inner` (and every stage below it) on a thread of its own, handing over chunks of
// `chunk_size` bytes through a queue of at most `max_chunks`: memory stays bounded at
// chunk_size * (max_chunks + 2). Errors reach the reader once the chunks before them are read.
std::unique_ptr<Reader> MakeReadAhead(std::unique_ptr<Reader> inner, std::size_t chunk_size,
                                      std::size_t max_chunks = 4);

// Reads `reader` to the end into `out` (refusing more than max_size bytes) — for manifests and
// configs, never for layers.
Result<std::string> ReadAll(Reader& reader, std::size_t max_size);
// Reads and discards to the end (so a verifying reader sees the whole stream).
Status Drain(Reader& reader);

}  // namespace sealroot::image
