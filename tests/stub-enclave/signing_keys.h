// Two RSA-3072 (e=3) signing keys shared by the stub-enclave tests, generated once per process.
#pragma once

#include "stub-enclave/sigstruct.h"

namespace sealroot::stub_enclave::testkeys {

inline EVP_PKEY* KeyA() {
  static EvpPkeyPtr key = GenerateSigningKey().value();
  return key.get();
}
inline EVP_PKEY* KeyB() {
  static EvpPkeyPtr key = GenerateSigningKey().value();
  return key.get();
}

}  // namespace sealroot::stub_enclave::testkeys
