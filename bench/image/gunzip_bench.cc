// Decodes one gzip file with each decoder the build has, through the pipeline's own stage
// (image/stream.h), and prints MB/s of output. Used by bench/image/run.sh.
//   image_gunzip_bench FILE.gz
#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "image/stream.h"

int main(int argc, char** argv) {
  using sealroot::image::GzipBackend;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE.gz\n", argv[0]);
    return 2;
  }
  std::vector<std::pair<const char*, GzipBackend>> backends = {{"zlib", GzipBackend::kZlib}};
  if (sealroot::image::HaveIsal()) backends.push_back({"isa-l", GzipBackend::kIsal});
  std::vector<std::uint8_t> buf(1 << 20);
  for (const auto& [name, backend] : backends) {
    sealroot::UniqueFd fd(::open(argv[1], O_RDONLY | O_CLOEXEC));
    if (!fd) {
      std::perror(argv[1]);
      return 1;
    }
    auto start = std::chrono::steady_clock::now();
    auto reader = sealroot::image::MakeDecompressor(
        sealroot::image::Compression::kGzip, sealroot::image::MakeFdReader(std::move(fd)), ~0ull, backend);
    if (!reader.ok()) return 1;
    std::uint64_t total = 0;
    while (true) {
      auto n = (*reader)->Read(buf);
      if (!n.ok()) {
        std::fprintf(stderr, "%s: %s\n", name, n.status().ToString().c_str());
        return 1;
      }
      if (*n == 0) break;
      total += *n;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-6s %8.1f MB out in %6.3f s = %7.1f MB/s\n", name, static_cast<double>(total) / 1e6, secs,
                static_cast<double>(total) / 1e6 / secs);
  }
  return 0;
}
