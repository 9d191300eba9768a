// MRENCLAVE of an enclave image (layout: design/attestation.md "Measured layout").
#include "stub-enclave/measure.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <bit>
#include <cerrno>
#include <cstring>

#include "base/file.h"
#include "stub-enclave/src/elf_deps.h"

namespace sealroot::stub_enclave {
namespace {

constexpr std::size_t kRecord = 64, kChunk = 256, kBatch = 256 * 1024;
constexpr std::uint64_t kCodeFlags = kPageTypeReg | kSecinfoR | kSecinfoX;
constexpr std::uint64_t kDataFlags = kPageTypeReg | kSecinfoR | kSecinfoW;

void PutU32(std::uint8_t* p, std::uint32_t v) {
  std::memcpy(p, &v, 4);
}
void PutU64(std::uint8_t* p, std::uint64_t v) {
  std::memcpy(p, &v, 8);
}
std::uint64_t Pages(std::uint64_t bytes) {
  return (bytes + kPageSize - 1) / kPageSize;
}

Result<std::uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + " is not a regular file");
  return static_cast<std::uint64_t>(st.st_size);
}

// Seals `mem` against any change and returns a read-only fd on it (a writable fd would make
// execve fail with ETXTBSY).
Result<UniqueFd> SealAndReopen(UniqueFd mem, const std::string& path) {
  if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
    return ErrnoStatus("sealing the in-memory copy of " + path, errno);
  }
  std::string self = "/proc/self/fd/" + std::to_string(mem.get());
  UniqueFd ro(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ro) return ErrnoStatus("reopening the in-memory copy of " + path, errno);
  return ro;
}

// Copies `src` into a new sealed memfd.
Result<UniqueFd> SealedCopy(int src, const std::string& path) {
  UniqueFd mem(::memfd_create("sealroot-enclave", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem) return ErrnoStatus("memfd_create", errno);
  std::vector<std::uint8_t> buffer(1 << 20);
  for (;;) {
    ssize_t n = ::read(src, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading " + path, errno);
    if (n == 0) break;
    SR_RETURN_IF_ERROR(WriteAll(mem.get(), std::span(buffer.data(), static_cast<std::size_t>(n))));
  }
  return SealAndReopen(std::move(mem), path);
}

Result<UniqueFd> SealedManifest(std::string_view manifest) {
  if (manifest.size() > (1u << 20)) return InvalidArgument("enclave manifest: larger than 1 MiB");
  UniqueFd mem(::memfd_create("sealroot-manifest", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem) return ErrnoStatus("memfd_create", errno);
  SR_RETURN_IF_ERROR(WriteAll(mem.get(), AsBytes(manifest)));
  return SealAndReopen(std::move(mem), "the manifest");
}

// EADDs (with SECINFO `flags`) and EEXTENDs `size` bytes of `fd` (zero-padded to whole pages)
// at `offset`, reading 1 MiB at a time.
Result<std::uint64_t> AddFile(MrEnclaveBuilder& b, int fd, std::uint64_t size, std::uint64_t offset,
                              const std::string& path, std::uint64_t flags = kCodeFlags) {
  constexpr std::size_t kRead = 1 << 20;
  std::vector<std::uint8_t> buffer(kRead);
  for (std::uint64_t done = 0; done < size;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(kRead, size - done));
    if (!PreadFull(fd, std::span(buffer).first(want), done).ok()) {
      return DataLoss(path + ": changed size while being measured");
    }
    const std::size_t padded = (want + kPageSize - 1) / kPageSize * kPageSize;
    std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(want),
              buffer.begin() + static_cast<std::ptrdiff_t>(padded), 0);
    for (std::size_t page = 0; page < padded; page += kPageSize) {
      b.AddPage(offset, flags, std::span(buffer).subspan(page, kPageSize));
      offset += kPageSize;
    }
    done += want;
  }
  return offset;
}

// The configuration page(s): everything that shapes the layout, in a canonical text form.
std::string ConfigText(const EnclaveConfig& c, std::uint64_t exec_size, const std::vector<MeasuredFile>& libs,
                       std::uint64_t manifest_size) {
  std::string text = "sealroot enclave layout v1\nheap_size " + std::to_string(c.heap_size) + "\nthreads " +
                     std::to_string(c.threads) + "\nssa_frame_pages " + std::to_string(c.ssa_frame_pages) +
                     "\nexecutable " + std::to_string(exec_size) + "\n";
  for (const MeasuredFile& lib : libs) text += "library " + lib.path + " " + std::to_string(lib.size) + "\n";
  if (manifest_size > 0) text += "manifest " + std::to_string(manifest_size) + "\n";
  return text;
}

}  // namespace

Status EnclaveConfig::Validate() const {
  if (threads == 0 || threads > 1024) return InvalidArgument("enclave config: threads must be 1..1024");
  if (ssa_frame_pages == 0 || ssa_frame_pages > 16)
    return InvalidArgument("enclave config: ssa frame pages 1..16");
  if (heap_size > (64ull << 30)) return InvalidArgument("enclave config: heap larger than 64 GiB");
  return OkStatus();
}

MrEnclaveBuilder::MrEnclaveBuilder(std::uint32_t ssa_frame_pages, std::uint64_t enclave_size) {
  batch_.reserve(kBatch + kPageSize * 2);
  std::uint8_t rec[kRecord] = {};
  std::memcpy(rec, "ECREATE", 8);
  PutU32(rec + 8, ssa_frame_pages);
  PutU64(rec + 12, enclave_size);
  batch_.insert(batch_.end(), rec, rec + kRecord);
}

void MrEnclaveBuilder::AddPage(std::uint64_t offset, std::uint64_t secinfo_flags,
                               std::span<const std::uint8_t> contents) {
  std::uint8_t rec[kRecord] = {};
  std::memcpy(rec, "EADD\0\0\0\0", 8);
  PutU64(rec + 8, offset);
  PutU64(rec + 16, secinfo_flags);
  batch_.insert(batch_.end(), rec, rec + kRecord);
  for (std::size_t i = 0; i < contents.size(); i += kChunk) {
    std::uint8_t ext[kRecord] = {};
    std::memcpy(ext, "EEXTEND", 8);
    PutU64(ext + 8, offset + i);
    batch_.insert(batch_.end(), ext, ext + kRecord);
    batch_.insert(batch_.end(), contents.begin() + static_cast<std::ptrdiff_t>(i),
                  contents.begin() + static_cast<std::ptrdiff_t>(i + kChunk));
  }
  if (batch_.size() >= kBatch) Flush();
}

void MrEnclaveBuilder::Flush() {
  hash_.Update(batch_);
  batch_.clear();
}

local_attest::sgx::Measurement MrEnclaveBuilder::Finish() {
  Flush();
  return hash_.Finish();
}

Result<EnclaveImage> EnclaveImage::Load(const std::string& executable, const EnclaveConfig& config,
                                        std::string_view manifest) {
  SR_RETURN_IF_ERROR(config.Validate());
  UniqueFd manifest_fd;
  if (!manifest.empty()) {
    SR_ASSIGN_OR_RETURN(manifest_fd, SealedManifest(manifest));
  }
  UniqueFd src(::open(executable.c_str(), O_RDONLY | O_CLOEXEC));
  if (!src) return ErrnoStatus("opening enclave executable " + executable, errno);
  SR_ASSIGN_OR_RETURN(UniqueFd exec, SealedCopy(src.get(), executable));
  SR_ASSIGN_OR_RETURN(std::uint64_t exec_size, FileSize(exec.get(), executable));
  SR_ASSIGN_OR_RETURN(std::string interp, internal::ElfInterpreter(exec.get()));

  EnclaveMeasurement m;
  std::vector<UniqueFd> lib_fds;
  if (!interp.empty()) {
    // Only the launcher's own loader is run: an executable naming another interpreter could
    // make measurement run a program of its choosing.
    UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    SR_ASSIGN_OR_RETURN(std::string own, internal::ElfInterpreter(self.get()));
    if (interp != own) {
      return FailedPrecondition(executable + ": interpreter " + interp + " is not the system loader " + own);
    }
    // The loader runs as a child: name our fd through our pid, not its /proc/self.
    const std::string exec_path = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(exec.get());
    SR_ASSIGN_OR_RETURN(auto paths, internal::ListLibraries(own, exec_path));
    for (const std::string& lib : paths) {
      UniqueFd fd(::open(lib.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return ErrnoStatus("opening library " + lib + " of " + executable, errno);
      SR_ASSIGN_OR_RETURN(std::uint64_t size, FileSize(fd.get(), lib));
      m.libraries.push_back({lib, size});
      lib_fds.push_back(std::move(fd));
    }
  }

  m.manifest_size = manifest.size();
  const std::string config_text = ConfigText(config, exec_size, m.libraries, m.manifest_size);
  std::uint64_t pages = Pages(config_text.size()) + Pages(exec_size) + Pages(m.manifest_size) +
                        Pages(config.heap_size) +
                        std::uint64_t{config.threads} * (1 + config.ssa_frame_pages);
  for (const MeasuredFile& lib : m.libraries) pages += Pages(lib.size);
  m.enclave_size = std::bit_ceil(std::max<std::uint64_t>(pages * kPageSize, 2 * kPageSize));

  MrEnclaveBuilder b(config.ssa_frame_pages, m.enclave_size);
  std::uint64_t offset = 0;
  std::vector<std::uint8_t> page(kPageSize);
  for (std::size_t i = 0; i < config_text.size(); i += kPageSize) {
    std::fill(page.begin(), page.end(), 0);
    std::memcpy(page.data(), config_text.data() + i, std::min(kPageSize, config_text.size() - i));
    b.AddPage(offset, kPageTypeReg | kSecinfoR, page);
    offset += kPageSize;
  }
  SR_ASSIGN_OR_RETURN(offset, AddFile(b, exec.get(), exec_size, offset, executable));
  for (std::size_t i = 0; i < lib_fds.size(); ++i) {
    SR_ASSIGN_OR_RETURN(offset,
                        AddFile(b, lib_fds[i].get(), m.libraries[i].size, offset, m.libraries[i].path));
  }
  if (manifest_fd) {
    // Measured from the sealed copy the enclave will read, not from the caller's buffer.
    SR_ASSIGN_OR_RETURN(offset, AddFile(b, manifest_fd.get(), m.manifest_size, offset, "the manifest",
                                        kPageTypeReg | kSecinfoR));
  }
  std::fill(page.begin(), page.end(), 0);
  for (std::uint32_t t = 0; t < config.threads; ++t) {
    b.AddPage(offset, kPageTypeTcs, page);
    offset += kPageSize;
    for (std::uint32_t s = 0; s < config.ssa_frame_pages; ++s, offset += kPageSize)
      b.AddPage(offset, kDataFlags, {});
  }
  for (std::uint64_t h = 0; h < Pages(config.heap_size); ++h, offset += kPageSize)
    b.AddPage(offset, kDataFlags, {});
  m.mr_enclave = b.Finish();
  std::uint64_t extended =
      Pages(config_text.size()) + Pages(exec_size) + Pages(m.manifest_size) + config.threads;
  for (const MeasuredFile& lib : m.libraries) extended += Pages(lib.size);
  m.measured_bytes = extended * kPageSize;
  return EnclaveImage(executable, std::move(exec), std::move(manifest_fd), std::move(m));
}

}  // namespace sealroot::stub_enclave
