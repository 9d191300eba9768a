#include "image/stream.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <optional>

#include "base/crypto.h"
#include "base/interrupt.h"

namespace sealroot::image {
namespace {

class FdReader final : public Reader {
 public:
  explicit FdReader(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    while (true) {
      ssize_t n = ::read(fd_.get(), out.data(), out.size());
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return ErrnoStatus("read", errno);
    }
  }

 private:
  UniqueFd fd_;
};

class VerifyingReader final : public Reader {
 public:
  VerifyingReader(std::unique_ptr<Reader> inner, Digest expected, std::int64_t size, std::string label)
      : inner_(std::move(inner)), expected_(std::move(expected)), size_(size), label_(std::move(label)) {}

  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    if (done_) return std::size_t{0};
    if (Interrupted()) return Cancelled(label_ + ": interrupted");
    // Ask for one byte more than remains, so an overlong stream is caught without reading on.
    if (size_ >= 0) {
      std::uint64_t remaining = static_cast<std::uint64_t>(size_) - seen_;
      if (out.size() > remaining + 1) out = out.first(remaining + 1);
    }
    // An error of the stream beneath is not this check's: it keeps its own words.
    SR_ASSIGN_OR_RETURN(std::size_t read, inner_->Read(out));
    auto n = std::optional<std::size_t>(read);
    seen_ += *n;
    if (size_ >= 0 && seen_ > static_cast<std::uint64_t>(size_)) {
      return DataLoss(label_ + ": more than the declared " + std::to_string(size_) + " bytes");
    }
    if (*n > 0) {
      hash_.Update(out.first(*n));
      return *n;
    }
    done_ = true;
    if (size_ >= 0 && seen_ != static_cast<std::uint64_t>(size_)) {
      return DataLoss(label_ + ": truncated: " + std::to_string(seen_) + " of " + std::to_string(size_) +
                      " bytes");
    }
    Digest got = Digest::FromSha256(hash_.Finish());
    if (got != expected_)
      return DataLoss(label_ + ": digest mismatch: got " + got.str() + ", want " + expected_.str());
    return std::size_t{0};
  }

 private:
  std::unique_ptr<Reader> inner_;
  Digest expected_;
  std::int64_t size_;
  std::string label_;
  Sha256 hash_;
  std::uint64_t seen_ = 0;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<Reader> MakeFdReader(UniqueFd fd) {
  return std::make_unique<FdReader>(std::move(fd));
}

std::unique_ptr<Reader> MakeVerifyingReader(std::unique_ptr<Reader> inner, Digest expected, std::int64_t size,
                                            std::string label) {
  return std::make_unique<VerifyingReader>(std::move(inner), std::move(expected), size, std::move(label));
}

Result<Compression> CompressionOfLayer(std::string_view media_type) {
  for (std::string_view prefix : {"application/vnd.oci.image.layer.v1.tar",
                                  "application/vnd.oci.image.layer.nondistributable.v1.tar"}) {
    if (!media_type.starts_with(prefix)) continue;
    std::string_view rest = media_type.substr(prefix.size());
    if (rest.empty()) return Compression::kNone;
    if (rest == "+gzip") return Compression::kGzip;
    if (rest == "+zstd") return Compression::kZstd;
  }
  if (media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
      media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") {
    return Compression::kGzip;
  }
  if (media_type == "application/vnd.docker.image.rootfs.diff.tar") return Compression::kNone;
  return InvalidArgument("unsupported layer media type '" + std::string(media_type) + "'");
}

Result<std::string> ReadAll(Reader& reader, std::size_t max_size) {
  std::string out;
  std::array<std::uint8_t, 16384> buf;
  while (true) {
    SR_ASSIGN_OR_RETURN(std::size_t n, reader.Read(buf));
    if (n == 0) return out;
    if (out.size() + n > max_size)
      return ResourceExhausted("more than " + std::to_string(max_size) + " bytes");
    out.append(reinterpret_cast<const char*>(buf.data()), n);
  }
}

Status Drain(Reader& reader) {
  std::array<std::uint8_t, 65536> buf;
  while (true) {
    SR_ASSIGN_OR_RETURN(std::size_t n, reader.Read(buf));
    if (n == 0) return OkStatus();
  }
}

}  // namespace sealroot::image
