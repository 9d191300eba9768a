// Fixtures for the end-to-end tests: a busybox root directory, and that directory sealed into a
// sealed store as a one-layer image (the way the agent's PullImage leaves it), so the boot can
// be tested against real sealed roots without a registry. Also compiled into bench/e2e.
#pragma once

#include <string>

#include "base/secret.h"
#include "base/status.h"
#include "fusefs/types.h"

namespace sealroot::testing {

// /bin/busybox with its applet links, /etc/passwd and /etc/group with a user "app" (1000:1000,
// also in group "extra" 2000), and /etc/motd holding `marker`. Throws std::runtime_error.
void MakeBusyboxRoot(const std::string& dir, const std::string& marker);

// Seals `dir` as one layer plus an image root with `config_json` into the store at `store_dir`
// (created if needed) under `key` (32 bytes). Returns the root hash.
Result<fusefs::RootHash> SealDirectory(const std::string& store_dir, const SecretBytes& key,
                                       const std::string& dir, const std::string& config_json);

}  // namespace sealroot::testing
