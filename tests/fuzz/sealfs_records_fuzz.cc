// The sealed filesystem's record decoders (fusefs/src/records.h, image_root.h over codec.h):
// node records, directory objects and image roots. Their parents are authenticated before they
// are decoded, so these bytes come from the store writer; the decoders still promise (codec.h)
// that no input crashes them. Beyond that, the encoding is canonical: whatever decodes encodes
// back to exactly the bytes it came from, and a directory that decodes keeps its documented
// invariants (sorted unique names, inode numbers in [2, max_ino]).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fusefs/src/codec.h"
#include "fusefs/src/image_root.h"
#include "fusefs/src/records.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace sealroot::fusefs;

void FuzzRecords(std::span<const std::uint8_t> bytes) {
  ByteReader r(bytes);
  std::size_t offset = 0;
  while (true) {
    Record record;
    if (!DecodeRecord(r, record)) return;
    const std::size_t consumed = bytes.size() - r.remaining() - offset;
    ByteWriter w;
    EncodeRecord(record, w);
    FUZZ_CHECK(w.bytes().size() == consumed);
    FUZZ_CHECK(
        std::equal(w.bytes().begin(), w.bytes().end(), bytes.begin() + static_cast<std::ptrdiff_t>(offset)));
    offset += consumed;
    (void)RecordAttr(record);
  }
}

void FuzzDirectory(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < 2) return;
  const std::uint64_t max_ino = std::uint64_t{bytes[0]} << 8 | bytes[1];
  bytes = bytes.subspan(2);
  auto entries = DecodeDirectory(bytes, max_ino);
  if (!entries.ok()) return;
  ByteWriter w;
  w.U32(static_cast<std::uint32_t>(entries->size()));
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const Record& e = (*entries)[i];
    FUZZ_CHECK(e.ino >= 2 && e.ino <= max_ino);
    FUZZ_CHECK(!e.name.empty() && e.name != "." && e.name != ".." && e.name.find('/') == std::string::npos);
    if (i > 0) FUZZ_CHECK((*entries)[i - 1].name < e.name);
    EncodeRecord(e, w);
  }
  FUZZ_CHECK(std::equal(w.bytes().begin(), w.bytes().end(), bytes.begin(), bytes.end()));
}

void FuzzImageRoot(std::span<const std::uint8_t> bytes) {
  auto root = DecodeImageRoot(bytes);
  if (!root.ok()) return;
  FUZZ_CHECK(root->root.type == NodeType::kDirectory && root->root.ino == 1 && root->root.ref.has_value());
  std::vector<std::uint8_t> again = EncodeImageRoot(*root);
  FUZZ_CHECK(std::equal(again.begin(), again.end(), bytes.begin(), bytes.end()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::span<const std::uint8_t> rest(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      FuzzRecords(rest);
      break;
    case 1:
      FuzzDirectory(rest);
      break;
    default:
      FuzzImageRoot(rest);
      break;
  }
  return 0;
}
