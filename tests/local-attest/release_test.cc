// Key release between in-process sim enclaves over a real unix socket: policy refusals with
// their reasons, the release message schema, and hostile peers (truncated, oversized, stalled)
// while the server keeps serving.
#include "local-attest/release.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <condition_variable>
#include <mutex>

#include "base/fd.h"
#include "local-attest/channel.h"
#include "local-attest/dh.h"
#include "local-attest/sim.h"
#include "tests/support/process.h"

namespace sealroot::local_attest {
namespace {

using namespace std::chrono_literals;

const Sha256Digest kSpec = Sha256Of(std::string_view("process spec"));

local_attest::sgx::EnclaveIdentity AppIdentity(std::string_view container) {
  local_attest::sgx::EnclaveIdentity id;
  id.mr_enclave.fill(0xa0);
  id.mr_signer.fill(0x51);
  id.attributes = {.flags = local_attest::sgx::kFlagMode64Bit | local_attest::sgx::kFlagKss,
                   .xfrm = local_attest::sgx::kXfrmLegacy};
  id.isv_prod_id = 2;
  id.isv_svn = 5;
  id.config_id = ContainerConfigId(container, kSpec);
  return id;
}

local_attest::sgx::EnclaveIdentity StubIdentity() {
  local_attest::sgx::EnclaveIdentity id = AppIdentity("");
  id.mr_enclave.fill(0x5b);
  id.config_id = {};
  return id;
}

KeyRelease Release(std::string container) {
  KeyRelease r;
  r.container_id = std::move(container);
  r.spec_digest = kSpec;
  ReleasedRoot root;
  root.name = "rootfs";
  root.root_hash.fill(0x42);
  root.key = SecretBytes(std::vector<std::uint8_t>(32, 0x77));
  r.roots.push_back(std::move(root));
  r.upper_key = SecretBytes(std::vector<std::uint8_t>(kContainerKeySize, 0x55));
  r.exec_key = SecretBytes(std::vector<std::uint8_t>(kContainerKeySize, 0x66));
  return r;
}

// Collects the server's per-session outcomes.
class Outcomes {
 public:
  std::function<void(const Status&)> Callback() {
    return [this](const Status& s) {
      std::lock_guard lock(mu_);
      seen_.push_back(s);
      cv_.notify_all();
    };
  }
  Status Next() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, 20s, [&] { return taken_ < seen_.size(); }))
      return Internal("no session outcome");
    return seen_[taken_++];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Status> seen_;
  std::size_t taken_ = 0;
};

class ReleaseTest : public ::testing::Test {
 protected:
  void StartServer(IdentityPolicy policy, std::chrono::milliseconds timeout = 5000ms) {
    ReleaseServerOptions options;
    options.io_timeout = timeout;
    options.on_session = outcomes_.Callback();
    server_ =
        KeyReleaseServer::Start(*stub_tee_, socket_, std::move(policy), Release("ctr-a"), options).value();
  }
  IdentityPolicy AppPolicy() {
    IdentityPolicy p;
    p.mr_enclave = AppIdentity("ctr-a").mr_enclave;
    return p;
  }
  IdentityPolicy StubPolicy() {
    IdentityPolicy p;
    p.mr_enclave = StubIdentity().mr_enclave;
    return p;
  }
  Result<KeyRelease> Fetch(const local_attest::sgx::EnclaveIdentity& app) {
    auto tee = local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(app).value());
    return FetchKeyRelease(*tee, socket_, StubPolicy());
  }
  UniqueFd RawConnect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, socket_.c_str());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }
  // The server still serves a legitimate app after whatever the test did.
  void ExpectStillServing() {
    auto r = Fetch(AppIdentity("ctr-a"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(outcomes_.Next().ok());
  }

  testing::TempDir dir_;
  std::string socket_ = dir_ / "ctr-a.sock";
  std::unique_ptr<local_attest::sgx::Tee> stub_tee_ =
      local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(StubIdentity()).value());
  Outcomes outcomes_;
  std::unique_ptr<KeyReleaseServer> server_;
};

TEST_F(ReleaseTest, ExpectedAppReceivesTheRelease) {
  StartServer(AppPolicy());
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto r = Fetch(AppIdentity("ctr-a"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->container_id, "ctr-a");
  EXPECT_EQ(r->spec_digest, kSpec);
  ASSERT_EQ(r->roots.size(), 1u);
  EXPECT_EQ(r->roots[0].name, "rootfs");
  EXPECT_TRUE(r->roots[0].key == Release("x").roots[0].key);
  EXPECT_TRUE(outcomes_.Next().ok());
}

TEST_F(ReleaseTest, EveryPolicyRefusalNamesItsCheck) {
  IdentityPolicy policy;
  policy.signer = SignerPolicy{.mr_signer = AppIdentity("").mr_signer, .isv_prod_id = 2, .min_isv_svn = 5};
  StartServer(policy);
  struct Case {
    const char* name;
    local_attest::sgx::EnclaveIdentity id;
    const char* reason;
  };
  std::vector<Case> cases;
  cases.push_back({"other signer", AppIdentity("ctr-a"), "MRSIGNER mismatch"});
  cases.back().id.mr_signer.fill(0x99);
  cases.push_back({"other product", AppIdentity("ctr-a"), "ISVPRODID 3"});
  cases.back().id.isv_prod_id = 3;
  cases.push_back({"old svn", AppIdentity("ctr-a"), "ISVSVN 4 is below the minimum 5"});
  cases.back().id.isv_svn = 4;
  cases.push_back({"debug", AppIdentity("ctr-a"), "DEBUG enclave refused"});
  cases.back().id.attributes.flags |= local_attest::sgx::kFlagDebug;
  cases.push_back({"other container", AppIdentity("ctr-b"), "CONFIGID mismatch"});
  for (const Case& c : cases) {
    auto r = Fetch(c.id);
    EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << c.name << ": " << r.status().ToString();
    Status outcome = outcomes_.Next();
    EXPECT_NE(outcome.message().find(c.reason), std::string::npos) << c.name << ": " << outcome.ToString();
  }
  ExpectStillServing();
}

TEST_F(ReleaseTest, MrEnclavePolicyRefusesAnotherBinary) {
  StartServer(AppPolicy());
  local_attest::sgx::EnclaveIdentity impostor = AppIdentity("ctr-a");
  impostor.mr_enclave[0] ^= 1;
  EXPECT_FALSE(Fetch(impostor).ok());
  EXPECT_NE(outcomes_.Next().message().find("MRENCLAVE mismatch"), std::string::npos);
}

TEST_F(ReleaseTest, BootRefusesAnUnexpectedStub) {
  StartServer(AppPolicy());
  auto tee =
      local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(AppIdentity("ctr-a")).value());
  IdentityPolicy expect_other;
  expect_other.mr_enclave.emplace();
  expect_other.mr_enclave->fill(0xee);
  auto r = FetchKeyRelease(*tee, socket_, expect_other);
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("stub enclave"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(outcomes_.Next().ok());  // the boot hung up before taking the release
  ExpectStillServing();
}

TEST_F(ReleaseTest, TruncatedAndOversizedFramesFailCleanly) {
  StartServer(AppPolicy());
  const auto deadline = [] { return std::chrono::steady_clock::now() + 5s; };
  {
    UniqueFd fd = RawConnect();
    ASSERT_TRUE(ReadFrame(fd.get(), kMaxFrameSize, deadline()).ok());  // msg1
    const std::uint8_t partial[] = {0, 0, 2, 0, 1, 2, 3};              // says 512, sends 3
    ASSERT_EQ(::send(fd.get(), partial, sizeof(partial), MSG_NOSIGNAL), 7);
    ::shutdown(fd.get(), SHUT_WR);
    Status s = outcomes_.Next();
    EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
    EXPECT_NE(s.message().find("truncated frame"), std::string::npos);
  }
  {
    UniqueFd fd = RawConnect();
    ASSERT_TRUE(ReadFrame(fd.get(), kMaxFrameSize, deadline()).ok());
    const std::uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
    ASSERT_EQ(::send(fd.get(), huge, sizeof(huge), MSG_NOSIGNAL), 4);
    Status s = outcomes_.Next();
    EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
    EXPECT_NE(s.message().find("oversized frame"), std::string::npos);
  }
  {
    UniqueFd fd = RawConnect();
    ASSERT_TRUE(ReadFrame(fd.get(), kMaxFrameSize, deadline()).ok());
    std::vector<std::uint8_t> wrong(100, 0);
    ASSERT_TRUE(WriteFrame(fd.get(), wrong, deadline()).ok());
    Status s = outcomes_.Next();
    EXPECT_NE(s.message().find("msg2: expected 512 bytes"), std::string::npos) << s.ToString();
  }
  ExpectStillServing();
}

TEST_F(ReleaseTest, TamperedMsg2OnTheWireIsRefusedAndServingContinues) {
  StartServer(AppPolicy());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  auto tee =
      local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(AppIdentity("ctr-a")).value());
  for (std::size_t offset :
       {10u /* g_b */, 64u + 320u /* report_data */, 64u + 384u /* key_id */, 500u /* cmac */}) {
    UniqueFd fd = RawConnect();
    DhInitiator dh = DhInitiator::Create(*tee).value();
    auto msg1 = ReadFrame(fd.get(), kMaxFrameSize, deadline).value();
    auto msg2 = dh.ProcessMsg1(msg1).value();
    msg2[offset] ^= 0x02;
    ASSERT_TRUE(WriteFrame(fd.get(), msg2, deadline).ok());
    EXPECT_EQ(ReadFrame(fd.get(), kMaxFrameSize, deadline).status().code(), Code::kUnavailable);  // closed
    Status s = outcomes_.Next();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("msg2"), std::string::npos) << s.ToString();
  }
  ExpectStillServing();
}

TEST_F(ReleaseTest, StalledPeerTimesOutWhileOthersAreServed) {
  StartServer(AppPolicy(), 1500ms);
  UniqueFd stalled = RawConnect();  // connects, never answers msg1
  ExpectStillServing();             // served meanwhile, by another session thread
  Status s = outcomes_.Next();
  EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << s.ToString();
  EXPECT_NE(s.message().find("stalled"), std::string::npos);
}

TEST_F(ReleaseTest, StopEndsSessionsInFlightAndRemovesTheSocket) {
  StartServer(AppPolicy(), 60000ms);
  UniqueFd stalled = RawConnect();
  ASSERT_TRUE(ReadFrame(stalled.get(), kMaxFrameSize, std::chrono::steady_clock::now() + 5s).ok());
  server_->Stop();
  EXPECT_FALSE(outcomes_.Next().ok());
  struct stat st {};
  EXPECT_NE(::stat(socket_.c_str(), &st), 0);
}

TEST_F(ReleaseTest, ALiveSocketIsNotTakenOverButAStaleOneIs) {
  StartServer(AppPolicy());
  auto second = KeyReleaseServer::Start(*stub_tee_, socket_, AppPolicy(), Release("ctr-a"));
  EXPECT_EQ(second.status().code(), Code::kAlreadyExists) << second.status().ToString();
  EXPECT_FALSE(outcomes_.Next().ok());  // the liveness probe: connected, then hung up
  ExpectStillServing();
  server_.reset();  // removes its socket; leave a stale socket file behind instead
  UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, socket_.c_str());
  ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  StartServer(AppPolicy());
  ExpectStillServing();
}

TEST(ReleaseMessage, RoundTripsAndRefusesMalformedInput) {
  for (bool pinned : {false, true}) {
    KeyRelease r = Release("container-1");
    if (pinned) r.upper_root = Sha256Of(std::string_view("upper state"));
    SecretBytes encoded = EncodeKeyRelease(r).value();
    KeyRelease back = DecodeKeyRelease(encoded.span()).value();
    EXPECT_EQ(back.container_id, "container-1");
    EXPECT_EQ(back.roots[0].root_hash, r.roots[0].root_hash);
    EXPECT_TRUE(back.roots[0].key == r.roots[0].key);
    EXPECT_TRUE(back.upper_key == r.upper_key);
    EXPECT_TRUE(back.exec_key == r.exec_key);
    EXPECT_EQ(back.upper_root, r.upper_root);
    std::vector<std::uint8_t> bytes(encoded.span().begin(), encoded.span().end());
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      EXPECT_FALSE(DecodeKeyRelease(std::span(bytes).first(cut)).ok()) << "truncated at " << cut;
    }
    bytes.push_back(0);
    EXPECT_FALSE(DecodeKeyRelease(bytes).ok());  // trailing byte
  }
  KeyRelease r = Release("container-1");
  std::vector<std::uint8_t> bytes = [&] {
    SecretBytes e = EncodeKeyRelease(r).value();
    return std::vector<std::uint8_t>(e.span().begin(), e.span().end());
  }();
  bytes.back() = 2;  // the upper flag is 0 or 1
  EXPECT_FALSE(DecodeKeyRelease(bytes).ok());
  bytes.back() = 0;
  bytes[4] = 1;  // the previous version, which carried no container keys
  EXPECT_NE(DecodeKeyRelease(bytes).status().message().find("unsupported version"), std::string::npos);
  r.exec_key = SecretBytes(16);
  EXPECT_FALSE(EncodeKeyRelease(r).ok());
  r = Release("container-1");
  r.upper_key = SecretBytes();
  EXPECT_FALSE(EncodeKeyRelease(r).ok());
  r = Release("container-1");
  r.roots[0].key = SecretBytes(8);
  EXPECT_FALSE(EncodeKeyRelease(r).ok());
  r.roots.clear();
  EXPECT_FALSE(EncodeKeyRelease(r).ok());
}

TEST(UpperCommitMessage, RoundTripsAndRefusesMalformedInput) {
  UpperCommit first{.previous = std::nullopt, .root = Sha256Of(std::string_view("one"))};
  UpperCommit next{.previous = first.root, .root = Sha256Of(std::string_view("two"))};
  for (const UpperCommit& c : {first, next}) {
    std::vector<std::uint8_t> bytes = EncodeUpperCommit(c);
    UpperCommit back = DecodeUpperCommit(bytes).value();
    EXPECT_EQ(back.previous, c.previous);
    EXPECT_EQ(back.root, c.root);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      EXPECT_FALSE(DecodeUpperCommit(std::span(bytes).first(cut)).ok()) << "truncated at " << cut;
    }
    bytes.push_back(0);
    EXPECT_FALSE(DecodeUpperCommit(bytes).ok());
  }
  std::vector<std::uint8_t> bytes = EncodeUpperCommit(first);
  bytes[5] = 2;  // an unknown flag
  EXPECT_FALSE(DecodeUpperCommit(bytes).ok());
}

TEST_F(ReleaseTest, TheSessionCarriesUpperCommitsToTheStubAfterTheRelease) {
  std::mutex mu;
  std::vector<UpperCommit> recorded;
  ReleaseServerOptions options;
  options.on_session = outcomes_.Callback();
  options.on_upper_commit = [&](const UpperCommit& c) {
    std::lock_guard lock(mu);
    if (c.previous.has_value() != !recorded.empty()) return FailedPrecondition("out of order");
    recorded.push_back(c);
    return OkStatus();
  };
  server_ = KeyReleaseServer::Start(*stub_tee_, socket_, AppPolicy(), Release("ctr-a"), options).value();
  auto tee =
      local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(AppIdentity("ctr-a")).value());
  auto session = OpenReleaseSession(*tee, socket_, StubPolicy());
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_TRUE(outcomes_.Next().ok());  // delivered, while the session stays open
  EXPECT_TRUE((*session)->release().exec_key == Release("x").exec_key);
  const Sha256Digest one = Sha256Of(std::string_view("one")), two = Sha256Of(std::string_view("two"));
  ASSERT_TRUE((*session)->ReportUpperCommit({.previous = std::nullopt, .root = one}).ok());
  ASSERT_TRUE((*session)->ReportUpperCommit({.previous = one, .root = two}).ok());
  Status refused = (*session)->ReportUpperCommit({.previous = std::nullopt, .root = two});
  EXPECT_EQ(refused.code(), Code::kPermissionDenied);
  EXPECT_NE(refused.message().find("out of order"), std::string::npos) << refused.ToString();
  std::lock_guard lock(mu);
  ASSERT_EQ(recorded.size(), 2u);
  EXPECT_EQ(recorded[1].previous, one);
  EXPECT_EQ(recorded[1].root, two);
}

TEST_F(ReleaseTest, AStubThatRecordsNothingRefusesReportsAndStopEndsTheSession) {
  StartServer(AppPolicy());
  auto tee =
      local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(AppIdentity("ctr-a")).value());
  auto session = OpenReleaseSession(*tee, socket_, StubPolicy());
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_EQ((*session)->ReportUpperCommit({.previous = std::nullopt, .root = kSpec}).code(),
            Code::kPermissionDenied);
  server_->Stop();
  EXPECT_FALSE((*session)->ReportUpperCommit({.previous = std::nullopt, .root = kSpec}).ok());
}

TEST(ReleaseServer, RefusesAPolicyThatNamesNobody) {
  testing::TempDir dir;
  auto tee = local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(StubIdentity()).value());
  auto s = KeyReleaseServer::Start(*tee, dir / "s.sock", IdentityPolicy{}, Release("c"));
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace sealroot::local_attest
