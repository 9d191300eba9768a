// Path-safe access inside an untrusted directory tree (an image root being built or read):
// every lookup is relative to the root's directory fd and confined by openat2(RESOLVE_IN_ROOT),
// so ".." and symlinks — absolute or relative — cannot leave the root (CVE-2018-15664 class).
// Private to image/.
#pragma once

#include <fcntl.h>

#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/status.h"

namespace sealroot::image::internal {

// openat2(root_fd, path, flags, mode) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (plus
// `extra_resolve`). `path` is relative to the root ("" or "." is the root itself).
Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, int flags, mode_t mode = 0,
                            unsigned long long extra_resolve = 0);

// Reads a regular file inside the root, at most `max_size` bytes (kResourceExhausted beyond).
Result<std::string> ReadFileInRoot(int root_fd, std::string_view path, std::size_t max_size);

// Splits a cleaned relative path "a/b/c" into its parent "a/b" and last component "c".
std::pair<std::string_view, std::string_view> SplitParent(std::string_view path);

}  // namespace sealroot::image::internal
