#include "image/dir_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "base/file.h"
#include "base/log.h"
#include "image/config.h"
#include "image/src/extractor.h"

namespace sealroot::image {
namespace {

class DirLayerSink final : public LayerSink {
 public:
  DirLayerSink(internal::Extractor& extractor, std::string label)
      : extractor_(extractor), label_(std::move(label)) {}
  Status AddEntry(const Entry& entry, Reader* content) override { return extractor_.Apply(entry, content); }
  Status Commit() override { return extractor_.FinishLayer(); }
  // The whole bundle is staged: the image sink's Abort removes it, nothing to undo per layer.
  void Abort(const Status& reason) override { SR_LOG(kDebug) << label_ << " aborted: " << reason.message(); }

 private:
  internal::Extractor& extractor_;
  std::string label_;
};

class DirSink final : public ImageSink {
 public:
  DirSink(std::string dest, std::string staging, UniqueFd rootfs, DirSinkOptions options)
      : dest_(std::move(dest)),
        staging_(std::move(staging)),
        rootfs_(std::move(rootfs)),
        options_(options),
        extractor_(rootfs_.get(), {options.rootless, ::geteuid() == 0}) {}

  ~DirSink() override {
    if (!staging_.empty()) (void)RemoveTree(staging_);
  }

  Result<std::unique_ptr<LayerSink>> OpenLayer(const LayerInfo& info) override {
    return std::unique_ptr<LayerSink>(std::make_unique<DirLayerSink>(
        extractor_, "layer " + std::to_string(info.index + 1) + "/" + std::to_string(info.count)));
  }

  Status Finish(const ImageInfo& image) override {
    if (options_.bundle) {
      SR_RETURN_IF_ERROR(WriteBundleConfig(staging_, rootfs_.get(), image.config_json, options_.rootless));
    }
    if (extractor_.skipped_devices() > 0) {
      SR_LOG(kWarning) << extractor_.skipped_devices() << " device node(s) were not created";
    }
    rootfs_.Reset();
    return Publish();
  }

  void Abort(const Status& reason) override {
    SR_LOG(kDebug) << "removing staging " << staging_ << ": " << reason.message();
    rootfs_.Reset();
    (void)RemoveTree(staging_);
    staging_.clear();
  }

 private:
  // rename() replaces an empty directory atomically; a non-empty one (with replace) is moved
  // aside first and removed once the new bundle is in place.
  Status Publish() {
    std::string old;
    if (options_.replace) {
      SR_ASSIGN_OR_RETURN(bool non_empty, IsNonEmptyDirectory(dest_));
      struct stat st {};
      if (non_empty || (::lstat(dest_.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))) {
        old = staging_ + ".old";
        if (::rename(dest_.c_str(), old.c_str()) != 0) return ErrnoStatus("moving aside " + dest_, errno);
      }
    }
    if (::rename(staging_.c_str(), dest_.c_str()) != 0)
      return ErrnoStatus("renaming the bundle into " + dest_, errno);
    staging_.clear();
    if (!old.empty()) (void)RemoveTree(old);
    return OkStatus();
  }

  std::string dest_;
  std::string staging_;
  UniqueFd rootfs_;
  DirSinkOptions options_;
  internal::Extractor extractor_;
};

}  // namespace

Result<std::unique_ptr<ImageSink>> OpenDirSink(const std::string& dest, const DirSinkOptions& options) {
  if (dest.empty()) return InvalidArgument("empty destination");
  struct stat st {};
  if (::lstat(dest.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode) && !options.replace)
      return AlreadyExists(dest + " exists and is not a directory");
    if (S_ISDIR(st.st_mode) && !options.replace) {
      SR_ASSIGN_OR_RETURN(bool non_empty, IsNonEmptyDirectory(dest));
      if (non_empty) return AlreadyExists(dest + " exists and is not empty (use --replace to replace it)");
    }
  } else if (errno != ENOENT) {
    return ErrnoStatus("checking " + dest, errno);
  }
  std::string name = Basename(dest);
  std::string tmpl = JoinPath(Dirname(dest), "." + name + ".sealroot-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr)
    return ErrnoStatus("creating a staging directory next to " + dest, errno);
  ScopeGuard cleanup([&] { (void)RemoveTree(tmpl); });
  std::string root = tmpl;
  if (options.bundle) {
    root = tmpl + "/rootfs";
    if (::mkdir(root.c_str(), 0755) != 0) return ErrnoStatus("creating " + root, errno);
  } else if (::chmod(root.c_str(), 0755) != 0) {
    return ErrnoStatus("chmod " + root, errno);
  }
  UniqueFd rootfs(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootfs) return ErrnoStatus("opening " + root, errno);
  cleanup.Dismiss();
  return std::unique_ptr<ImageSink>(std::make_unique<DirSink>(dest, tmpl, std::move(rootfs), options));
}

Status WriteBundleConfig(const std::string& bundle_dir, int rootfs_fd, std::string_view image_config_json,
                         bool rootless) {
  SR_ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(image_config_json));
  RuntimeSpecOptions spec_options;
  spec_options.rootfs_fd = rootfs_fd;
  spec_options.rootless = rootless;
  spec_options.host_uid = ::geteuid();
  spec_options.host_gid = ::getegid();
  SR_ASSIGN_OR_RETURN(nlohmann::json spec, RuntimeSpecFromImageConfig(config, spec_options));
  return WriteFileAtomic(JoinPath(bundle_dir, "config.json"), spec.dump(1, '\t'), 0644);
}

}  // namespace sealroot::image
