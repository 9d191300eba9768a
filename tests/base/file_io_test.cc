// base/file.h: positional I/O and secret files.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <string>

#include "base/crypto.h"
#include "base/file.h"
#include "tests/support/process.h"

namespace sealroot {
namespace {

using testing::TempDir;

std::span<const std::uint8_t> Bytes(std::string_view s) {
  return AsBytes(s);
}

TEST(FileIoTest, PositionalIoReadsAndWritesAtTheOffsetWithoutMovingTheFdOffset) {
  TempDir dir;
  UniqueFd fd(::open((dir / "f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(PwriteFull(fd.get(), Bytes("world"), 6).ok());
  ASSERT_TRUE(PwriteFull(fd.get(), Bytes("hello "), 0).ok());
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), 0);
  std::string out(5, '\0');
  ASSERT_TRUE(PreadFull(fd.get(), {reinterpret_cast<std::uint8_t*>(out.data()), out.size()}, 6).ok());
  EXPECT_EQ(out, "world");
  // Past the end: kOutOfRange, not a short read passed off as the data.
  Status past = PreadFull(fd.get(), {reinterpret_cast<std::uint8_t*>(out.data()), out.size()}, 8);
  EXPECT_EQ(past.code(), Code::kOutOfRange) << past.ToString();
  UniqueFd read_only(::open((dir / "f").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(PwriteFull(read_only.get(), Bytes("x"), 0).code(), ErrnoStatus("", EBADF).code());
}

TEST(FileIoTest, SecretFilesAreReadWholeAndCapped) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "key", std::string_view("0123456789abcdef"), 0600).ok());
  Result<SecretBytes> key = ReadSecretFile(dir / "key", 16);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(*key == SecretBytes(Bytes("0123456789abcdef")));
  EXPECT_EQ(ReadSecretFile(dir / "key", 15).status().code(), Code::kResourceExhausted);
  EXPECT_EQ(ReadSecretFile(dir / "missing").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sealroot
