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

TEST(StatusTest, FromErrnoKeepsTheCodeOfTheErrnoClass) {
  for (int err : {ENOENT,       ENOTDIR, EEXIST, ENOTEMPTY, EACCES,  EPERM,  EROFS,  EINVAL,
                  ENAMETOOLONG, EXDEV,   EISDIR, ENOSPC,    EDQUOT,  EFBIG,  EAGAIN, ETIMEDOUT,
                  EINTR,        ENOSYS,  EIO,    EBADF,     ENODATA, ERANGE, E2BIG,  ESTALE}) {
    Status exact = Status::FromErrno(err, "x");
    EXPECT_EQ(exact.code(), ErrnoStatus("x", err).code()) << err;
    EXPECT_EQ(exact.sys_errno(), err);
    EXPECT_EQ(StatusToErrno(exact), err);
    EXPECT_EQ(exact.message(), "x");
  }
}

TEST(StatusTest, TheErrnoIsKeptThroughContextAndCopies) {
  const Status exact = Status::FromErrno(ENOTEMPTY, "directory not empty");
  Status copied = exact;
  EXPECT_EQ(copied.sys_errno(), ENOTEMPTY);
  Status lvalue_context = exact.WithContext("rmdir d");
  Status rvalue_context = Status::FromErrno(EXDEV, "cross-device").WithContext("rename").WithContext("fs");
  EXPECT_EQ(lvalue_context.sys_errno(), ENOTEMPTY);
  EXPECT_EQ(lvalue_context.message(), "rmdir d: directory not empty");
  EXPECT_EQ(rvalue_context.sys_errno(), EXDEV);
  EXPECT_EQ(StatusToErrno(rvalue_context), EXDEV);
  // By class, ENOTEMPTY would answer EEXIST and EXDEV EINVAL.
  EXPECT_EQ(StatusToErrno(AlreadyExists("x")), EEXIST);
  EXPECT_EQ(StatusToErrno(InvalidArgument("x")), EINVAL);

  auto through_result = []() -> Result<int> { return Status::FromErrno(ENODATA, "no such attribute"); };
  auto propagated = [&]() -> Result<int> {
    SR_ASSIGN_OR_RETURN(int v, through_result());
    return v;
  };
  EXPECT_EQ(propagated().status().sys_errno(), ENODATA);
  auto with_ctx = [&]() -> Status {
    SR_RETURN_IF_ERROR_CTX(through_result().status(), "getxattr");
    return OkStatus();
  };
  EXPECT_EQ(StatusToErrno(with_ctx()), ENODATA);
}

TEST(StatusTest, OnlyTheTypedErrnoCounts) {
  // A host call's errno is not carried; its code answers (EPERM by class is EACCES).
  EXPECT_EQ(ErrnoStatus("chown", EPERM).sys_errno(), 0);
  EXPECT_EQ(StatusToErrno(ErrnoStatus("chown", EPERM)), EACCES);
  // Text that looks like an errno is only text: another status wrapping a message is its own code.
  Status wrapped = DataLoss("committing: " + Status::FromErrno(ENOSPC, "full [errno 28]").message());
  EXPECT_EQ(wrapped.sys_errno(), 0);
  EXPECT_EQ(StatusToErrno(wrapped), EIO);
  // Equality sees the errno.
  EXPECT_EQ(Status::FromErrno(ENOTEMPTY, "x"), Status::FromErrno(ENOTEMPTY, "x"));
  EXPECT_FALSE(Status::FromErrno(ENOTEMPTY, "x") == Status(Code::kAlreadyExists, "x"));
}

}  // namespace
}  // namespace sealroot
