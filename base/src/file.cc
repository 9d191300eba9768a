#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "base/crypto.h"
#include "base/encoding.h"

namespace sealroot {

Result<std::string> ReadFd(int fd, std::size_t max_size) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_size) {
      return ResourceExhausted("input larger than " + std::to_string(max_size) + " bytes");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path, std::size_t max_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path, errno);
  auto content = ReadFd(fd.get(), max_size);
  if (!content.ok()) return content.status().WithContext(path);
  return content;
}

Status WriteAll(int fd, std::span<const std::uint8_t> data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", errno);
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return OkStatus();
}

Status ReadExactly(int fd, std::span<std::uint8_t> data) {
  while (!data.empty()) {
    ssize_t n = ::read(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", errno);
    }
    if (n == 0) return OutOfRange("unexpected end of stream");
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return OkStatus();
}

Status WriteFileAtomic(const std::string& path, std::span<const std::uint8_t> data, mode_t mode) {
  std::uint8_t nonce[8];
  RandomBytes(nonce);
  const std::string tmp = path + ".tmp-" + HexEncode(nonce);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return ErrnoStatus("create " + tmp, errno);
  ScopeGuard remove_tmp([&] { ::unlink(tmp.c_str()); });
  SR_RETURN_IF_ERROR_CTX(WriteAll(fd.get(), data), tmp);
  if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus("chmod " + tmp, errno);
  if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + tmp, errno);
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename to " + path, errno);
  remove_tmp.Dismiss();
  UniqueFd dir(::open(Dirname(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) ::fsync(dir.get());
  return OkStatus();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  return WriteFileAtomic(path, AsBytes(data), mode);
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoStatus("mkdir " + path, ec.value());
  (void)mode;  // create_directories uses 0777 & ~umask, as mkdir -p does
  return OkStatus();
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);  // does not follow symlinks
  if (ec) return ErrnoStatus("remove " + path, ec.value());
  return OkStatus();
}

Result<bool> IsNonEmptyDirectory(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return false;
    return ErrnoStatus("open directory " + path, errno);
  }
  bool non_empty = false;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      non_empty = true;
      break;
    }
  }
  ::closedir(dir);
  return non_empty;
}

std::string Dirname(std::string_view path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string Basename(std::string_view path) {
  auto slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  std::string out(a);
  if (out.back() != '/') out += '/';
  out += b;
  return out;
}

}  // namespace sealroot
