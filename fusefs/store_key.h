// The store key and what is derived from it (design/sealfs.md "Objects"):
//   object key = HKDF-SHA256(ikm = K, salt = object salt, info = "sealfs v1 object key")
//   record MAC key = HKDF-SHA256(ikm = K, info = "sealfs v1 record mac")
//   name key = HKDF-SHA256(ikm = K, info = "sealfs v2 store names")
//   root names key = HKDF-SHA256(ikm = K, info = "sealfs v2 root names")
//
// Thread-safety: immutable after Create; const methods may be called from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/secret.h"
#include "base/status.h"
#include "fusefs/types.h"

namespace sealroot::fusefs {

class StoreKey {
 public:
  static constexpr std::size_t kSize = 32;

  // `key` must be exactly 32 bytes.
  static Result<StoreKey> Create(SecretBytes key);

  // The AES-256-GCM key of the object with this salt.
  Result<SecretBytes> ObjectKey(std::span<const std::uint8_t> salt) const;
  // HMAC-SHA256 under the record key (layer records, key check).
  Hash32 RecordMac(std::span<const std::uint8_t> data) const;
  // The store's on-disk name of a layer: hex HMAC-SHA256(name key, DiffID), so the layout shows
  // no DiffID to the host (a DiffID would name a public image).
  std::string LayerName(std::string_view diff_id) const;
  // The AES-256-GCM key of the store's root names file (design/sealfs.md "Named roots").
  Result<SecretBytes> RootNamesKey() const;

  StoreKey(StoreKey&&) = default;
  StoreKey& operator=(StoreKey&&) = default;

 private:
  StoreKey(SecretBytes key, SecretBytes record_key, SecretBytes name_key)
      : key_(std::move(key)), record_key_(std::move(record_key)), name_key_(std::move(name_key)) {}
  SecretBytes key_;
  SecretBytes record_key_;
  SecretBytes name_key_;
};

}  // namespace sealroot::fusefs
