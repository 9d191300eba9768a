#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <type_traits>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/env.h"

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

Result<SecretBytes> ReadSecretFd(int fd, std::size_t max_size) {
  SecretBytes buffer(max_size + 1);  // one more byte tells an oversized input
  std::size_t got = 0;
  while (got < buffer.size()) {
    ssize_t n = ::read(fd, buffer.data() + got, buffer.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read", errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > max_size) return ResourceExhausted("input larger than " + std::to_string(max_size) + " bytes");
  return SecretBytes(buffer.span().first(got));
}

Result<SecretBytes> ReadSecretFile(const std::string& path, std::size_t max_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path, errno);
  Result<SecretBytes> content = ReadSecretFd(fd.get(), max_size);
  if (!content.ok()) return std::move(content).status().WithContext(path);
  return content;
}

namespace {

// The one loop behind WriteAll, ReadExactly, PreadFull and PwriteFull: `io(pointer, count,
// done)` transfers at most `count` bytes, `done` bytes into the buffer; EINTR is retried, a short
// transfer continues where it stopped, 0 from a read is the end of the file.
template <typename Byte, typename Io>
Status TransferAll(std::span<Byte> data, const char* what, Io io) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = io(data.data() + done, data.size() - done, done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(what, errno);
    }
    if (n == 0) {
      if constexpr (std::is_const_v<Byte>) return ErrnoStatus(what, EIO);  // a write that makes no progress
      return OutOfRange("unexpected end of stream");
    }
    done += static_cast<std::size_t>(n);
  }
  return OkStatus();
}

}  // namespace

Status WriteAll(int fd, std::span<const std::uint8_t> data) {
  return TransferAll(data, "write",
                     [fd](const std::uint8_t* p, std::size_t n, std::size_t) { return ::write(fd, p, n); });
}

Status ReadExactly(int fd, std::span<std::uint8_t> data) {
  return TransferAll(data, "read",
                     [fd](std::uint8_t* p, std::size_t n, std::size_t) { return ::read(fd, p, n); });
}

Status PreadFull(int fd, std::span<std::uint8_t> data, std::uint64_t offset) {
  return TransferAll(data, "pread", [fd, offset](std::uint8_t* p, std::size_t n, std::size_t done) {
    return ::pread(fd, p, n, static_cast<off_t>(offset + done));
  });
}

Status PwriteFull(int fd, std::span<const std::uint8_t> data, std::uint64_t offset) {
  return TransferAll(data, "pwrite", [fd, offset](const std::uint8_t* p, std::size_t n, std::size_t done) {
    return ::pwrite(fd, p, n, static_cast<off_t>(offset + done));
  });
}

Status WriteFileAtomic(const std::string& path, std::span<const std::uint8_t> data, mode_t mode) {
  return WriteFileAtomic(Env::Default(), path, data, mode);
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
