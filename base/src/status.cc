#include "base/status.h"

#include <cassert>
#include <cerrno>
#include <cstring>

namespace sealroot {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kCancelled:
      return "CANCELLED";
    case Code::kUnknown:
      return "UNKNOWN";
    case Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case Code::kNotFound:
      return "NOT_FOUND";
    case Code::kAlreadyExists:
      return "ALREADY_EXISTS";
    case Code::kPermissionDenied:
      return "PERMISSION_DENIED";
    case Code::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case Code::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case Code::kAborted:
      return "ABORTED";
    case Code::kOutOfRange:
      return "OUT_OF_RANGE";
    case Code::kUnimplemented:
      return "UNIMPLEMENTED";
    case Code::kInternal:
      return "INTERNAL";
    case Code::kUnavailable:
      return "UNAVAILABLE";
    case Code::kDataLoss:
      return "DATA_LOSS";
    case Code::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

Status Status::WithContext(std::string_view context) const& {
  Status copy = *this;
  return std::move(copy).WithContext(context);
}

Status Status::WithContext(std::string_view context) && {
  if (ok() || context.empty()) return std::move(*this);
  std::string message(context);
  message += ": ";
  message += message_;
  message_ = std::move(message);
  return std::move(*this);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status InvalidArgument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
Status NotFound(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
Status AlreadyExists(std::string m) {
  return {Code::kAlreadyExists, std::move(m)};
}
Status PermissionDenied(std::string m) {
  return {Code::kPermissionDenied, std::move(m)};
}
Status FailedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
Status DataLoss(std::string m) {
  return {Code::kDataLoss, std::move(m)};
}
Status Unauthenticated(std::string m) {
  return {Code::kUnauthenticated, std::move(m)};
}
Status Unavailable(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}
Status Internal(std::string m) {
  return {Code::kInternal, std::move(m)};
}
Status Unimplemented(std::string m) {
  return {Code::kUnimplemented, std::move(m)};
}
Status ResourceExhausted(std::string m) {
  return {Code::kResourceExhausted, std::move(m)};
}
Status OutOfRange(std::string m) {
  return {Code::kOutOfRange, std::move(m)};
}
Status Cancelled(std::string m) {
  return {Code::kCancelled, std::move(m)};
}
Status DeadlineExceeded(std::string m) {
  return {Code::kDeadlineExceeded, std::move(m)};
}

namespace {
Code CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Code::kNotFound;
    case EEXIST:
    case ENOTEMPTY:
      return Code::kAlreadyExists;
    case EACCES:
    case EPERM:
    case EROFS:
      return Code::kPermissionDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
    case EISDIR:
    case EXDEV:
      return Code::kInvalidArgument;
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EFBIG:
      return Code::kResourceExhausted;
    case EAGAIN:
    case EBUSY:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
      return Code::kUnavailable;
    case ETIMEDOUT:
      return Code::kDeadlineExceeded;
    case EINTR:
    case ECANCELED:
      return Code::kCancelled;
    case ENOSYS:
    case EOPNOTSUPP:
      return Code::kUnimplemented;
    case EIO:
    case EBADMSG:
      return Code::kDataLoss;
    default:
      return Code::kInternal;
  }
}
}  // namespace

Status Status::FromErrno(int err, std::string message) {
  assert(err > 0 && "FromErrno needs an errno");
  Status status(CodeForErrno(err), std::move(message));
  status.errno_ = err;
  return status;
}

Status ErrnoStatus(std::string_view what, int err) {
  std::string message(what);
  message += ": ";
  message += std::strerror(err);
  return {CodeForErrno(err), std::move(message)};
}

int StatusToErrno(const Status& status) {
  if (status.sys_errno() != 0) return status.sys_errno();
  switch (status.code()) {
    case Code::kOk:
      return 0;
    case Code::kNotFound:
      return ENOENT;
    case Code::kAlreadyExists:
      return EEXIST;
    case Code::kPermissionDenied:
      return EACCES;
    case Code::kInvalidArgument:
      return EINVAL;
    case Code::kResourceExhausted:
      return ENOSPC;
    case Code::kUnimplemented:
      return ENOSYS;
    case Code::kUnavailable:
      return EAGAIN;
    case Code::kCancelled:
      return EINTR;
    case Code::kDeadlineExceeded:
      return ETIMEDOUT;
    default:
      return EIO;
  }
}

}  // namespace sealroot
