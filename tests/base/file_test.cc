// base/file.h and base/fd.h: whole-file reads with caps, atomic writes, exact fd I/O, directory
// helpers, lexical path helpers, and the RAII owners.
#include "base/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "base/crypto.h"
#include "base/fd.h"
#include "tests/support/process.h"

namespace sealroot {
namespace {

using sealroot::testing::TempDir;

TEST(FileTest, WriteFileAtomicReplacesWholeAndSetsTheMode) {
  TempDir tmp;
  const std::string path = tmp / "f";
  ASSERT_TRUE(WriteFileAtomic(path, std::string_view("first version"), 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(path, std::string_view("second"), 0600).ok());
  EXPECT_EQ(*ReadFile(path), "second");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temporary file is left beside it.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(tmp.path())) ++entries;
  EXPECT_EQ(entries, 1u);
  // A directory that does not exist is an error, not a crash or a partial file.
  EXPECT_FALSE(WriteFileAtomic(tmp / "missing/f", std::string_view("x")).ok());
}

TEST(FileTest, ReadFileRefusesFilesAboveTheCapAndMissingFiles) {
  TempDir tmp;
  ASSERT_TRUE(WriteFileAtomic(tmp / "f", std::string(100, 'x')).ok());
  EXPECT_EQ(ReadFile(tmp / "f", 100)->size(), 100u);
  auto big = ReadFile(tmp / "f", 99);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Code::kResourceExhausted);
  auto missing = ReadFile(tmp / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

TEST(FileTest, ReadFdReadsToEofWithTheSameCap) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  UniqueFd reader(fds[0]), writer(fds[1]);
  ASSERT_TRUE(WriteAll(writer.get(), AsBytes("key material")).ok());
  writer.Reset();
  EXPECT_EQ(*ReadFd(reader.get()), "key material");

  ASSERT_EQ(pipe(fds), 0);
  UniqueFd r2(fds[0]), w2(fds[1]);
  ASSERT_TRUE(WriteAll(w2.get(), AsBytes("0123456789")).ok());
  w2.Reset();
  EXPECT_EQ(ReadFd(r2.get(), 9).status().code(), Code::kResourceExhausted);
}

TEST(FileTest, ReadExactlyFailsWithOutOfRangeAtAnEarlyEof) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  UniqueFd reader(fds[0]), writer(fds[1]);
  ASSERT_TRUE(WriteAll(writer.get(), AsBytes("abcdef")).ok());
  writer.Reset();
  std::uint8_t four[4];
  ASSERT_TRUE(ReadExactly(reader.get(), four).ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(four), 4), "abcd");
  Status rest = ReadExactly(reader.get(), four);
  ASSERT_FALSE(rest.ok());
  EXPECT_EQ(rest.code(), Code::kOutOfRange);
}

TEST(FileTest, MakeDirsRemoveTreeAndIsNonEmptyDirectory) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp / "a/b/c").ok());
  ASSERT_TRUE(MakeDirs(tmp / "a/b/c").ok());  // idempotent
  EXPECT_TRUE(*IsNonEmptyDirectory(tmp / "a"));
  EXPECT_FALSE(*IsNonEmptyDirectory(tmp / "a/b/c"));
  // RemoveTree does not follow symlinks: the target outside survives.
  ASSERT_TRUE(WriteFileAtomic(tmp / "outside", std::string_view("keep")).ok());
  ASSERT_EQ(symlink((tmp / "outside").c_str(), (tmp / "a/b/link").c_str()), 0);
  ASSERT_EQ(symlink(tmp.path().c_str(), (tmp / "a/b/dirlink").c_str()), 0);
  ASSERT_TRUE(RemoveTree(tmp / "a").ok());
  EXPECT_FALSE(std::filesystem::exists(tmp / "a"));
  EXPECT_EQ(*ReadFile(tmp / "outside"), "keep");
  EXPECT_TRUE(RemoveTree(tmp / "a").ok());  // a missing path is not an error
}

TEST(FileTest, PathHelpersAreLexical) {
  EXPECT_EQ(Dirname("/a/b/c"), "/a/b");
  EXPECT_EQ(Basename("/a/b/c"), "c");
  EXPECT_EQ(Dirname("c"), ".");
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a/", "b"), "/a/b");
}

TEST(FdTest, UniqueFdClosesOnceAndMovesOwnership) {
  int raw = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    UniqueFd b = std::move(a);
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_EQ(b.get(), raw);
    EXPECT_NE(fcntl(raw, F_GETFD), -1);
  }
  EXPECT_EQ(fcntl(raw, F_GETFD), -1);  // closed by b
  EXPECT_EQ(errno, EBADF);

  int kept = open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    UniqueFd c(kept);
    EXPECT_EQ(c.Release(), kept);
  }
  EXPECT_NE(fcntl(kept, F_GETFD), -1);  // released, so not closed
  close(kept);
}

TEST(FdTest, ScopeGuardRunsUnlessDismissed) {
  int runs = 0;
  {
    ScopeGuard guard([&] { ++runs; });
  }
  {
    ScopeGuard guard([&] { ++runs; });
    guard.Dismiss();
  }
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace sealroot
