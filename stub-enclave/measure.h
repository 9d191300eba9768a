// Measuring an enclave image: the bytes an enclave will run, laid out as enclave pages, hashed
// with the SGX ECREATE/EADD/EEXTEND record rules into MRENCLAVE (facts "Measurement and
// signing"; the layout is specified in design/attestation.md "Measured layout").
//
// What is measured: a configuration page (the layout parameters and the list of libraries by
// path and size), the executable, and every shared library the system loader would map for it
// (found with `ld.so --list`; static executables have none), each EADDed and EEXTENDed in full;
// then the enclave's manifest when it has one (the document it reads its configuration from,
// local-attest/manifest.h), then per thread a TCS page (EEXTENDed) and its SSA pages, then the
// heap (EADDed only: as SGX measures it, only the layout, not contents).
//
// EnclaveImage::Load copies the executable into a sealed memfd while it is measured, so the
// launcher executes exactly the bytes that were measured (fexecve of that memfd). Libraries are
// measured by path and opened again by the loader at exec time; design/attestation.md says what
// that leaves open and how Occlum/Gramine close it.
//
// Thread-safety: EnclaveImage is immutable after Load.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "base/fd.h"
#include "base/status.h"
#include "local-attest/sgx_types.h"

namespace sealroot::stub_enclave {

// The enclave configuration that shapes the layout (and therefore MRENCLAVE).
struct EnclaveConfig {
  std::uint64_t heap_size = 64ull << 20;  // bytes, rounded up to pages
  std::uint32_t threads = 4;              // TCS count
  std::uint32_t ssa_frame_pages = 1;      // per thread

  Status Validate() const;
};

struct MeasuredFile {
  std::string path;
  std::uint64_t size = 0;
};

struct EnclaveMeasurement {
  local_attest::sgx::Measurement mr_enclave{};
  std::uint64_t enclave_size = 0;    // ECREATE size (a power of two)
  std::uint64_t measured_bytes = 0;  // bytes EEXTENDed
  std::vector<MeasuredFile> libraries;
  std::uint64_t manifest_size = 0;  // 0: no manifest
};

class EnclaveImage {
 public:
  // Loads and measures `executable` (an ELF for this machine) with `config` and, when not
  // empty, `manifest` (at most 1 MiB), which is copied into a sealed memfd as it is measured.
  static Result<EnclaveImage> Load(const std::string& executable, const EnclaveConfig& config,
                                   std::string_view manifest = {});

  const std::string& path() const { return path_; }
  const EnclaveMeasurement& measurement() const { return measurement_; }
  // A read-only fd of the sealed in-memory copy that was measured (for fexecve).
  int exec_fd() const { return exec_.get(); }
  // A read-only fd of the sealed manifest copy that was measured; -1 without a manifest.
  int manifest_fd() const { return manifest_.get(); }

 private:
  EnclaveImage(std::string path, UniqueFd exec, UniqueFd manifest, EnclaveMeasurement m)
      : path_(std::move(path)),
        exec_(std::move(exec)),
        manifest_(std::move(manifest)),
        measurement_(std::move(m)) {}
  std::string path_;
  UniqueFd exec_;
  UniqueFd manifest_;
  EnclaveMeasurement measurement_;
};

// Streams SGX measurement records into SHA-256 (exposed for the record-format tests).
class MrEnclaveBuilder {
 public:
  MrEnclaveBuilder(std::uint32_t ssa_frame_pages, std::uint64_t enclave_size);
  // EADD of one 4 KiB page at `offset` with SECINFO `flags`; EEXTEND of all of it when
  // `contents` is non-empty (exactly 4096 bytes).
  void AddPage(std::uint64_t offset, std::uint64_t secinfo_flags, std::span<const std::uint8_t> contents);
  local_attest::sgx::Measurement Finish();

 private:
  void Flush();
  Sha256 hash_;
  std::vector<std::uint8_t> batch_;  // records are hashed in batches: one EVP call per ~256 KiB
};

// SECINFO flags.
inline constexpr std::uint64_t kSecinfoR = 0x1, kSecinfoW = 0x2, kSecinfoX = 0x4;
inline constexpr std::uint64_t kPageTypeTcs = 0x100, kPageTypeReg = 0x200;
inline constexpr std::uint64_t kPageSize = 4096;

}  // namespace sealroot::stub_enclave
