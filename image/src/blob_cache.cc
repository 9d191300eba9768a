#include "image/src/blob_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/file.h"
#include "base/log.h"
#include "image/stream.h"

namespace sealroot::image::internal {
namespace {

// Copies what a verifying reader yields into a temporary file; at its verified end the file
// takes the blob's name. Anything else (an error, an early destruction) removes it.
class TeeToCache final : public Reader {
 public:
  TeeToCache(std::unique_ptr<Reader> verified, UniqueFd fd, std::string tmp, std::string final_path)
      : inner_(std::move(verified)),
        fd_(std::move(fd)),
        tmp_(std::move(tmp)),
        final_(std::move(final_path)) {}
  ~TeeToCache() override {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    SR_ASSIGN_OR_RETURN(std::size_t n, inner_->Read(out));
    if (tmp_.empty()) return n;
    if (n > 0) {
      if (!WriteAll(fd_.get(), out.first(n)).ok()) Drop();
      return n;
    }
    // The end: the inner reader checked digest and size before returning 0.
    if (::fsync(fd_.get()) == 0 && ::rename(tmp_.c_str(), final_.c_str()) == 0) {
      SR_LOG(kDebug) << "blob cache: kept " << final_;
      tmp_.clear();
    } else {
      Drop();
    }
    return n;
  }

 private:
  void Drop() {
    SR_LOG(kDebug) << "blob cache: cannot write " << tmp_ << ": " << std::strerror(errno);
    ::unlink(tmp_.c_str());
    tmp_.clear();
  }
  std::unique_ptr<Reader> inner_;
  UniqueFd fd_;
  std::string tmp_, final_;
};

class CachingSource final : public ImageSource {
 public:
  CachingSource(std::unique_ptr<ImageSource> inner, std::string dir)
      : inner_(std::move(inner)), dir_(std::move(dir)) {}

  const Reference& reference() const override { return inner_->reference(); }
  bool IsRemote() const override { return inner_->IsRemote(); }
  bool HasLocalCopy(const Descriptor& d) const override { return ::access(PathOf(d).c_str(), R_OK) == 0; }
  Result<ManifestBytes> GetManifest(std::string_view tag_or_digest) override {
    return inner_->GetManifest(tag_or_digest);
  }

  Result<std::unique_ptr<Reader>> OpenBlob(const Descriptor& d) override {
    std::string path = PathOf(d);
    if (Status s = Verify(d, path); s.ok()) {
      SR_LOG(kDebug) << "blob cache: hit " << d.digest.str() << " (" << path << ")";
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd) {
        return MakeVerifyingReader(MakeFdReader(std::move(fd)), d.digest, d.size,
                                   "cached blob " + d.digest.str());
      }
    } else if (s.code() != Code::kNotFound) {
      SR_LOG(kWarning) << "blob cache: dropping " << path << ": " << s.message();
      ::unlink(path.c_str());
    }
    SR_ASSIGN_OR_RETURN(std::unique_ptr<Reader> blob, inner_->OpenBlob(d));
    std::string tmp = dir_ + "/sha256/.tmp-" + std::string(d.digest.hex()) + "-XXXXXX";
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd) {
      SR_LOG(kDebug) << "blob cache: cannot create a file in " << dir_ << ": " << std::strerror(errno);
      return blob;
    }
    ::fchmod(fd.get(), 0644);
    return std::unique_ptr<Reader>(std::make_unique<TeeToCache>(std::move(blob), std::move(fd), tmp, path));
  }

 private:
  std::string PathOf(const Descriptor& d) const { return dir_ + "/sha256/" + std::string(d.digest.hex()); }

  // kNotFound when absent; kDataLoss when the file is not the blob.
  static Status Verify(const Descriptor& d, const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return NotFound("not cached");
    return Drain(*MakeVerifyingReader(MakeFdReader(std::move(fd)), d.digest, d.size, "cached blob"));
  }

  std::unique_ptr<ImageSource> inner_;
  std::string dir_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> WrapWithBlobCache(std::unique_ptr<ImageSource> inner,
                                                       const std::string& dir) {
  SR_RETURN_IF_ERROR_CTX(MakeDirs(dir + "/sha256"), "creating the blob cache " + dir);
  return std::unique_ptr<ImageSource>(std::make_unique<CachingSource>(std::move(inner), dir));
}

}  // namespace sealroot::image::internal
