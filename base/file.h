// Small filesystem helpers shared by every part. Paths are trusted here (they come from the
// operator, not from images); code that handles untrusted names uses dir-fd-relative calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/secret.h"
#include "base/status.h"

namespace sealroot {

// Reads a whole file, refusing files larger than `max_size` (kResourceExhausted).
Result<std::string> ReadFile(const std::string& path, std::size_t max_size = 64u << 20);
// Reads until EOF from an fd (e.g. --key-fd), with the same cap.
Result<std::string> ReadFd(int fd, std::size_t max_size = 64u << 20);

// Reads a secret (a key, a passphrase, a private key) straight into SecretBytes, refusing more
// than `max_size` bytes (kResourceExhausted): no copy of it is left in other memory.
Result<SecretBytes> ReadSecretFd(int fd, std::size_t max_size = 64u << 10);
Result<SecretBytes> ReadSecretFile(const std::string& path, std::size_t max_size = 64u << 10);

// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename,
// fsync of the directory. Readers see the old or the new content, never a mix.
Status WriteFileAtomic(const std::string& path, std::span<const std::uint8_t> data, mode_t mode = 0644);
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644);

// Writes all of `data` to `fd`, retrying on EINTR and short writes.
Status WriteAll(int fd, std::span<const std::uint8_t> data);
// Reads exactly data.size() bytes; kOutOfRange at EOF before that.
Status ReadExactly(int fd, std::span<std::uint8_t> data);
// Positional forms (the fd's offset is not used or moved): all of `data` at `offset`, retrying
// EINTR and short transfers; PreadFull is kOutOfRange at EOF before data.size() bytes.
Status PreadFull(int fd, std::span<std::uint8_t> data, std::uint64_t offset);
Status PwriteFull(int fd, std::span<const std::uint8_t> data, std::uint64_t offset);

// mkdir -p.
Status MakeDirs(const std::string& path, mode_t mode = 0755);
// rm -rf without following symlinks; a missing path is not an error.
Status RemoveTree(const std::string& path);
// True if `path` is a directory with at least one entry.
Result<bool> IsNonEmptyDirectory(const std::string& path);

// Directory component and last component of a path, lexically.
std::string Dirname(std::string_view path);
std::string Basename(std::string_view path);
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace sealroot
