#include "stub-enclave/src/elf_deps.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "base/fd.h"
#include "base/file.h"

namespace sealroot::stub_enclave::internal {
namespace {

Status PreadExactly(int fd, void* out, std::size_t size, off_t offset, const char* what) {
  if (!PreadFull(fd, std::span(static_cast<std::uint8_t*>(out), size), static_cast<std::uint64_t>(offset))
           .ok()) {
    return InvalidArgument(std::string("not a valid ELF file: ") + what);
  }
  return OkStatus();
}

}  // namespace

Result<std::string> ElfInterpreter(int fd) {
  Elf64_Ehdr eh;
  SR_RETURN_IF_ERROR(PreadExactly(fd, &eh, sizeof(eh), 0, "short header"));
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) {
    return InvalidArgument("not an x86-64 ELF64 executable");
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256) {
    return InvalidArgument("not a valid ELF file: program header table");
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    SR_RETURN_IF_ERROR(
        PreadExactly(fd, &ph, sizeof(ph), static_cast<off_t>(eh.e_phoff + i * sizeof(ph)), "program header"));
    if (ph.p_type != PT_INTERP) continue;
    if (ph.p_filesz == 0 || ph.p_filesz > 4096)
      return InvalidArgument("not a valid ELF file: PT_INTERP size");
    std::string interp(ph.p_filesz, '\0');
    SR_RETURN_IF_ERROR(
        PreadExactly(fd, interp.data(), interp.size(), static_cast<off_t>(ph.p_offset), "PT_INTERP"));
    interp.resize(std::strlen(interp.c_str()));
    return interp;
  }
  return std::string();
}

Result<std::vector<std::string>> ListLibraries(const std::string& interpreter, const std::string& path) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  const char* argv[] = {interpreter.c_str(), "--list", path.c_str(), nullptr};
  const char* envp[] = {nullptr};
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {  // async-signal-safe calls only
    ::dup2(write_end.get(), 1);
    ::execve(argv[0], const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    ::_exit(127);
  }
  write_end.Reset();
  Result<std::string> out = ReadFd(read_end.get(), 1 << 20);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!out.ok()) return std::move(out).status().WithContext("reading " + interpreter + " --list");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return FailedPrecondition(interpreter + " --list " + path + " failed: " + *out);
  }
  std::vector<std::string> libraries;
  std::istringstream lines(*out);
  for (std::string line; std::getline(lines, line);) {
    const std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    const std::size_t arrow = line.find(" => ");
    std::string rest = arrow == std::string::npos ? line.substr(start) : line.substr(arrow + 4);
    if (rest.rfind("not found", 0) == 0) return NotFound("library not found: " + line);
    if (rest.empty() || rest[0] != '/') continue;  // linux-vdso and the like: not files
    libraries.push_back(rest.substr(0, rest.find(" (")));
  }
  return libraries;
}

}  // namespace sealroot::stub_enclave::internal
