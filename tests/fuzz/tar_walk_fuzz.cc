// The tar walk (image/src/tar_walk.h) on arbitrary layer bytes: it must never crash, and every
// entry it delivers keeps the LayerSink contract (image/sink.h): a cleaned relative path with no
// "..", "." or empty components; content exactly for regular files, yielding exactly entry.size
// bytes; hard-link targets cleaned and never the root; whiteouts naming a child.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "image/src/tar_walk.h"
#include "tests/fuzz/fuzz_check.h"

namespace sealroot::image {
namespace {

class MemoryReader final : public Reader {
 public:
  explicit MemoryReader(std::span<const std::uint8_t> data) : data_(data) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    // Uneven chunks, so entries straddle reads as they do behind a decompressor.
    std::size_t n = std::min({out.size(), data_.size() - pos_, std::size_t{4093}});
    std::copy_n(data_.data() + pos_, n, out.data());
    pos_ += n;
    return n;
  }

 private:
  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
};

bool IsCleanPath(std::string_view path) {
  if (path.empty()) return true;
  if (path.front() == '/' || path.back() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    std::string_view part =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

class CheckingSink final : public LayerSink {
 public:
  Status AddEntry(const Entry& entry, Reader* content) override {
    FUZZ_CHECK(IsCleanPath(entry.path));
    FUZZ_CHECK((content != nullptr) == (entry.type == EntryType::kRegular));
    FUZZ_CHECK(entry.mode <= 07777);
    if (entry.type == EntryType::kHardLink) {
      FUZZ_CHECK(!entry.link_target.empty());
      FUZZ_CHECK(IsCleanPath(entry.link_target));
    }
    if (entry.type == EntryType::kWhiteout) FUZZ_CHECK(!entry.path.empty());
    if (content != nullptr) {
      std::uint64_t total = 0;
      std::uint8_t buffer[8192];
      while (true) {
        auto n = content->Read(buffer);
        if (!n.ok()) return n.status();  // a truncated entry is an error, never short content
        if (*n == 0) break;
        total += *n;
        FUZZ_CHECK(total <= entry.size);
      }
      FUZZ_CHECK(total == entry.size);
    }
    return OkStatus();
  }
  Status Commit() override { return OkStatus(); }
  void Abort(const Status&) override {}
};

}  // namespace
}  // namespace sealroot::image

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sealroot::image;
  MemoryReader reader(std::span(data, size));
  CheckingSink sink;
  (void)internal::WalkTar(reader, sink);
  // CleanEntryPath on the raw bytes as a name: refused, or clean.
  auto cleaned = internal::CleanEntryPath(std::string_view(reinterpret_cast<const char*>(data), size));
  if (cleaned.ok()) FUZZ_CHECK(IsCleanPath(*cleaned));
  return 0;
}
