// `sealroot keyprovider --kbs`, the real binary, against attesters built here from the sim TEE:
// the host asking directly gets nothing; an enclave with another identity, a DEBUG enclave, a
// replayed attestation (old nonce), a quote with one flipped bit, a quote from another sim root
// and a quote bound to another key are each refused and nothing is released; the expected
// enclave gets its resources. Every refusal is in the broker's log with its reason.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "kbs/client.h"
#include "kbs/protocol.h"
#include "local-attest/sim.h"
#include "tests/support/process.h"

namespace sealroot::kbs {
namespace {

using nlohmann::json;
using sealroot::testing::BackgroundProcess;
using sealroot::testing::BuiltProgram;
using sealroot::testing::TempDir;

constexpr std::uint8_t kTrusted = 0x11;
const std::string kLayerKey(32, '\x5c');

std::unique_ptr<local_attest::sgx::Tee> Enclave(
    std::uint8_t mrenclave, std::uint64_t extra_flags = 0,
    std::shared_ptr<const local_attest::sgx::SimQuotingEnclave> qe = nullptr) {
  local_attest::sgx::EnclaveIdentity id;
  id.mr_enclave.fill(mrenclave);
  id.mr_signer.fill(0x22);
  id.isv_prod_id = 1;
  id.attributes = {.flags = local_attest::sgx::kFlagMode64Bit | extra_flags,
                   .xfrm = local_attest::sgx::kXfrmLegacy};
  return local_attest::sgx::NewInProcessSimTee(local_attest::sgx::SimCpu::Create(id).value(), std::move(qe));
}

struct Reply {
  long status = 0;
  std::string body;
  std::string cookie;  // kbs-session-id=... from Set-Cookie
};

std::size_t Collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::size_t Header(char* data, std::size_t size, std::size_t n, void* out) {
  std::string line(data, size * n);
  if (line.rfind("Set-Cookie: ", 0) == 0)
    *static_cast<std::string*>(out) = line.substr(12, line.find(';') - 12);
  return size * n;
}

// A plain HTTP exchange, as the host (or an attacker) would make it.
Reply Call(const std::string& url, const std::string& body, const std::string& cookie, bool post) {
  Reply r;
  CURL* c = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");
  if (!cookie.empty()) headers = curl_slist_append(headers, ("Cookie: " + cookie).c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (post) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.cookie);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}

class BrokerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_TRUE(MakeDirs(*dir_ / "resources/default/key", 0700).ok());
    ASSERT_TRUE(WriteFileAtomic(*dir_ / "resources/default/key/layer", kLayerKey, 0600).ok());
    ASSERT_TRUE(WriteFileAtomic(*dir_ / "resources/default/key/other", std::string("second"), 0600).ok());
    local_attest::sgx::Measurement trusted;
    trusted.fill(kTrusted);
    json policy = {{"trusted", json::array({{{"mrenclave", HexEncode(trusted)}}})}};
    ASSERT_TRUE(WriteFileAtomic(*dir_ / "policy.json", policy.dump()).ok());
    port_ = sealroot::testing::FreePort();
    broker_ = new BackgroundProcess({BuiltProgram("sealroot"), "keyprovider", "--kbs", "--log-level", "info",
                                     "--listen", "127.0.0.1:" + std::to_string(port_), "--sim-root",
                                     "--policy", *dir_ / "policy.json", "--resources", *dir_ / "resources"},
                                    *dir_ / "broker.log");
    ASSERT_TRUE(sealroot::testing::WaitForPort(port_));
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete dir_;
  }

  static std::string Url(const std::string& path = "") {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  static std::string Log() {
    Result<std::string> text = ReadFile(*dir_ / "broker.log");
    return text.ok() ? *text : "";
  }

  // POST /auth: the session cookie and the nonce.
  static std::pair<std::string, std::string> Auth() {
    Reply r = Call(Url("/kbs/v0/auth"), R"({"version":"0.4.0","tee":"sgx","extra-params":""})", "", true);
    EXPECT_EQ(r.status, 200);
    return {r.cookie, json::parse(r.body)["nonce"].get<std::string>()};
  }

  // An Attestation body with a quote from `tee` binding `nonce` and `key` (`flip`: one bit of
  // the quote flipped at that offset).
  static std::string AttestBody(local_attest::sgx::Tee& tee, const std::string& nonce, const TeeKey& key,
                                std::optional<std::size_t> flip = std::nullopt,
                                const TeeKey* bound = nullptr) {
    std::vector<std::uint8_t> quote =
        tee.CreateQuote(RuntimeDataBinding(nonce, (bound ? *bound : key).public_jwk())).value();
    if (flip) quote[*flip] ^= 0x10;
    json body = {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", key.public_jwk()}}},
                 {"tee-evidence",
                  {{"primary_evidence", {{"quote", Base64Encode(quote)}}}, {"additional_evidence", ""}}}};
    return body.dump();
  }

  static void ExpectNothingReleased(const std::string& cookie) {
    Reply r = Call(Url("/kbs/v0/resource/default/key/layer"), "", cookie, false);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.body.find(kLayerKey), std::string::npos);
  }

  static Result<SecretBytes> FetchAs(local_attest::sgx::Tee& tee,
                                     const std::string& uri = "kbs:///default/key/layer") {
    auto client = KbsClient::Create(tee, {.url = Url()}).value();
    return client->GetResource(uri);
  }

  static inline TempDir* dir_ = nullptr;
  static inline BackgroundProcess* broker_ = nullptr;
  static inline int port_ = 0;
};

TEST_F(BrokerTest, TheExpectedEnclaveGetsItsResourcesInOneSession) {
  auto tee = Enclave(kTrusted);
  auto client = KbsClient::Create(*tee, {.url = Url()}).value();
  SecretBytes key = client->GetResource("kbs:///default/key/layer").value();
  EXPECT_EQ(std::string(AsChars(key.span())), kLayerKey);
  EXPECT_EQ(std::string(AsChars(client->GetResource("default/key/other").value().span())), "second");
  EXPECT_EQ(client->GetResource("kbs:///default/key/missing").status().code(), Code::kNotFound);
  EXPECT_NE(Log().find("kbs: released default/key/layer"), std::string::npos);
}

TEST_F(BrokerTest, TheHostAskingDirectlyGetsNothing) {
  ExpectNothingReleased("");
  auto [cookie, nonce] = Auth();
  ExpectNothingReleased(cookie);  // authenticated, not attested
  // An attestation without evidence, and one with bytes that are no quote.
  TeeKey key = TeeKey::Generate().value();
  json no_quote = {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", key.public_jwk()}}},
                   {"tee-evidence", json::object()}};
  EXPECT_EQ(Call(Url("/kbs/v0/attest"), no_quote.dump(), cookie, true).status, 401);
  ExpectNothingReleased(cookie);
  auto [cookie2, nonce2] = Auth();
  json junk = {
      {"runtime-data", {{"nonce", nonce2}, {"tee-pubkey", key.public_jwk()}}},
      {"tee-evidence", {{"primary_evidence", {{"quote", Base64Encode(AsBytes(std::string(600, 'q')))}}}}}};
  EXPECT_EQ(Call(Url("/kbs/v0/attest"), junk.dump(), cookie2, true).status, 401);
  ExpectNothingReleased(cookie2);
  EXPECT_NE(Log().find("resource request without an attested session"), std::string::npos);
}

TEST_F(BrokerTest, AnEnclaveWithAnotherIdentityGetsNothing) {
  auto tee = Enclave(0x33);
  Result<SecretBytes> r = FetchAs(*tee);
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(Log().find("untrusted enclave mrenclave=3333"), std::string::npos) << Log();
}

TEST_F(BrokerTest, ADebugEnclaveIsRefusedEvenWithTheTrustedMeasurement) {
  auto tee = Enclave(kTrusted, local_attest::sgx::kFlagDebug);
  EXPECT_EQ(FetchAs(*tee).status().code(), Code::kPermissionDenied);
  EXPECT_NE(Log().find("DEBUG enclave refused"), std::string::npos);
}

TEST_F(BrokerTest, AQuoteFromAnotherSimRootIsRefused) {
  auto tee = Enclave(kTrusted, 0, local_attest::sgx::SimQuotingEnclave::Create("an attacker's root").value());
  EXPECT_EQ(FetchAs(*tee).status().code(), Code::kPermissionDenied);
  EXPECT_NE(Log().find("does not lead to the configured root"), std::string::npos);
}

TEST_F(BrokerTest, AReplayedAttestationIsRefused) {
  auto tee = Enclave(kTrusted);
  TeeKey key = TeeKey::Generate().value();
  auto [cookie, nonce] = Auth();
  std::string body = AttestBody(*tee, nonce, key);
  ASSERT_EQ(Call(Url("/kbs/v0/attest"), body, cookie, true).status, 200);
  // The same attestation in a new session (another nonce) and again in its own session.
  auto [cookie2, nonce2] = Auth();
  EXPECT_EQ(Call(Url("/kbs/v0/attest"), body, cookie2, true).status, 401);
  ExpectNothingReleased(cookie2);
  EXPECT_EQ(Call(Url("/kbs/v0/attest"), body, cookie, true).status, 401);
  EXPECT_NE(Log().find("the nonce is not this session's challenge"), std::string::npos);
  EXPECT_NE(Log().find("the session's challenge was already answered"), std::string::npos);
  // The original session holds: its resource opens with its key only.
  Reply ok = Call(Url("/kbs/v0/resource/default/key/layer"), "", cookie, false);
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(std::string(AsChars(key.Open(ok.body).value().span())), kLayerKey);
}

TEST_F(BrokerTest, AQuoteWithOneFlippedBitIsRefused) {
  auto tee = Enclave(kTrusted);
  TeeKey key = TeeKey::Generate().value();
  // In the quote signature, the quoted report body, the QE report and the PCK chain.
  for (std::size_t at : {std::size_t{440}, std::size_t{48 + 100}, std::size_t{600}, std::size_t{2000}}) {
    auto [cookie, nonce] = Auth();
    EXPECT_EQ(Call(Url("/kbs/v0/attest"), AttestBody(*tee, nonce, key, at), cookie, true).status, 401) << at;
    ExpectNothingReleased(cookie);
  }
  EXPECT_NE(Log().find("signature does not verify"), std::string::npos);
}

TEST_F(BrokerTest, AQuoteBoundToAnotherKeyIsRefused) {
  // A genuine quote of the trusted enclave, for this nonce, but binding another tee-pubkey: the
  // key sent along is not the enclave's.
  auto tee = Enclave(kTrusted);
  TeeKey enclave_key = TeeKey::Generate().value();
  TeeKey attacker_key = TeeKey::Generate().value();
  auto [cookie, nonce] = Auth();
  EXPECT_EQ(Call(Url("/kbs/v0/attest"), AttestBody(*tee, nonce, attacker_key, std::nullopt, &enclave_key),
                 cookie, true)
                .status,
            401);
  ExpectNothingReleased(cookie);
  EXPECT_NE(Log().find("report_data does not bind this nonce and tee-pubkey"), std::string::npos);
}

TEST(KeyProviderCommand, TheUnauthenticatedUnwrapNeedsTheExplicitDevelopmentFlag) {
  TempDir dir;
  auto r = sealroot::testing::Run({BuiltProgram("sealroot"), "keyprovider", "--keys", dir.path(), "--stdio"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--kbs and --dev-unwrap"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sealroot::kbs
