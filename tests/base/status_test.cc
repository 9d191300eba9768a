#include "base/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace sealroot {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  SR_ASSIGN_OR_RETURN(int half, Half(x));
  SR_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(StatusTest, ContextReadsOutermostFirst) {
  Status s = DataLoss("digest mismatch").WithContext("layer 1").WithContext("unpacking x");
  EXPECT_EQ(s.message(), "unpacking x: layer 1: digest mismatch");
  EXPECT_EQ(s.ToString(), "DATA_LOSS: unpacking x: layer 1: digest mismatch");
  EXPECT_TRUE(OkStatus().WithContext("anything").ok());
}

TEST(StatusTest, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "odd: 3");
}

TEST(StatusTest, ErrnoMapsBothWays) {
  EXPECT_EQ(ErrnoStatus("open x", ENOENT).code(), Code::kNotFound);
  EXPECT_EQ(StatusToErrno(DataLoss("bad mac")), EIO);
  EXPECT_EQ(StatusToErrno(NotFound("x")), ENOENT);
}

}  // namespace
}  // namespace sealroot
