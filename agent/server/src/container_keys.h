// Per-container keys and the pin of each container's writable layer (design/attestation.md
// "Per-container keys" and "Upper commits").
//
// The agent holds a random 256-bit secret that it never releases. Each container's upper key
// (seals its writable layer) and exec key (authenticates exec requests to its boot) are derived
// from that secret, the container id and a random incarnation drawn when the container is
// created, so a boot receives only its own container's keys and they open nothing of another
// container's — nor of an earlier container that had the same id. The keyring also keeps, per
// container, the last upper root its boot reported; the next boot of that container gets it in
// the release and refuses any other state.
//
// Persisted as one sealed document, <state_dir>/containers.sealed, written atomically on every
// change; a commit is recorded (and the boot told so) only once it is durable.
//
// Thread-safety: thread-safe. `sealer` must outlive the keyring.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "agent/server/state_sealer.h"
#include "base/crypto.h"
#include "base/env.h"
#include "base/secret.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "local-attest/release.h"

namespace sealroot::agent {

// What one container's boot receives besides the image's store key.
struct ContainerSecrets {
  SecretBytes upper_key;
  SecretBytes exec_key;
  std::optional<Sha256Digest> upper_root;  // none: a fresh upper is expected
};

class ContainerKeyring {
 public:
  // Reads <state_dir>/containers.sealed; creates the secret (and the file) on first use. Every
  // save goes through `env`; a change whose save fails is undone, and the file keeps the last
  // saved document whole.
  static Result<std::unique_ptr<ContainerKeyring>> Load(const StateSealer& sealer, std::string state_dir,
                                                        Env& env = Env::Default());

  // A new incarnation of `container_id`: new keys, a fresh upper expected.
  Status Register(const std::string& container_id) SR_EXCLUDES(mu_);
  // kNotFound for a container that was never registered.
  Result<ContainerSecrets> Secrets(const std::string& container_id) const SR_EXCLUDES(mu_);
  // Records the boot's commit if it replaces the state the keyring knows (a report from a boot
  // that started from an older state is refused: kFailedPrecondition).
  Status RecordUpperCommit(const std::string& container_id, const local_attest::UpperCommit& commit)
      SR_EXCLUDES(mu_);
  Status Forget(const std::string& container_id) SR_EXCLUDES(mu_);

  struct Entry {
    Sha256Digest incarnation{};  // random, drawn by Register
    std::optional<Sha256Digest> upper_root;
  };

 private:
  ContainerKeyring(const StateSealer& sealer, Env& env, std::string path, SecretBytes secret,
                   std::map<std::string, Entry> containers)
      : sealer_(sealer),
        env_(env),
        path_(std::move(path)),
        secret_(std::move(secret)),
        containers_(std::move(containers)) {}
  Status Save() const SR_REQUIRES(mu_);

  const StateSealer& sealer_;
  Env& env_;
  const std::string path_;
  const SecretBytes secret_;
  mutable Mutex mu_;
  std::map<std::string, Entry> containers_ SR_GUARDED_BY(mu_);
};

// The derivation (exposed for tests): HMAC-SHA256(secret, label || 0x00 || incarnation || id).
SecretBytes DeriveContainerKey(const SecretBytes& secret, std::string_view label,
                               const Sha256Digest& incarnation, std::string_view container_id);
inline constexpr std::string_view kUpperKeyLabel = "sealroot container upper key v1";
inline constexpr std::string_view kExecKeyLabel = "sealroot container exec key v1";

}  // namespace sealroot::agent
