// GoogleTest main shared by every test binary. A skipped test fails the run: CI provides root,
// FUSE and every Debian tool, so a skip can only mean a missing piece of the environment.
// Each test gets its own empty $XDG_CACHE_HOME, so the programs it runs (the `sealroot` tool
// keeps a blob cache there) never reuse what an earlier test fetched.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "tests/support/process.h"

namespace {
class FailOnSkip : public testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const testing::TestInfo& info) override {
    if (info.result()->Skipped()) {
      std::fprintf(stderr, "SKIPPED (counts as a failure): %s.%s\n", info.test_suite_name(), info.name());
      ++skipped_;
    }
  }
  int skipped() const { return skipped_; }

 private:
  int skipped_ = 0;
};
class FreshCachePerTest : public testing::EmptyTestEventListener {
 public:
  void OnTestStart(const testing::TestInfo&) override {
    cache_ = std::make_unique<sealroot::testing::TempDir>();
    ::setenv("XDG_CACHE_HOME", cache_->path().c_str(), 1);
  }
  void OnTestEnd(const testing::TestInfo&) override {
    ::unsetenv("XDG_CACHE_HOME");
    cache_.reset();
  }

 private:
  std::unique_ptr<sealroot::testing::TempDir> cache_;
};
}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  auto* listener = new FailOnSkip;  // owned by GoogleTest's listener list
  testing::UnitTest::GetInstance()->listeners().Append(listener);
  testing::UnitTest::GetInstance()->listeners().Append(new FreshCachePerTest);
  int rc = RUN_ALL_TESTS();
  if (rc == 0 && listener->skipped() > 0) rc = 1;
  return rc;
}
