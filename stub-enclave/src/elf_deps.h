// The shared libraries an executable loads (private to stub-enclave).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace sealroot::stub_enclave::internal {

// PT_INTERP of the ELF at `fd` ("" for a static executable). Refuses non-ELF64 files.
Result<std::string> ElfInterpreter(int fd);

// Runs the system loader `interpreter` (which must be the launcher's own) with --list on
// `path`, with an empty environment (LD_* variables cannot redirect it), and returns the
// absolute paths of the libraries it maps, in load order.
Result<std::vector<std::string>> ListLibraries(const std::string& interpreter, const std::string& path);

}  // namespace sealroot::stub_enclave::internal
