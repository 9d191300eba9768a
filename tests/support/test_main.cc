// GoogleTest main shared by every test binary. A skipped test fails the run: CI provides root,
// FUSE and every Debian tool, so a skip can only mean a missing piece of the environment.
#include <gtest/gtest.h>

#include <cstdio>

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
}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  auto* listener = new FailOnSkip;  // owned by GoogleTest's listener list
  testing::UnitTest::GetInstance()->listeners().Append(listener);
  int rc = RUN_ALL_TESTS();
  if (rc == 0 && listener->skipped() > 0) rc = 1;
  return rc;
}
