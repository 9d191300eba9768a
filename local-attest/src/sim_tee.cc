// The sim backend's two ends: SimCpuServer (in the launcher) and the Tee implementations an
// enclave uses (remote over the inherited socket, or in-process for tests and benchmarks).
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/thread_annotations.h"
#include "local-attest/sim.h"
#include "local-attest/src/tee_internal.h"

namespace sealroot::local_attest::sgx {
namespace {

enum : std::uint32_t { kOpReport = 1, kOpGetKey = 2, kOpQuote = 3 };
constexpr std::uint32_t kStatusMalformed = 0xffffffffu;
// A refused EGETKEY replies with its Status code (base/status.h, never 0) and message.
constexpr std::uint32_t kMaxStatusCode = static_cast<std::uint32_t>(Code::kUnauthenticated);
constexpr std::size_t kMaxPacket = 4 + sizeof(TargetInfo) + sizeof(ReportData);
constexpr std::size_t kMaxReply = 4 + 16 * 1024;  // a sim quote is about 3 KiB

std::uint32_t LoadU32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void AppendU32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  out.insert(out.end(), p, p + 4);
}

// One request -> one reply packet.
std::vector<std::uint8_t> Answer(const SimCpu& cpu, std::span<const std::uint8_t> request) {
  std::vector<std::uint8_t> reply;
  if (request.size() == 4 + sizeof(TargetInfo) + sizeof(ReportData) && LoadU32(request.data()) == kOpReport) {
    TargetInfo target;
    ReportData data;
    std::memcpy(&target, request.data() + 4, sizeof(target));
    std::memcpy(data.data(), request.data() + 4 + sizeof(target), data.size());
    Report report = cpu.CreateReport(target, data);
    AppendU32(reply, 0);
    auto bytes = BytesOf(report);
    reply.insert(reply.end(), bytes.begin(), bytes.end());
    return reply;
  }
  if (request.size() == 4 + sizeof(KeyRequest) && LoadU32(request.data()) == kOpGetKey) {
    KeyRequest key_request;
    std::memcpy(&key_request, request.data() + 4, sizeof(key_request));
    Result<SecretBytes> key = cpu.GetKey(key_request);
    if (!key.ok()) {
      AppendU32(reply, static_cast<std::uint32_t>(key.status().code()));
      const std::string& why = key.status().message();
      reply.insert(reply.end(), why.begin(), why.end());
      return reply;
    }
    AppendU32(reply, 0);
    reply.insert(reply.end(), key->span().begin(), key->span().end());
    return reply;
  }
  if (request.size() == 4 + sizeof(ReportData) && LoadU32(request.data()) == kOpQuote) {
    ReportData data;
    std::memcpy(data.data(), request.data() + 4, data.size());
    Result<std::shared_ptr<const SimQuotingEnclave>> qe = DefaultSimQuotingEnclave();
    Result<std::vector<std::uint8_t>> quote =
        qe.ok() ? cpu.CreateQuote(data, **qe) : Result<std::vector<std::uint8_t>>(qe.status());
    if (!quote.ok() || quote->size() + 4 > kMaxReply) {
      AppendU32(reply, kStatusMalformed);
      return reply;
    }
    AppendU32(reply, 0);
    reply.insert(reply.end(), quote->begin(), quote->end());
    return reply;
  }
  AppendU32(reply, kStatusMalformed);
  return reply;
}

// A Tee whose CPU is reached through `Call` (remote) or directly (in-process).
class InProcessSimTee final : public Tee {
 public:
  InProcessSimTee(SimCpu cpu, std::shared_ptr<const SimQuotingEnclave> qe)
      : cpu_(std::move(cpu)), qe_(std::move(qe)) {}
  std::string_view backend() const override { return "sim"; }
  Result<TargetInfo> SelfTargetInfo() override {
    return TargetInfoFromReport(cpu_.CreateReport(TargetInfo{}, ReportData{}).body);
  }
  Result<Report> CreateReport(const TargetInfo& target, const ReportData& data) override {
    return cpu_.CreateReport(target, data);
  }
  Status VerifyReport(const Report& report) override {
    return internal::VerifyReportWithReportKey(*this, report);
  }
  Result<SecretBytes> GetKey(const KeyRequest& request) override { return cpu_.GetKey(request); }
  Result<std::vector<std::uint8_t>> CreateQuote(const ReportData& data) override {
    if (qe_) return cpu_.CreateQuote(data, *qe_);
    SR_ASSIGN_OR_RETURN(auto qe, DefaultSimQuotingEnclave());
    return cpu_.CreateQuote(data, *qe);
  }

 private:
  const SimCpu cpu_;
  const std::shared_ptr<const SimQuotingEnclave> qe_;
};

class RemoteSimTee final : public Tee {
 public:
  explicit RemoteSimTee(UniqueFd socket) : socket_(std::move(socket)) {}
  std::string_view backend() const override { return "sim"; }

  Result<TargetInfo> SelfTargetInfo() override {
    SR_ASSIGN_OR_RETURN(Report self, CreateReport(TargetInfo{}, ReportData{}));
    return TargetInfoFromReport(self.body);
  }

  Result<Report> CreateReport(const TargetInfo& target, const ReportData& data) override {
    std::vector<std::uint8_t> request;
    AppendU32(request, kOpReport);
    auto t = BytesOf(target);
    request.insert(request.end(), t.begin(), t.end());
    request.insert(request.end(), data.begin(), data.end());
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> reply, Call(request, "EREPORT"));
    return StructFromBytes<Report>(reply, "sim EREPORT reply");
  }

  Status VerifyReport(const Report& report) override {
    return internal::VerifyReportWithReportKey(*this, report);
  }

  Result<SecretBytes> GetKey(const KeyRequest& key_request) override {
    std::vector<std::uint8_t> request;
    AppendU32(request, kOpGetKey);
    auto k = BytesOf(key_request);
    request.insert(request.end(), k.begin(), k.end());
    SR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> reply, Call(request, "EGETKEY"));
    if (reply.size() != 16) return Internal("sim EGETKEY: reply is not a 128-bit key");
    SecretBytes key(reply);
    SecureWipe(reply);
    return key;
  }

  Result<std::vector<std::uint8_t>> CreateQuote(const ReportData& data) override {
    std::vector<std::uint8_t> request;
    AppendU32(request, kOpQuote);
    request.insert(request.end(), data.begin(), data.end());
    return Call(request, "QUOTE");
  }

 private:
  // Sends one request, returns the reply payload after a zero status.
  Result<std::vector<std::uint8_t>> Call(std::span<const std::uint8_t> request, const char* what) {
    MutexLock lock(mu_);
    if (::send(socket_.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      return Unavailable(std::string("sim ") + what +
                         ": the launcher (simulated CPU) is gone: " + std::strerror(errno));
    }
    std::vector<std::uint8_t> reply(kMaxReply);
    ssize_t n;
    do {
      n = ::recv(socket_.get(), reply.data(), reply.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 4) return Unavailable(std::string("sim ") + what + ": no reply from the launcher");
    reply.resize(static_cast<std::size_t>(n));
    std::uint32_t status = LoadU32(reply.data());
    reply.erase(reply.begin(), reply.begin() + 4);
    if (status != 0 && status <= kMaxStatusCode) {
      return Status(static_cast<Code>(status), std::string("sim ") + what + ": " + AsCharsCopy(reply));
    }
    if (status != 0) return Internal(std::string("sim ") + what + ": the launcher refused the request");
    return reply;
  }

  static std::string AsCharsCopy(std::span<const std::uint8_t> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }

  Mutex mu_;
  UniqueFd socket_ SR_GUARDED_BY(mu_);
};

}  // namespace

Status SimCpuServer::Serve() {
  std::array<std::uint8_t, kMaxPacket + 1> buffer;
  for (;;) {
    ssize_t n = ::recv(socket_.get(), buffer.data(), buffer.size(), 0);
    if (n == 0) return OkStatus();  // the enclave (and every copy of its end) is gone
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL || errno == EBADF || errno == ENOTCONN) return OkStatus();  // shut down
      return ErrnoStatus("sim CPU: receiving a request", errno);
    }
    std::vector<std::uint8_t> reply = Answer(cpu_, std::span(buffer.data(), static_cast<std::size_t>(n)));
    ssize_t sent = ::send(socket_.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
    SecureWipe(reply);
    SecureWipe(buffer);
    if (sent < 0) return OkStatus();  // the enclave went away mid-request
  }
}

void SimCpuServer::Shutdown() {
  ::shutdown(socket_.get(), SHUT_RDWR);
}

std::unique_ptr<Tee> NewInProcessSimTee(SimCpu cpu, std::shared_ptr<const SimQuotingEnclave> qe) {
  return std::make_unique<InProcessSimTee>(std::move(cpu), std::move(qe));
}

std::unique_ptr<Tee> NewRemoteSimTee(UniqueFd socket) {
  return std::make_unique<RemoteSimTee>(std::move(socket));
}

}  // namespace sealroot::local_attest::sgx
