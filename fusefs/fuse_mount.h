// The FUSE adapter: serves a Filesystem through libfuse3's low-level API on libfuse's worker
// threads (fuse_session_loop_mt). Each FUSE callback calls one Filesystem method and replies to
// the kernel exactly once.
//
//   auto mount = FuseMount::Create(fs, {.mountpoint = "/mnt/x"});  // mounted when this returns
//   mount->Daemonize(log_file);   // optional: the caller's parent process exits 0 here
//   mount->Serve();               // until unmounted or a signal
//
// Every mount gets requests of up to 1 MiB, readdirplus and no FLUSH.
// Read-only mounts get long entry/attribute timeouts, keep_cache, cache_readdir and, when the
// Filesystem reads without opens, opens that cost no request and directory read-ahead: the tree
// is immutable and everything that reaches the page cache was verified. Writable mounts get 1 s timeouts,
// writeback cache and 1 MiB writes, and forward the Filesystem's write operations.
//
// Thread-safety: Create/Daemonize/Serve from one thread; the Filesystem must be thread-safe and
// outlive the FuseMount.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "fusefs/filesystem.h"

struct fuse_session;

namespace sealroot::fusefs {

class SiblingPrefetch;

struct FuseMountOptions {
  std::string mountpoint;
  std::string fsname = "sealfs";
  bool read_only = true;
  bool writeback_cache = true;  // writable mounts: let the kernel batch writes in its page cache
  bool allow_other = true;      // with default_permissions: the kernel checks modes for every user
  // Honour setuid/setgid bits and device nodes ("suid,dev"), as a container runtime's root does;
  // off, libfuse's default nosuid,nodev applies, right for a mount on the host.
  bool suid_and_dev = false;
  // For a filesystem that prefetches (Filesystem::prefetches): once a program reads a file of a
  // directory it listed, the small files listed after it are read on threads of their own and
  // stored in the page cache (fusefs/src/sibling_prefetch.h).
  bool prefetch_siblings = true;
  unsigned max_threads = 16;
  bool debug = false;  // libfuse's request trace on stderr
  // For a process whose only job is the mount: SIGINT/SIGTERM/SIGHUP end Serve() with kCancelled
  // (over any handler installed before); once the FuseMount is destroyed (unmounted), they set
  // the base/interrupt.h flag again, so the caller can still save its state.
  bool stop_on_signal = false;
  // Ownership as a container's user namespace must see it (Debian's libfuse 3.14 has no idmapped
  // mounts): ids 0..size-1 of the filesystem are presented as host_uid/host_gid + id, and the
  // ids of callers and chown requests in those ranges map back. size 0: no shift.
  struct IdShift {
    std::uint32_t host_uid = 0, host_gid = 0, size = 0;
  };
  IdShift id_shift;
};

class FuseMount {
 public:
  static Result<std::unique_ptr<FuseMount>> Create(Filesystem& fs, const FuseMountOptions& options);
  ~FuseMount();  // unmounts if still mounted
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  // Forks: the calling (parent) process exits with status 0; the child continues detached, with
  // stdin/stdout on /dev/null and stderr appended to `log_file` (or /dev/null when empty).
  Status Daemonize(const std::string& log_file);
  // Serves requests until the filesystem is unmounted (OK) or, with stop_on_signal,
  // SIGINT/SIGTERM/SIGHUP arrives (kCancelled; destroying the FuseMount then unmounts).
  Status Serve();

 private:
  struct Adapter;
  FuseMount() = default;
  std::unique_ptr<Adapter> adapter_;
  fuse_session* session_ = nullptr;
  bool prefetch_siblings_ = false;
  std::unique_ptr<SiblingPrefetch> prefetch_;
  bool mounted_ = false;
  bool stop_on_signal_ = false;
  unsigned max_threads_ = 16;
};

}  // namespace sealroot::fusefs
