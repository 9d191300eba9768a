// MRENCLAVE: the record format, what changes it and what does not.
#include "stub-enclave/measure.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>

#include "base/file.h"
#include "tests/support/process.h"

namespace sealroot::stub_enclave {
namespace {

TEST(MrEnclaveBuilder, HashesSgxRecordsByteForByte) {
  MrEnclaveBuilder b(2, 0x10000);
  std::vector<std::uint8_t> page(kPageSize);
  for (std::size_t i = 0; i < page.size(); ++i) page[i] = static_cast<std::uint8_t>(i * 7);
  b.AddPage(0x1000, kPageTypeReg | kSecinfoR | kSecinfoX, page);
  b.AddPage(0x2000, kPageTypeTcs, {});
  local_attest::sgx::Measurement got = b.Finish();

  Sha256 h;
  std::uint8_t rec[64] = {};
  std::memcpy(rec, "ECREATE", 8);
  rec[8] = 2;          // ssa_frame_size u32 @8
  rec[12 + 2] = 0x01;  // size u64 @12 = 0x10000
  h.Update(std::span(rec, 64));
  std::memset(rec, 0, 64);
  std::memcpy(rec, "EADD", 4);
  rec[8 + 1] = 0x10;  // offset 0x1000
  rec[16] = 0x05;     // R|X
  rec[17] = 0x02;     // PT_REG << 8
  h.Update(std::span(rec, 64));
  for (std::size_t i = 0; i < kPageSize; i += 256) {
    std::uint8_t ext[64] = {};
    std::memcpy(ext, "EEXTEND", 8);
    const std::uint64_t off = 0x1000 + i;
    std::memcpy(ext + 8, &off, 8);
    h.Update(std::span(ext, 64));
    h.Update(std::span(page).subspan(i, 256));
  }
  std::memset(rec, 0, 64);
  std::memcpy(rec, "EADD", 4);
  rec[8 + 1] = 0x20;
  rec[17] = 0x01;  // PT_TCS << 8
  h.Update(std::span(rec, 64));
  EXPECT_EQ(got, h.Finish());
}

TEST(EnclaveImage, MeasurementIsDeterministicAndCoversCodeAndLayout) {
  const EnclaveConfig config{.heap_size = 1 << 20, .threads = 2};
  auto app = EnclaveImage::Load(testing::BuiltProgram("test_app"), config).value();
  auto again = EnclaveImage::Load(testing::BuiltProgram("test_app"), config).value();
  auto impostor = EnclaveImage::Load(testing::BuiltProgram("test_impostor"), config).value();
  EXPECT_EQ(app.measurement().mr_enclave, again.measurement().mr_enclave);
  EXPECT_NE(app.measurement().mr_enclave, impostor.measurement().mr_enclave);
  EnclaveConfig more_threads = config;
  more_threads.threads = 3;
  EXPECT_NE(
      EnclaveImage::Load(testing::BuiltProgram("test_app"), more_threads).value().measurement().mr_enclave,
      app.measurement().mr_enclave);
  EnclaveConfig bigger_heap = config;
  bigger_heap.heap_size = 2 << 20;
  EXPECT_NE(
      EnclaveImage::Load(testing::BuiltProgram("test_app"), bigger_heap).value().measurement().mr_enclave,
      app.measurement().mr_enclave);
  // A dynamic executable: its libraries are measured (libc at least), ECREATE size a power of 2.
  bool has_libc = false;
  for (const MeasuredFile& lib : app.measurement().libraries)
    has_libc |= lib.path.find("libc.so") != std::string::npos;
  EXPECT_TRUE(has_libc);
  EXPECT_EQ(app.measurement().enclave_size & (app.measurement().enclave_size - 1), 0u);
  EXPECT_GT(app.measurement().measured_bytes, 0u);
}

TEST(EnclaveImage, ChangedBytesChangeTheMeasurement) {
  testing::TempDir dir;
  std::string bytes = ReadFile(testing::BuiltProgram("test_app")).value();
  ASSERT_TRUE(WriteFileAtomic(dir / "a", bytes, 0755).ok());
  bytes[bytes.size() - 1] ^= 1;  // last byte: outside anything the loader reads
  ASSERT_TRUE(WriteFileAtomic(dir / "b", bytes, 0755).ok());
  const EnclaveConfig config{.heap_size = 1 << 20, .threads = 1};
  EXPECT_NE(EnclaveImage::Load(dir / "a", config).value().measurement().mr_enclave,
            EnclaveImage::Load(dir / "b", config).value().measurement().mr_enclave);
}

TEST(EnclaveImage, NonElfAndBadConfigsAreRefused) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "script", std::string("#!/bin/sh\necho hi\n"), 0755).ok());
  auto r = EnclaveImage::Load(dir / "script", EnclaveConfig{});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("ELF"), std::string::npos);
  EXPECT_FALSE(EnclaveImage::Load(dir / "missing", EnclaveConfig{}).ok());
  EXPECT_FALSE(EnclaveImage::Load(testing::BuiltProgram("test_app"), EnclaveConfig{.threads = 0}).ok());
}

TEST(EnclaveImage, TheMeasuredCopyCannotBeChanged) {
  auto app =
      EnclaveImage::Load(testing::BuiltProgram("test_app"), EnclaveConfig{.heap_size = 4096, .threads = 1})
          .value();
  // The memfd behind the exec fd is sealed: even a writable reopening cannot change it.
  const int seals = ::fcntl(app.exec_fd(), F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
            F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  std::string path = "/proc/self/fd/" + std::to_string(app.exec_fd());
  UniqueFd w(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(w.valid());
  EXPECT_EQ(::pwrite(w.get(), "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ((::fcntl(app.exec_fd(), F_GETFL) & O_ACCMODE), O_RDONLY);
}

// The manifest's place in the measured layout (design/attestation.md): named with its size on
// the configuration page, EADDed REG|R and EEXTENDed after the executable and its libraries,
// before the TCS pages. Rebuilt here record by record for a static executable.
TEST(EnclaveImage, TheManifestIsMeasuredWhereTheLayoutSays) {
  const std::string exe = "/bin/busybox";  // static: no libraries
  const std::string manifest = std::string(5000, 'm') + "{}";
  const EnclaveConfig config{.heap_size = 4096, .threads = 1};
  auto image = EnclaveImage::Load(exe, config, manifest).value();
  ASSERT_TRUE(image.measurement().libraries.empty());
  const std::string bytes = ReadFile(exe).value();
  const std::string text =
      "sealroot enclave layout v1\nheap_size 4096\nthreads 1\nssa_frame_pages 1\nexecutable " +
      std::to_string(bytes.size()) + "\nmanifest " + std::to_string(manifest.size()) + "\n";
  auto pages_of = [](std::size_t n) { return (n + kPageSize - 1) / kPageSize; };
  const std::uint64_t pages = 1 + pages_of(bytes.size()) + pages_of(manifest.size()) + 2 + 1;
  std::uint64_t size = 2 * kPageSize;
  while (size < pages * kPageSize) size *= 2;
  MrEnclaveBuilder b(1, size);
  std::uint64_t offset = 0;
  auto add = [&](std::string_view data, std::uint64_t flags) {
    for (std::size_t i = 0; i < data.size(); i += kPageSize, offset += kPageSize) {
      std::vector<std::uint8_t> page(kPageSize, 0);
      std::memcpy(page.data(), data.data() + i, std::min<std::size_t>(kPageSize, data.size() - i));
      b.AddPage(offset, flags, page);
    }
  };
  add(text, kPageTypeReg | kSecinfoR);
  add(bytes, kPageTypeReg | kSecinfoR | kSecinfoX);
  add(manifest, kPageTypeReg | kSecinfoR);
  b.AddPage(offset, kPageTypeTcs, std::vector<std::uint8_t>(kPageSize, 0));
  b.AddPage(offset + kPageSize, kPageTypeReg | kSecinfoR | kSecinfoW, {});
  b.AddPage(offset + 2 * kPageSize, kPageTypeReg | kSecinfoR | kSecinfoW, {});
  EXPECT_EQ(image.measurement().mr_enclave, b.Finish());
  EXPECT_EQ(image.measurement().manifest_size, manifest.size());
}

TEST(EnclaveImage, OneManifestByteChangesTheMeasurementAndTheCopyIsSealed) {
  const EnclaveConfig config{.heap_size = 4096, .threads = 1};
  auto none = EnclaveImage::Load("/bin/busybox", config).value();
  auto a = EnclaveImage::Load("/bin/busybox", config, R"({"workload": {}})").value();
  auto b = EnclaveImage::Load("/bin/busybox", config, R"({"workload": {} })").value();
  EXPECT_EQ(none.manifest_fd(), -1);
  EXPECT_NE(a.measurement().mr_enclave, b.measurement().mr_enclave);
  EXPECT_NE(a.measurement().mr_enclave, none.measurement().mr_enclave);
  const int seals = ::fcntl(a.manifest_fd(), F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
  EXPECT_EQ(ReadFile("/proc/self/fd/" + std::to_string(a.manifest_fd())).value(), R"({"workload": {}})");
  EXPECT_FALSE(EnclaveImage::Load("/bin/busybox", config, std::string((1u << 20) + 1, 'x')).ok());
}

}  // namespace
}  // namespace sealroot::stub_enclave
