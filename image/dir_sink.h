// The directory sink: unpacks an image into an OCI runtime bundle the way `umoci unpack` does —
// DEST/rootfs with OCI layer semantics (whiteouts, opaque directories, hard links, devices,
// ownership, setuid, xattrs, times) and DEST/config.json from the image config.
//
// Nothing appears at DEST before Finish: the bundle is built in a staging directory next to it
// (".DEST.sealroot-XXXXXX") and renamed into place; Abort, an error, Ctrl-C or destroying the sink
// unfinished removes the staging. An existing non-empty DEST is an error unless `replace`.
//
// Thread-safety: layers arrive in order from one thread (image/sink.h).
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "image/sink.h"

namespace sealroot::image {

struct DirSinkOptions {
  bool rootless = false;  // umoci --rootless: no chown/mknod, ownership kept in an xattr
  bool replace = false;   // replace an existing non-empty DEST once the new bundle is complete
  bool bundle = true;     // true: DEST/rootfs + DEST/config.json; false: DEST is the root itself
};

// Checks DEST and creates the staging directory.
Result<std::unique_ptr<ImageSink>> OpenDirSink(const std::string& dest, const DirSinkOptions& options);

// Writes DEST/config.json for an unpacked root (the runtime spec of image/config.h); used by the
// directory sink and by anything else that lays out a bundle.
Status WriteBundleConfig(const std::string& bundle_dir, int rootfs_fd, std::string_view image_config_json,
                         bool rootless);

}  // namespace sealroot::image
