// The project's one error convention: Status (a code plus a message that says what was being
// done) and Result<T> (a value or a Status). Codes use google.rpc.Code numbering so the agent
// maps them onto gRPC/ttrpc statuses unchanged.
//
// Thread-safety: value types; distinct objects may be used from distinct threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sealroot {

enum class Code : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,  // integrity failures: digest, MAC, tampered store
  kUnauthenticated = 16,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  // A Status that answers with exactly `err` (a filesystem's reply: ENOTEMPTY, EXDEV, ... have
  // no code of their own); the code follows err's class as ErrnoStatus's does.
  static Status FromErrno(int err, std::string message);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // The errno given to FromErrno, kept through copies and WithContext; 0 for any other Status.
  int sys_errno() const { return errno_; }

  // Returns this status with "context: " prepended, so errors read outermost-first:
  // "unpacking docker://x/y: layer sha256:ab..: blob digest mismatch".
  Status WithContext(std::string_view context) const&;
  Status WithContext(std::string_view context) &&;

  // "CODE_NAME: message"
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_ && a.errno_ == b.errno_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
  int errno_ = 0;
};

inline Status OkStatus() {
  return Status();
}
Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status PermissionDenied(std::string message);
Status FailedPrecondition(std::string message);
Status DataLoss(std::string message);
Status Unauthenticated(std::string message);
Status Unavailable(std::string message);
Status Internal(std::string message);
Status Unimplemented(std::string message);
Status ResourceExhausted(std::string message);
Status OutOfRange(std::string message);
Status Cancelled(std::string message);
Status DeadlineExceeded(std::string message);

// A Status from a failed OS call: the code follows the errno class (ENOENT -> kNotFound, EACCES
// -> kPermissionDenied, ...); the message is "what: strerror(err)". The errno itself is not
// carried: it describes the host's files, not the caller's request (a FUSE caller gets it by
// class; Status::FromErrno is for an exact answer).
Status ErrnoStatus(std::string_view what, int err);
// The errno a Status corresponds to (for FUSE replies): its sys_errno() when it has one, else
// by code (kDataLoss -> EIO, kNotFound -> ENOENT, ...).
int StatusToErrno(const Status& status);

// A value or an error. Accessing value() of an error Result is a programming error (asserts).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result constructed from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const& {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  Status status() && { return ok() ? Status() : std::move(std::get<Status>(v_)); }

  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::move(std::get<T>(v_));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sealroot

#define SR_CONCAT_INNER(a, b) a##b
#define SR_CONCAT(a, b) SR_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define SR_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::sealroot::Status sr_status_ = (expr);  \
    if (!sr_status_.ok()) return sr_status_; \
  } while (0)

// Like SR_RETURN_IF_ERROR, adding context to the error.
#define SR_RETURN_IF_ERROR_CTX(expr, ctx)                                \
  do {                                                                   \
    ::sealroot::Status sr_status_ = (expr);                              \
    if (!sr_status_.ok()) return std::move(sr_status_).WithContext(ctx); \
  } while (0)

// `SR_ASSIGN_OR_RETURN(auto x, F())` declares x from a Result or returns its error.
#define SR_ASSIGN_OR_RETURN(lhs, expr) SR_ASSIGN_OR_RETURN_IMPL(SR_CONCAT(sr_result_, __LINE__), lhs, expr)
#define SR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()
