#include "image/src/root_fs.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace sealroot::image::internal {

Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, int flags, mode_t mode,
                            unsigned long long extra_resolve) {
  std::string p = path.empty() ? std::string(".") : std::string(path);
  open_how how{};
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof(how));
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0) return ErrnoStatus("opening '" + p + "' inside the root", errno);
  return UniqueFd(static_cast<int>(fd));
}

Result<std::string> ReadFileInRoot(int root_fd, std::string_view path, std::size_t max_size) {
  SR_ASSIGN_OR_RETURN(UniqueFd fd, OpenInRoot(root_fd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat '" + std::string(path) + "'", errno);
  if (!S_ISREG(st.st_mode)) return FailedPrecondition("'" + std::string(path) + "' is not a regular file");
  if (static_cast<std::size_t>(st.st_size) > max_size) {
    return ResourceExhausted("'" + std::string(path) + "' is larger than " + std::to_string(max_size) +
                             " bytes");
  }
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading '" + std::string(path) + "'", errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

std::pair<std::string_view, std::string_view> SplitParent(std::string_view path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace sealroot::image::internal
