// A real Debian `docker-registry` (distribution 2.8) on 127.0.0.1 with a random port, for tests.
// Optionally TLS (a fresh self-signed certificate for 127.0.0.1) and htpasswd Basic auth.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace sealroot::testing {

struct RegistryOptions {
  bool tls = false;
  std::string user;  // non-empty: require htpasswd Basic auth
  std::string password;
};

class Registry {
 public:
  // Starts the registry and waits until it answers; throws std::runtime_error on failure.
  explicit Registry(RegistryOptions options = {});
  ~Registry();

  // "127.0.0.1:PORT"
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // Directory holding ca.crt (the server certificate itself) for --cert-dir; empty without TLS.
  std::string cert_dir() const { return options_.tls ? dir_.path() + "/certs" : ""; }
  // "docker://127.0.0.1:PORT/REPO"
  std::string Ref(const std::string& repo_and_tag) const { return "docker://" + host_ + "/" + repo_and_tag; }
  // skopeo flags to push to this registry (tls-verify/cert-dir/creds).
  std::vector<std::string> SkopeoDestFlags() const;
  // Pushes an image with skopeo, e.g. Push("oci:/x/layout:tag", "busybox:latest").
  void Push(const std::string& source, const std::string& repo_and_tag,
            const std::vector<std::string>& extra_flags = {}) const;

 private:
  RegistryOptions options_;
  TempDir dir_;
  int port_ = 0;
  std::string host_;
  std::unique_ptr<BackgroundProcess> process_;
};

}  // namespace sealroot::testing
