// The POSIX behaviour suite for the writable mount: one function run as root and, in a child
// process, as `nobody`, in a directory that user owns. Checks collect failures (a child cannot
// use gtest assertions); each names the line and the expression.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "tests/fusefs-upper/upper_fixture.h"

namespace sealroot::fusefs::testing {

class Checks {
 public:
  template <typename A, typename B>
  void Eq(const A& a, const B& b, int line, const char* what) {
    if (!(a == b)) failures_.push_back("line " + std::to_string(line) + ": " + what);
  }
  std::vector<std::string> take() { return std::move(failures_); }

 private:
  std::vector<std::string> failures_;
};

#define SUITE_EQ(a, b) c.Eq((a), (b), __LINE__, #a " == " #b)

inline struct stat Lstat(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) st.st_mode = 0;
  return st;
}

inline std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) names.insert(e->d_name);
  closedir(d);
  return names;
}

inline void FilesAndOffsets(Checks& c, const std::string& d) {
  const std::string f = d + "/f";
  SUITE_EQ(WriteFile(f, "hello", O_CREAT | O_EXCL | O_WRONLY), 0);
  SUITE_EQ(WriteFile(f, "x", O_CREAT | O_EXCL | O_WRONLY), EEXIST);
  SUITE_EQ(ReadFile(f), std::string("hello"));
  // pwrite past the end leaves a zero gap; sparse files read zeros.
  int fd = open(f.c_str(), O_RDWR);
  SUITE_EQ(pwrite(fd, "X", 1, 100000), 1);
  SUITE_EQ(Err(ftruncate(fd, 10 << 20)), 0);
  SUITE_EQ(pwrite(fd, "Y", 1, 5 << 20), 1);
  SUITE_EQ(Err(fsync(fd)), 0);
  close(fd);
  std::string all = ReadFile(f);
  SUITE_EQ(all.size(), std::size_t{10 << 20});
  SUITE_EQ(all.substr(0, 5), std::string("hello"));
  SUITE_EQ(all.find_first_not_of('\0', 5), std::size_t{100000});
  SUITE_EQ(all[5 << 20], 'Y');
  SUITE_EQ(all.find_first_not_of('\0', 100001), std::size_t{5 << 20});
  // Shrink then grow: the cut bytes come back as zeros.
  const std::string pattern = Pattern(200000, 3);
  SUITE_EQ(WriteFile(f, pattern), 0);
  SUITE_EQ(Err(truncate(f.c_str(), 70001)), 0);
  SUITE_EQ(Err(truncate(f.c_str(), 200000)), 0);
  all = ReadFile(f);
  SUITE_EQ(all.substr(0, 70001), pattern.substr(0, 70001));
  SUITE_EQ(all.find_first_not_of('\0', 70001), std::string::npos);
  SUITE_EQ(Lstat(f).st_size, 200000);
  // O_APPEND.
  SUITE_EQ(WriteFile(f, "a"), 0);
  SUITE_EQ(WriteFile(f, "b", O_WRONLY | O_APPEND), 0);
  SUITE_EQ(ReadFile(f), std::string("ab"));
  // A 3 MiB file in odd-sized pieces.
  const std::string big = Pattern(3 << 20, 11);
  fd = open((d + "/big").c_str(), O_CREAT | O_WRONLY, 0644);
  for (std::size_t off = 0; off < big.size(); off += 77777)
    SUITE_EQ(pwrite(fd, big.data() + off, std::min<std::size_t>(77777, big.size() - off), off) > 0, true);
  close(fd);
  SUITE_EQ(ReadFile(d + "/big") == big, true);
}

inline void Namespace(Checks& c, const std::string& d) {
  SUITE_EQ(Err(mkdir((d + "/a").c_str(), 0755)), 0);
  SUITE_EQ(Err(mkdir((d + "/a").c_str(), 0755)), EEXIST);
  SUITE_EQ(Err(mkdir((d + "/b").c_str(), 0755)), 0);
  SUITE_EQ(WriteFile(d + "/a/f1", "one"), 0);
  SUITE_EQ(WriteFile(d + "/a/f2", "two"), 0);
  SUITE_EQ(Lstat(d).st_nlink, nlink_t{4});
  // Rename over a file, across directories.
  SUITE_EQ(Err(rename((d + "/a/f1").c_str(), (d + "/a/f2").c_str())), 0);
  SUITE_EQ(ReadFile(d + "/a/f2"), std::string("one"));
  SUITE_EQ(Err(access((d + "/a/f1").c_str(), F_OK)), ENOENT);
  SUITE_EQ(Err(rename((d + "/a/f2").c_str(), (d + "/b/g").c_str())), 0);
  SUITE_EQ(ReadFile(d + "/b/g"), std::string("one"));
  // Directories: over an empty one, not over a non-empty one, not file-over-dir or dir-over-file.
  SUITE_EQ(Err(mkdir((d + "/e").c_str(), 0755)), 0);
  SUITE_EQ(Err(rename((d + "/a").c_str(), (d + "/e").c_str())), 0);
  SUITE_EQ(Err(access((d + "/a").c_str(), F_OK)), ENOENT);
  SUITE_EQ(Err(mkdir((d + "/a").c_str(), 0755)), 0);
  SUITE_EQ(Err(rename((d + "/a").c_str(), (d + "/b").c_str())), ENOTEMPTY);
  SUITE_EQ(Err(rename((d + "/b/g").c_str(), (d + "/a").c_str())), EISDIR);
  SUITE_EQ(Err(rename((d + "/a").c_str(), (d + "/b/g").c_str())), ENOTDIR);
  SUITE_EQ(Err(mkdir((d + "/a/in").c_str(), 0755)), 0);
  SUITE_EQ(Err(rename((d + "/a/in").c_str(), (d + "/b/in").c_str())), 0);
  SUITE_EQ(Lstat(d + "/a").st_nlink, nlink_t{2});
  SUITE_EQ(Lstat(d + "/b").st_nlink, nlink_t{3});
  SUITE_EQ(Err(renameat2(AT_FDCWD, (d + "/b/g").c_str(), AT_FDCWD, (d + "/b/in").c_str(), RENAME_EXCHANGE)),
           0);
  SUITE_EQ(S_ISDIR(Lstat(d + "/b/g").st_mode), true);
  SUITE_EQ(Err(renameat2(AT_FDCWD, (d + "/b/g").c_str(), AT_FDCWD, (d + "/b/in").c_str(), RENAME_NOREPLACE)),
           EEXIST);
  // Unlink, rmdir and their errors.
  SUITE_EQ(Err(unlink((d + "/nope").c_str())), ENOENT);
  SUITE_EQ(Err(unlink((d + "/b/g").c_str())), EISDIR);
  SUITE_EQ(Err(rmdir((d + "/b/in").c_str())), ENOTDIR);
  SUITE_EQ(Err(rmdir((d + "/b").c_str())), ENOTEMPTY);
  SUITE_EQ(Err(unlink((d + "/b/in").c_str())), 0);
  SUITE_EQ(Err(rmdir((d + "/b/g").c_str())), 0);
  SUITE_EQ(Err(rmdir((d + "/b").c_str())), 0);
  SUITE_EQ(Err(open((d + "/e").c_str(), O_WRONLY)), EISDIR);
  SUITE_EQ(Err(mkdir((d + "/" + std::string(256, 'n')).c_str(), 0755)), ENAMETOOLONG);
  // Hard links, symlinks, fifos.
  SUITE_EQ(WriteFile(d + "/h", "linked"), 0);
  SUITE_EQ(Err(link((d + "/h").c_str(), (d + "/h2").c_str())), 0);
  SUITE_EQ(Lstat(d + "/h").st_nlink, nlink_t{2});
  SUITE_EQ(Lstat(d + "/h").st_ino, Lstat(d + "/h2").st_ino);
  SUITE_EQ(Err(link((d + "/e").c_str(), (d + "/e2").c_str())), EPERM);
  SUITE_EQ(Err(unlink((d + "/h").c_str())), 0);
  SUITE_EQ(ReadFile(d + "/h2"), std::string("linked"));
  SUITE_EQ(Lstat(d + "/h2").st_nlink, nlink_t{1});
  SUITE_EQ(Err(symlink("h2", (d + "/s").c_str())), 0);
  char target[64] = {};
  SUITE_EQ(readlink((d + "/s").c_str(), target, sizeof target), ssize_t{2});
  SUITE_EQ(std::string(target), std::string("h2"));
  SUITE_EQ(S_ISLNK(Lstat(d + "/s").st_mode), true);
  SUITE_EQ(ReadFile(d + "/s"), std::string("linked"));
  SUITE_EQ(Err(mkfifo((d + "/fifo").c_str(), 0600)), 0);
  SUITE_EQ(S_ISFIFO(Lstat(d + "/fifo").st_mode), true);
}

inline void AttributesAndOpenFiles(Checks& c, const std::string& d) {
  const std::string f = d + "/attr";
  SUITE_EQ(WriteFile(f, "data"), 0);
  SUITE_EQ(Err(chmod(f.c_str(), 0640)), 0);
  SUITE_EQ(Lstat(f).st_mode & 07777, mode_t{0640});
  const timespec times[2] = {{1000000000, 123}, {1200000000, 456789}};
  SUITE_EQ(Err(utimensat(AT_FDCWD, f.c_str(), times, 0)), 0);
  struct stat st = Lstat(f);
  SUITE_EQ(st.st_atim.tv_sec, 1000000000L);
  SUITE_EQ(st.st_atim.tv_nsec, 123L);
  SUITE_EQ(st.st_mtim.tv_sec, 1200000000L);
  SUITE_EQ(st.st_mtim.tv_nsec, 456789L);
  SUITE_EQ(Err(setxattr(f.c_str(), "user.k", "v1", 2, 0)), 0);
  SUITE_EQ(Err(setxattr(f.c_str(), "user.k", "v2", 2, XATTR_CREATE)), EEXIST);
  SUITE_EQ(Err(setxattr(f.c_str(), "user.other", "v", 1, XATTR_REPLACE)), ENODATA);
  char value[16] = {};
  SUITE_EQ(getxattr(f.c_str(), "user.k", value, sizeof value), ssize_t{2});
  SUITE_EQ(std::string(value), std::string("v1"));
  char list[64] = {};
  SUITE_EQ(listxattr(f.c_str(), list, sizeof list), ssize_t{7});
  SUITE_EQ(Err(static_cast<int>(getxattr(f.c_str(), "user.k", value, 1))), ERANGE);
  SUITE_EQ(Err(removexattr(f.c_str(), "user.k")), 0);
  SUITE_EQ(Err(static_cast<int>(getxattr(f.c_str(), "user.k", value, sizeof value))), ENODATA);
  // An open, unlinked file keeps its data until closed.
  const std::string u = d + "/unlinked";
  int fd = open(u.c_str(), O_CREAT | O_RDWR, 0600);
  SUITE_EQ(write(fd, "still here", 10), ssize_t{10});
  SUITE_EQ(Err(unlink(u.c_str())), 0);
  SUITE_EQ(Err(access(u.c_str(), F_OK)), ENOENT);
  char buf[16] = {};
  SUITE_EQ(pread(fd, buf, sizeof buf, 0), ssize_t{10});
  SUITE_EQ(std::string(buf), std::string("still here"));
  struct stat fst {};
  SUITE_EQ(Err(fstat(fd, &fst)), 0);
  SUITE_EQ(fst.st_nlink, nlink_t{0});
  SUITE_EQ(Err(fsync(fd)), 0);
  close(fd);
}

inline void LargeDirectory(Checks& c, const std::string& d) {
  const std::string big = d + "/many";
  SUITE_EQ(Err(mkdir(big.c_str(), 0755)), 0);
  for (int i = 0; i < 10000; ++i) {
    int fd = open((big + "/entry-" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) {
      SUITE_EQ(fd >= 0, true);
      break;
    }
    close(fd);
  }
  std::set<std::string> names = Names(big);
  SUITE_EQ(names.size(), std::size_t{10002});
  SUITE_EQ(names.contains("entry-9999"), true);
  SUITE_EQ(names.contains(".."), true);
}

inline std::vector<std::string> PosixSuite(const std::string& d) {
  Checks c;
  FilesAndOffsets(c, d);
  Namespace(c, d);
  AttributesAndOpenFiles(c, d);
  LargeDirectory(c, d);
  return c.take();
}

}  // namespace sealroot::fusefs::testing
