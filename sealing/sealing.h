// The adapter that feeds image layers into the sealed store (it lives in agent/ so that fusefs
// never depends on image: design/architecture.md). Used by `sealroot unpack --seal` and by the agent's
// PullImage.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/secret.h"
#include "base/status.h"
#include "fusefs/types.h"
#include "image/sink.h"

namespace sealroot::sealing {

// An ImageSink that seals each layer into a sealed store and, on Finish, records the image's
// root. root_hash() is valid after a successful Finish().
class SealingSink : public image::ImageSink {
 public:
  virtual fusefs::RootHash root_hash() const = 0;
};

struct SealOptions {
  std::string store_dir;  // created (with its format version and lock) if absent
  SecretBytes key;        // 32 bytes
};

// With a `root_name`, Finish also names the root so (fusefs::Store::UpdateRootNames), while the
// sink still holds the store's shared lock (no gc in between).
Result<std::unique_ptr<SealingSink>> OpenSealingSink(SealOptions options, std::string root_name = "");

// Exactly one of key_file / key_fd. A key file that does not
// exist is created with a random 256-bit key, mode 0600; an existing one must hold exactly one key
// and be readable and writable by its owner only (anything more is refused, as ssh does).
Result<SecretBytes> LoadOrCreateKey(const std::optional<std::string>& key_file, std::optional<int> key_fd);

// As LoadOrCreateKey, for sealing into `store_dir`: a missing key file is created only when the
// store has no key yet (new); for a store that has one it is an error (a mistyped path must not
// become a new key).
Result<SecretBytes> LoadOrCreateStoreKey(const std::string& store_dir,
                                         const std::optional<std::string>& key_file,
                                         std::optional<int> key_fd);

}  // namespace sealroot::sealing
