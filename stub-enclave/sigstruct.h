// Signing an enclave: SIGSTRUCT (facts "Measurement and signing") with an RSA-3072 key of public
// exponent 3, and its verification before launch.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "base/crypto.h"
#include "base/status.h"
#include "local-attest/sgx_types.h"

namespace sealroot::stub_enclave {

struct SigningParams {
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  bool debug = false;      // sets ATTRIBUTES.DEBUG (and the debug bit of the SIGSTRUCT type)
  std::uint32_t date = 0;  // BCD 0xYYYYMMDD; 0 = today (UTC)
};

// A new RSA-3072 key with e = 3, as SGX requires.
Result<EvpPkeyPtr> GenerateSigningKey();
// PEM (PKCS#8 or traditional) private key; refuses anything but RSA-3072 with e = 3.
Result<EvpPkeyPtr> ParseSigningKey(std::string_view pem);
Result<std::string> SigningKeyToPem(EVP_PKEY* key);

// SIGSTRUCT for `mr_enclave`: attributes MODE64BIT | KSS (| DEBUG), XFRM 0x3, every attribute
// bit in the mask; q1/q2 filled so hardware could check it.
Result<local_attest::sgx::Sigstruct> SignEnclave(EVP_PKEY* key,
                                                 const local_attest::sgx::Measurement& mr_enclave,
                                                 const SigningParams& params);

// Checks the SIGSTRUCT's fixed headers, exponent, RSA signature, q1/q2, and that it signs
// `mr_enclave`. Returns MRSIGNER (SHA-256 of the little-endian modulus).
Result<local_attest::sgx::Measurement> VerifySigstruct(const local_attest::sgx::Sigstruct& sig,
                                                       const local_attest::sgx::Measurement& mr_enclave);

// MRSIGNER of a SIGSTRUCT (not verified).
local_attest::sgx::Measurement MrSignerOf(const local_attest::sgx::Sigstruct& sig);

}  // namespace sealroot::stub_enclave
