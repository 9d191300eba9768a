// The extractor: every per-entry rule of applying a layer to a directory with OCI semantics
// (whiteouts, opaque directories, replace-vs-update, hard links, devices, ownership, modes,
// xattrs, times). All filesystem access is relative to the root's directory fd; parents are
// resolved with openat2(RESOLVE_IN_ROOT) and the last component is never followed. Private.
//
// Thread-safety: one Extractor per root, used by one thread.
#pragma once

#include <sys/stat.h>

#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "image/sink.h"

namespace sealroot::image::internal {

struct ExtractorOptions {
  // umoci --rootless: no chown; ownership other than 0:0 is recorded in the
  // "user.rootlesscontainers" xattr (the rootlesscontainers.io protobuf) and a device node
  // becomes an empty file with its mode, as umoci does.
  bool rootless = false;
  // Whether mknod is possible at all (running as root). Without it devices are reported and
  // skipped.
  bool can_mknod = true;
};

class Extractor {
 public:
  Extractor(int root_fd, ExtractorOptions options);

  Status Apply(const Entry& entry, Reader* content);
  // End of a layer: restores the times of every directory this layer touched (creating an
  // entry changes its parent's mtime) and forgets the layer's paths.
  Status FinishLayer();

  std::size_t skipped_devices() const { return skipped_devices_; }

 private:
  Result<UniqueFd> OpenParent(std::string_view parent, bool create);
  void RememberDirTimes(int dir_fd, const std::string& path);
  // Clears the way for a new entry at parent/name; returns true if an existing directory is
  // kept (a directory entry over a directory only updates its attributes).
  Result<bool> PrepareTarget(int parent_fd, const std::string& name, const Entry& entry);
  Status SetOwnerModeXattrs(int fd, const Entry& entry);
  Status ApplyWhiteout(const Entry& entry);
  Status ApplyOpaque(const Entry& entry);
  Status HideLowerChildren(int dir_fd, const std::string& dir_path);
  Status WriteRegular(int parent_fd, const std::string& name, const Entry& entry, Reader& content);
  Status MakeDirectory(int parent_fd, const std::string& name, const Entry& entry, bool exists);
  Status MakeSymlink(int parent_fd, const std::string& name, const Entry& entry);
  Status MakeHardLink(int parent_fd, const std::string& name, const Entry& entry);
  Status MakeNode(int parent_fd, const std::string& name, const Entry& entry);

  int root_fd_;
  ExtractorOptions options_;
  // Paths this layer wrote: whiteouts and opaque markers hide only lower layers' files, even
  // when the marker comes after the file in the tar.
  std::unordered_set<std::string> upper_;
  // Directory times to restore at the end of the layer ([0] atime, [1] mtime).
  std::map<std::string, std::array<timespec, 2>> dir_times_;
  std::vector<std::uint8_t> buffer_;
  std::size_t skipped_devices_ = 0;
};

// rm -rf of `name` inside `dir_fd`, never following symlinks. A missing name is not an error.
Status RemoveAt(int dir_fd, const std::string& name);

}  // namespace sealroot::image::internal
