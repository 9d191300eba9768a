// Randomized operations from several threads with fixed seeds, applied to the writable mount and
// to a plain directory alike; both trees must then match byte for byte and attribute for
// attribute, and still match after a remount with the same upper. Each thread works in its own
// subtree, so the expected outcome (including each call's errno) is deterministic.
#include <sys/stat.h>
#include <sys/xattr.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "tests/fusefs-upper/posix_suite.h"

namespace sealroot::fusefs::testing {
namespace {

constexpr int kThreads = 4;
constexpr int kOpsPerThread = 1000;

struct Trees {
  std::string a, b;  // the mount's and the plain directory's copy of one thread's subtree
};

class Stress {
 public:
  Stress(Trees t, std::uint32_t seed) : t_(std::move(t)), rng_(seed) {}

  // Runs the operations; returns the ones whose errno differed between the trees.
  std::vector<std::string> Run() {
    for (int i = 0; i < kOpsPerThread; ++i) Step(i);
    return std::move(mismatches_);
  }

 private:
  std::uint32_t Pick(std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng_); }
  std::string Name() {
    std::string dir = Pick(3) == 0 ? "" : "d" + std::to_string(Pick(3)) + "/";
    return dir + "f" + std::to_string(Pick(8));
  }

  // Applies `op` to both trees and compares the outcome.
  template <typename Op>
  void Both(int step, const char* what, Op op) {
    int ea = op(t_.a), eb = op(t_.b);
    if (ea != eb)
      mismatches_.push_back("op " + std::to_string(step) + " " + what + ": mount errno " +
                            std::to_string(ea) + ", plain errno " + std::to_string(eb));
  }

  void Step(int step) {
    const std::string n = Name(), m = Name();
    const std::uint32_t size = Pick(200000), off = Pick(300000), mode = 0600 | (Pick(0100) & 0077);
    const std::string data = Pattern(Pick(3) == 0 ? Pick(100) : size % 70000, Pick(1000));
    switch (Pick(11)) {
      case 0:
        return Both(step, "create", [&](const std::string& r) { return WriteFile(r + "/" + n, data); });
      case 1:
        return Both(step, "pwrite", [&](const std::string& r) {
          int fd = open((r + "/" + n).c_str(), O_WRONLY);
          if (fd < 0) return errno;
          int err = pwrite(fd, data.data(), data.size(), off) < 0 ? errno : 0;
          close(fd);
          return err;
        });
      case 2:
        return Both(step, "truncate",
                    [&](const std::string& r) { return Err(truncate((r + "/" + n).c_str(), size)); });
      case 3:
        return Both(step, "rename", [&](const std::string& r) {
          return Err(rename((r + "/" + n).c_str(), (r + "/" + m).c_str()));
        });
      case 4:
        return Both(step, "unlink", [&](const std::string& r) { return Err(unlink((r + "/" + n).c_str())); });
      case 5: {
        const std::string d = "d" + std::to_string(Pick(3));
        return Both(step, "mkdir",
                    [&](const std::string& r) { return Err(mkdir((r + "/" + d).c_str(), 0755)); });
      }
      case 6: {
        const std::string d = "d" + std::to_string(Pick(3));
        return Both(step, "rmdir", [&](const std::string& r) { return Err(rmdir((r + "/" + d).c_str())); });
      }
      case 7:
        return Both(step, "chmod",
                    [&](const std::string& r) { return Err(chmod((r + "/" + n).c_str(), mode)); });
      case 8:
        return Both(step, "link", [&](const std::string& r) {
          return Err(link((r + "/" + n).c_str(), (r + "/" + m).c_str()));
        });
      case 9:
        return Both(step, "symlink",
                    [&](const std::string& r) { return Err(symlink(n.c_str(), (r + "/" + m).c_str())); });
      default:
        return Both(step, "setxattr", [&](const std::string& r) {
          return Err(lsetxattr((r + "/" + n).c_str(), "user.x", data.data(),
                               std::min<std::size_t>(data.size(), 64), 0));
        });
    }
  }

  Trees t_;
  std::mt19937 rng_;
  std::vector<std::string> mismatches_;
};

// Every difference between two trees, by relative path.
void Compare(const std::string& a, const std::string& b, const std::string& rel,
             std::vector<std::string>& diffs) {
  std::set<std::string> na = Names(a + rel), nb = Names(b + rel);
  if (na != nb) return diffs.push_back(rel + ": listings differ");
  for (const std::string& name : na) {
    if (name == "." || name == "..") continue;
    const std::string r = rel + "/" + name;
    struct stat sa = Lstat(a + r), sb = Lstat(b + r);
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
      diffs.push_back(r + ": types differ");
      continue;
    }
    if (S_ISDIR(sa.st_mode)) {
      if (sa.st_nlink != sb.st_nlink) diffs.push_back(r + ": nlink differs");
      Compare(a, b, r, diffs);
      continue;
    }
    if (sa.st_nlink != sb.st_nlink) diffs.push_back(r + ": nlink differs");
    if (S_ISLNK(sa.st_mode)) {
      char ta[256] = {}, tb[256] = {};
      ssize_t la = readlink((a + r).c_str(), ta, sizeof ta - 1);
      ssize_t lb = readlink((b + r).c_str(), tb, sizeof tb - 1);
      if (la < 0 || la != lb || std::string(ta) != std::string(tb))
        diffs.push_back(r + ": link targets differ");
      continue;
    }
    if ((sa.st_mode & 07777) != (sb.st_mode & 07777)) diffs.push_back(r + ": modes differ");
    if (sa.st_size != sb.st_size) diffs.push_back(r + ": sizes differ");
    if (ReadFile(a + r) != ReadFile(b + r)) diffs.push_back(r + ": contents differ");
    char xa[128] = {}, xb[128] = {};
    ssize_t la = lgetxattr((a + r).c_str(), "user.x", xa, sizeof xa);
    ssize_t lb = lgetxattr((b + r).c_str(), "user.x", xb, sizeof xb);
    if (la != lb || std::string(xa, std::max<ssize_t>(la, 0)) != std::string(xb, std::max<ssize_t>(lb, 0)))
      diffs.push_back(r + ": xattrs differ");
  }
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size() && i < 20; ++i) out += v[i] + "\n";
  return out;
}

// Commits run all along (journal records of what changed, and now and then a snapshot), so the
// remount at the end replays a long journal of concurrent changes.
TEST_F(UpperTest, RandomOperationsFromSeveralThreadsMatchAPlainDirectory) {
  const RootHash root = SealDefaultLower();
  UpperOptions options{.dir = upper_, .expected_state = std::nullopt};
  options.compact_after = 64 * 1024;
  ASSERT_TRUE(Mount(root, options).ok());
  const std::string plain = tmp_ / "plain";
  ASSERT_EQ(mkdir(plain.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("stress").c_str(), 0755), 0);
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> mismatches(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    Trees trees{P("stress/t" + std::to_string(t)), plain + "/t" + std::to_string(t)};
    ASSERT_EQ(mkdir(trees.a.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(trees.b.c_str(), 0755), 0);
    threads.emplace_back([&mismatches, t, trees] { mismatches[t] = Stress(trees, 1000 + t).Run(); });
  }
  std::atomic<bool> done{false};
  std::vector<std::string> commit_errors;
  int commits = 0;
  std::thread committer([&] {
    while (!done.load()) {
      if (auto c = fs_->Commit(); !c.ok()) commit_errors.push_back(c.status().ToString());
      ++commits;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  for (std::thread& th : threads) th.join();
  done = true;
  committer.join();
  EXPECT_TRUE(commit_errors.empty()) << Join(commit_errors);
  EXPECT_GT(commits, 2);
  for (int t = 0; t < kThreads; ++t)
    EXPECT_TRUE(mismatches[t].empty()) << "thread " << t << "\n" << Join(mismatches[t]);

  std::vector<std::string> diffs;
  Compare(P("stress"), plain, "", diffs);
  EXPECT_TRUE(diffs.empty()) << Join(diffs);
  EXPECT_GT(Names(P("stress/t0")).size(), 2u);  // the run did leave something to compare

  ASSERT_TRUE(Remount(root).ok());
  diffs.clear();
  Compare(P("stress"), plain, "", diffs);
  EXPECT_TRUE(diffs.empty()) << "after remount:\n" << Join(diffs);
}

}  // namespace
}  // namespace sealroot::fusefs::testing
