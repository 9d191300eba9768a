// The tar walk: reads a layer's uncompressed tar (libarchive) and hands each entry, with its
// path cleaned and whiteout names turned into whiteout/opaque entries, to a LayerSink. The walk
// stays small; every per-entry rule lives in the sink. Private to image/.
#pragma once

#include <string>
#include <string_view>

#include "base/reader.h"
#include "base/status.h"
#include "image/sink.h"

struct archive;  // libarchive

namespace sealroot::image::internal {

// libarchive's message for the last error on `a`, or "unknown libarchive error": some failures
// (a stream cut inside a GNU long-name header) set none, and archive_error_string is then null.
std::string ArchiveError(archive* a);

// Cleans a tar member name into the Entry::path form: no leading "./", no trailing '/', no
// empty or "." components. Absolute names and ".." components are refused (kInvalidArgument),
// since no well-formed layer has them and they only serve path escapes.
Result<std::string> CleanEntryPath(std::string_view name);

// Walks the tar in `tar` to its end, then drains `tar` (so a digest stage behind it covers the
// trailing padding). Errors name the entry.
Status WalkTar(Reader& tar, LayerSink& sink);

}  // namespace sealroot::image::internal
