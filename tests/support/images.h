// Test images built with the real tools (umoci, skopeo, busybox-static), crafted layer tars, and
// the tree comparison used to hold `sealroot unpack` against `umoci unpack`. Shared by every
// part's tests. Functions throw std::runtime_error when a tool fails (a fixture bug, not a
// test result).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace sealroot::testing {

// One member of a crafted layer tar (written in PAX format by Python's tarfile).
struct TarEntry {
  enum Type : char {
    kFile = '0',
    kHardLink = '1',
    kSymlink = '2',
    kChar = '3',
    kBlock = '4',
    kDir = '5',
    kFifo = '6'
  };
  Type type = kFile;
  std::string name;  // verbatim, so tests can write "../x" or "/etc/x"
  std::string data;  // kFile content
  std::string link;  // kSymlink target / kHardLink target name
  std::uint32_t mode = 0644;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime = 1600000000;
  std::uint32_t major = 0;
  std::uint32_t minor = 0;
  std::map<std::string, std::string> xattrs;  // PAX SCHILY.xattr.<name>
};

// Writes an uncompressed tar with exactly these members, in order.
void WriteTar(const std::string& path, const std::vector<TarEntry>& entries);

// An OCI layout at `dir` with an empty image tagged `tag`; returns "oci:DIR:TAG".
std::string NewLayoutImage(const std::string& dir, const std::string& tag);
// Appends an uncompressed layer tar (umoci gzips it) to the image `ref` ("oci:DIR:TAG").
void AddLayer(const std::string& ref, const std::string& tar_path);
// Appends a layer holding one file of `bytes` zeros, made with truncate + tar and gzipped by
// umoci: a decompression bomb (300 MB become ~300 KB). `work_dir` holds the temporary tar.
void AddZerosLayer(const std::string& ref, const std::string& work_dir, std::uint64_t bytes);
// A new manifest tagged `new_tag` in the same layout whose layers are `count` copies of `ref`'s
// last layer (DiffIDs to match); returns its "oci:DIR:TAG".
std::string RepeatLastLayer(const std::string& ref, const std::string& new_tag, std::size_t count);
// `umoci config` with the given flags (e.g. {"--config.entrypoint=/bin/sh"}).
void ConfigureImage(const std::string& ref, const std::vector<std::string>& flags);

// busybox-static with its applet symlinks, /etc/passwd and /etc/group; Entrypoint /bin/sh.
// One layer. Returns "oci:DIR:TAG".
std::string BuildBusyboxImage(const std::string& dir, const std::string& tag = "busybox");

// The layered, feature-rich image: three layers exercising whiteouts (file and directory),
// an opaque directory (marker after the new children, too), hard links (groups across
// directories, a link to a file later replaced), symlinks (absolute, relative, dangling), a
// 200-byte name, setuid/setgid/sticky modes, uid/gid, user xattrs, a fifo, a char device,
// duplicate entries, directory mtimes. Config: Entrypoint, Cmd, Env, WorkingDir, User.
std::string BuildFeatureRichImage(const std::string& dir, const std::string& tag = "rich");

// A multi-platform OCI index tagged `tag` in the layout `dir`, naming the busybox image as
// linux/amd64 and an arm64 variant (config architecture arm64, same layers plus a marker file
// /platform containing "arm64") as linux/arm64/v8. Returns "oci:DIR:TAG".
std::string BuildMultiPlatformImage(const std::string& dir, const std::string& tag = "multi");

// `skopeo copy --dest-compress-format zstd`: a zstd twin of `ref` at oci:DEST_DIR:TAG.
std::string MakeZstdTwin(const std::string& ref, const std::string& dest_dir, const std::string& tag);

// `umoci unpack [--rootless] --image REF BUNDLE` (the oracle).
void UmociUnpack(const std::string& ref, const std::string& bundle, bool rootless = false);

// One node of an unpacked tree, with what the comparison covers.
struct TreeNode {
  char type = '?';  // f d l c b p s
  mode_t mode = 0;  // permission bits incl. setuid/setgid/sticky
  uid_t uid = 0;
  gid_t gid = 0;
  std::uint64_t size = 0;                                   // regular files
  std::string sha256;                                       // regular files
  std::string link;                                         // symlink target
  std::int64_t mtime = 0;                                   // regular files and symlinks
  dev_t rdev = 0;                                           // devices
  std::vector<std::pair<std::string, std::string>> xattrs;  // sorted
  std::string hardlink_group;  // regular files with nlink > 1: the first path of the group
};
using Tree = std::map<std::string, TreeNode>;  // relative path -> node (the root is "")

Tree ScanTree(const std::string& root);
// Human-readable differences ("" when equal), at most `max_lines` lines.
std::string DiffTrees(const Tree& expected, const Tree& actual, std::size_t max_lines = 20);

}  // namespace sealroot::testing
