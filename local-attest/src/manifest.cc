#include "local-attest/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "base/fd.h"
#include "base/file.h"

namespace sealroot::local_attest::sgx {
namespace {

Result<std::string> ReadSealedFd(std::string_view text) {
  int fd = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
  if (ec != std::errc() || end != text.data() + text.size() || fd < 0) {
    return InvalidArgument(std::string(kSimManifestFdEnv) + " is not a file descriptor number");
  }
  UniqueFd owned(fd);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // nothing this enclave starts inherits it
  constexpr int kNeeded = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & kNeeded) != kNeeded) {
    return FailedPrecondition("the enclave manifest (fd " + std::string(text) + ") is not a sealed memfd");
  }
  std::string out;
  char buffer[8192];
  for (off_t offset = 0;;) {
    ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading the enclave manifest", errno);
    if (n == 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
    offset += n;
    if (out.size() > kMaxManifestSize) return InvalidArgument("the enclave manifest is larger than 1 MiB");
  }
  return out;
}

}  // namespace

Result<std::optional<std::string>> ReadEnclaveManifest() {
  if (const char* fd = std::getenv(kSimManifestFdEnv)) {
    SR_ASSIGN_OR_RETURN(std::string text, ReadSealedFd(fd));
    return std::optional<std::string>(std::move(text));
  }
  struct stat st {};
  const bool libos = ::stat("/dev/attestation", &st) == 0 || ::stat("/dev/sgx", &st) == 0;
  if (!libos) return std::optional<std::string>();
  Result<std::string> text = ReadFile(kLibOsManifestPath, kMaxManifestSize);
  if (!text.ok() && text.status().code() == Code::kNotFound) return std::optional<std::string>();
  if (!text.ok()) return std::move(text).status();
  return std::optional<std::string>(std::move(*text));
}

}  // namespace sealroot::local_attest::sgx
