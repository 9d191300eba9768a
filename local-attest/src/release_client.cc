// The app enclave's side of key release (sealroot-boot).
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "base/fd.h"
#include "base/socket.h"
#include "base/thread_annotations.h"
#include "local-attest/channel.h"
#include "local-attest/dh.h"
#include "local-attest/release.h"

namespace sealroot::local_attest {
namespace {

constexpr char kAck[] = "sealroot-release-ack";
constexpr std::string_view kRecorded = "recorded";
constexpr std::string_view kRefused = "refused: ";

Result<SecureChannel> Exchange(local_attest::sgx::Tee& tee, int fd, const IdentityPolicy& stub_policy,
                               Deadline deadline, KeyRelease& out) {
  SR_ASSIGN_OR_RETURN(DhInitiator dh, DhInitiator::Create(tee));
  SR_ASSIGN_OR_RETURN(auto msg1, ReadFrame(fd, kMaxFrameSize, deadline));
  SR_ASSIGN_OR_RETURN(auto msg2, dh.ProcessMsg1(msg1));
  SR_RETURN_IF_ERROR_CTX(WriteFrame(fd, msg2, deadline), "sending msg2");
  Result<std::vector<std::uint8_t>> msg3 = ReadFrame(fd, kMaxFrameSize, deadline);
  if (!msg3.ok() && msg3.status().code() == Code::kUnavailable) {
    return PermissionDenied(
        "the stub refused this enclave after msg2 (the stub's log names the failed check)");
  }
  if (!msg3.ok()) return std::move(msg3).status().WithContext("msg3");
  SR_ASSIGN_OR_RETURN(local_attest::sgx::ReportBody stub, dh.ProcessMsg3(*msg3));
  SR_RETURN_IF_ERROR_CTX(CheckIdentity(stub, stub_policy), "stub enclave " + DescribeIdentity(stub));
  SR_ASSIGN_OR_RETURN(SecureChannel channel, SecureChannel::Create(dh.TakeAek(), ChannelRole::kInitiator));
  SR_ASSIGN_OR_RETURN(auto sealed, ReadFrame(fd, kMaxFrameSize, deadline));
  Result<SecretBytes> plain = channel.Open(sealed);
  if (!plain.ok()) return std::move(plain).status().WithContext("release message");
  SR_ASSIGN_OR_RETURN(KeyRelease release, DecodeKeyRelease(plain->span()));
  // The release must be for the container this enclave was launched for (its CONFIGID).
  SR_ASSIGN_OR_RETURN(local_attest::sgx::Report self,
                      tee.CreateReport(local_attest::sgx::TargetInfo{}, local_attest::sgx::ReportData{}));
  if (!ConstantTimeEqual(self.body.config_id, ContainerConfigId(release.container_id, release.spec_digest))) {
    return PermissionDenied("release is for container '" + release.container_id +
                            "', which is not the container this enclave was launched for (CONFIGID)");
  }
  SR_ASSIGN_OR_RETURN(auto ack, channel.Seal(AsBytes(kAck)));
  SR_RETURN_IF_ERROR_CTX(WriteFrame(fd, ack, deadline), "sending the acknowledgement");
  out = std::move(release);
  return channel;
}

class Session final : public ReleaseSession {
 public:
  Session(UniqueFd fd, SecureChannel channel, KeyRelease release, std::chrono::milliseconds timeout)
      : fd_(std::move(fd)), release_(std::move(release)), timeout_(timeout), channel_(std::move(channel)) {}

  KeyRelease& release() override { return release_; }

  Status ReportUpperCommit(const UpperCommit& commit) override {
    MutexLock lock(mu_);
    const Deadline deadline = std::chrono::steady_clock::now() + timeout_;
    SR_ASSIGN_OR_RETURN(auto sealed, channel_.Seal(EncodeUpperCommit(commit)));
    SR_RETURN_IF_ERROR_CTX(WriteFrame(fd_.get(), sealed, deadline), "reporting an upper commit to the stub");
    SR_ASSIGN_OR_RETURN(auto frame, ReadFrame(fd_.get(), kMaxFrameSize, deadline));
    SR_ASSIGN_OR_RETURN(SecretBytes answer, channel_.Open(frame));
    const std::string_view text = AsChars(answer.span());
    if (text == kRecorded) return OkStatus();
    if (text.starts_with(kRefused)) {
      return PermissionDenied("the stub refused the upper commit: " +
                              std::string(text.substr(kRefused.size())));
    }
    return DataLoss("the stub's answer to an upper commit is malformed");
  }

 private:
  const UniqueFd fd_;
  KeyRelease release_;
  const std::chrono::milliseconds timeout_;
  Mutex mu_;
  SecureChannel channel_ SR_GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<ReleaseSession>> OpenReleaseSession(local_attest::sgx::Tee& tee,
                                                           const std::string& socket_path,
                                                           const IdentityPolicy& stub_policy,
                                                           const FetchOptions& options) {
  const std::string ctx = "key release from " + socket_path;
  SR_RETURN_IF_ERROR_CTX(stub_policy.Validate(), "stub policy");
  Result<UniqueFd> connected = ConnectUnix(socket_path);
  if (!connected.ok()) return std::move(connected).status().WithContext("connecting to the stub");
  UniqueFd fd = std::move(*connected);
  KeyRelease release;
  Result<SecureChannel> channel =
      Exchange(tee, fd.get(), stub_policy, std::chrono::steady_clock::now() + options.timeout, release);
  if (!channel.ok()) return std::move(channel).status().WithContext(ctx);
  return std::unique_ptr<ReleaseSession>(
      std::make_unique<Session>(std::move(fd), std::move(*channel), std::move(release), options.timeout));
}

Result<KeyRelease> FetchKeyRelease(local_attest::sgx::Tee& tee, const std::string& socket_path,
                                   const IdentityPolicy& stub_policy, const FetchOptions& options) {
  SR_ASSIGN_OR_RETURN(std::unique_ptr<ReleaseSession> session,
                      OpenReleaseSession(tee, socket_path, stub_policy, options));
  return std::move(session->release());
}

}  // namespace sealroot::local_attest
