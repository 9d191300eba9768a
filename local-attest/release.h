// Key release over local attestation (design/attestation.md: the protocol
// and the message schema).
//
// The stub (enclave-agent) serves one unix socket per container with a KeyReleaseServer: it is
// the sgx_dh responder, checks the app enclave's msg2 report against the release policy (which
// always includes the container's CONFIGID), sends msg3, then sends the KeyRelease sealed under
// AEK and waits for the boot's sealed acknowledgement. The app enclave (sealroot-boot) calls
// OpenReleaseSession: it is the initiator, checks the stub's msg3 report against the stub policy,
// and checks that the release is for the container its own CONFIGID names. The session stays
// open after the acknowledgement: over the same AEAD channel the boot reports each committed
// state of the container's writable layer (ReportUpperCommit), and the stub records it
// (ReleaseServerOptions::on_upper_commit) before it answers.
//
// A refused peer gets the connection closed and nothing else (no reasons are told to an
// unattested peer); the stub reports every session's outcome, with the failed check, to
// ReleaseServerOptions::on_session and the log.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "local-attest/policy.h"
#include "local-attest/tee.h"

namespace sealroot::local_attest {

// One sealed root the app enclave may mount.
struct ReleasedRoot {
  std::string name;  // e.g. "rootfs"; 1..255 bytes
  Sha256Digest root_hash{};
  SecretBytes key;  // 16..64 bytes
};

inline constexpr std::size_t kContainerKeySize = 32;

// What the stub releases to one container's app enclave.
struct KeyRelease {
  std::string container_id;         // 1..1024 bytes
  Sha256Digest spec_digest{};       // SHA-256 of the OCI process spec the boot must run
  std::vector<ReleasedRoot> roots;  // 1..16
  // This container's own keys (kContainerKeySize bytes each), which open nothing of another
  // container's: the writable layer's sealing key and the exec channel's MAC key.
  SecretBytes upper_key;
  SecretBytes exec_key;
  // The writable layer's state the boot must find: the last committed root the stub recorded,
  // or none — a fresh layer (no state yet) is expected.
  std::optional<Sha256Digest> upper_root;
};

// The release message's plaintext (before AES-GCM); strict decoding, no trailing bytes.
Result<SecretBytes> EncodeKeyRelease(const KeyRelease& release);
Result<KeyRelease> DecodeKeyRelease(std::span<const std::uint8_t> bytes);

// A new committed state of the container's writable layer, reported by its boot.
struct UpperCommit {
  std::optional<Sha256Digest> previous;  // the state it replaces; none: the layer's first state
  Sha256Digest root{};
};

// The report's plaintext; strict decoding.
std::vector<std::uint8_t> EncodeUpperCommit(const UpperCommit& commit);
Result<UpperCommit> DecodeUpperCommit(std::span<const std::uint8_t> bytes);

// Per-message cap on the wire (msg1..msg3, the release, the ack).
inline constexpr std::size_t kMaxFrameSize = 64 * 1024;

struct ReleaseServerOptions {
  std::chrono::milliseconds io_timeout{5000};  // per session, for the whole exchange
  std::size_t max_sessions = 8;                // concurrent; more connections wait in backlog
  // Called once per session, from the session's thread: OK when the key was delivered and
  // acknowledged, else which step or check failed.
  std::function<void(const Status&)> on_session;
  // Called from the session's thread for each commit the attested boot reports after its
  // acknowledgement. OK (the commit is recorded) is answered "recorded" and the boot publishes
  // its new state; an error is answered as a refusal and the boot keeps its previous state.
  // Unset: every report is refused.
  std::function<Status(const UpperCommit&)> on_upper_commit;
};

// Serves one container's release. Thread-safety: Stop() may be called from any thread.
class KeyReleaseServer {
 public:
  // Binds `socket_path` (mode 0600; a stale socket file there is replaced) and starts serving.
  // The policy's config_id is set to ContainerConfigId(release); `tee` must outlive the server.
  static Result<std::unique_ptr<KeyReleaseServer>> Start(local_attest::sgx::Tee& tee, std::string socket_path,
                                                         IdentityPolicy app_policy, KeyRelease release,
                                                         ReleaseServerOptions options = {});
  virtual ~KeyReleaseServer() = default;
  // Stops accepting, aborts sessions in flight, joins every thread, removes the socket file.
  virtual void Stop() = 0;
  virtual const std::string& socket_path() const = 0;
};

struct FetchOptions {
  std::chrono::milliseconds timeout{10000};  // for the whole exchange, and for each report
};

// The boot's end of an attested session: the release, and the channel it came over.
// Thread-safety: ReportUpperCommit may be called from several threads (one report at a time).
class ReleaseSession {
 public:
  virtual ~ReleaseSession() = default;
  virtual KeyRelease& release() = 0;
  // Sends `commit` to the stub and waits for its answer: OK once the stub recorded it;
  // kPermissionDenied with the stub's reason when it refused; kUnavailable when the stub is
  // gone.
  virtual Status ReportUpperCommit(const UpperCommit& commit) = 0;
};

// Attests to the stub at `socket_path` and returns the session with the release meant for this
// enclave; the connection stays open until the session is destroyed.
Result<std::unique_ptr<ReleaseSession>> OpenReleaseSession(local_attest::sgx::Tee& tee,
                                                           const std::string& socket_path,
                                                           const IdentityPolicy& stub_policy,
                                                           const FetchOptions& options = {});
// The same, for a caller that reports nothing: the release alone, the connection closed.
Result<KeyRelease> FetchKeyRelease(local_attest::sgx::Tee& tee, const std::string& socket_path,
                                   const IdentityPolicy& stub_policy, const FetchOptions& options = {});

}  // namespace sealroot::local_attest
