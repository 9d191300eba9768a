// Whether a file's pages are in the kernel's page cache (read, or stored by the filesystem),
// without reading it: mincore of a mapping. For the sibling read-ahead's tests.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace sealroot::fusefs::testing {

inline bool IsPageCached(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  fstat(fd, &st);
  const auto size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return false;
  std::vector<unsigned char> pages((size + 4095) / 4096);
  const bool all = mincore(map, size, pages.data()) == 0 &&
                   std::all_of(pages.begin(), pages.end(), [](unsigned char p) { return (p & 1) != 0; });
  munmap(map, size);
  return all;
}

// Waits (up to 10 s) for the file to be cached.
inline bool BecomesPageCached(const std::string& path) {
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(std::chrono::milliseconds(10))) {
    if (IsPageCached(path)) return true;
  }
  return false;
}

}  // namespace sealroot::fusefs::testing
