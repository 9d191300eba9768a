// Decompression stages. gzip goes through ISA-L's igzip when the build found it (several times
// zlib's speed, bench/image/RESULTS.md), otherwise zlib; zstd through libzstd. Every decoder
// accepts concatenated members/frames, as Go's readers (containerd, umoci) do, and counts its
// output against the bomb limit.
#include <zlib.h>
#include <zstd.h>
#ifdef SEALROOT_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include <memory>
#include <vector>

#include "image/stream.h"

namespace sealroot::image {
namespace {

constexpr std::size_t kInputBuffer = 256 * 1024;

// The shared shape: an input buffer refilled from `in_`, a decoder step, and the output budget.
class Decompressor : public Reader {
 public:
  Decompressor(std::unique_ptr<Reader> in, std::uint64_t max_output, const char* name)
      : in_(std::move(in)), buffer_(kInputBuffer), max_output_(max_output), name_(name) {}

  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    if (out.empty() || finished_) return std::size_t{0};
    while (true) {
      if (avail_ == 0 && !input_eof_) {
        SR_ASSIGN_OR_RETURN(std::size_t n, in_->Read(buffer_));
        next_ = buffer_.data();
        avail_ = n;
        input_eof_ = n == 0;
      }
      SR_ASSIGN_OR_RETURN(std::size_t produced, Step(out));
      produced_ += produced;
      if (produced_ > max_output_) {
        return ResourceExhausted(std::string(name_) + ": decompressed size exceeds the limit of " +
                                 std::to_string(max_output_) + " bytes (decompression bomb?)");
      }
      if (produced > 0) return produced;
      if (input_eof_ && avail_ == 0) {
        if (!AtMemberBoundary()) return DataLoss(std::string(name_) + ": compressed stream is truncated");
        finished_ = true;
        return std::size_t{0};
      }
    }
  }

 protected:
  // Decodes from next_/avail_ into `out`, advancing next_/avail_; returns bytes produced.
  virtual Result<std::size_t> Step(std::span<std::uint8_t> out) = 0;
  // True when the input so far ends exactly at the end of a member/frame.
  virtual bool AtMemberBoundary() const = 0;

  std::unique_ptr<Reader> in_;
  std::vector<std::uint8_t> buffer_;
  const std::uint8_t* next_ = nullptr;
  std::size_t avail_ = 0;
  bool input_eof_ = false;

 private:
  std::uint64_t max_output_;
  std::uint64_t produced_ = 0;
  const char* name_;
  bool finished_ = false;
};

class ZlibGunzip final : public Decompressor {
 public:
  ZlibGunzip(std::unique_ptr<Reader> in, std::uint64_t max) : Decompressor(std::move(in), max, "gzip") {
    // 16 + MAX_WBITS: gzip framing only (no raw deflate or zlib streams in an OCI layer).
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) init_failed_ = true;
  }
  ~ZlibGunzip() override { inflateEnd(&z_); }

 protected:
  Result<std::size_t> Step(std::span<std::uint8_t> out) override {
    if (init_failed_) return Internal("gzip: inflateInit2 failed");
    if (member_done_) {
      if (avail_ == 0) return std::size_t{0};
      inflateReset(&z_);
      member_done_ = false;
    }
    z_.next_in = const_cast<Bytef*>(next_);
    z_.avail_in = static_cast<uInt>(avail_);
    z_.next_out = out.data();
    z_.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size(), 1u << 30));
    int rc = inflate(&z_, Z_NO_FLUSH);
    std::size_t produced = static_cast<std::size_t>(z_.next_out - out.data());
    next_ = z_.next_in;
    avail_ = z_.avail_in;
    if (rc == Z_STREAM_END) {
      member_done_ = true;
    } else if (rc == Z_BUF_ERROR && avail_ == 0) {
      // needs more input
    } else if (rc != Z_OK) {
      return DataLoss(std::string("gzip: corrupt data (") + (z_.msg ? z_.msg : "inflate failed") + ")");
    }
    return produced;
  }
  bool AtMemberBoundary() const override { return member_done_; }

 private:
  z_stream z_{};
  bool init_failed_ = false;
  bool member_done_ = false;
};

#ifdef SEALROOT_HAVE_ISAL
class IsalGunzip final : public Decompressor {
 public:
  IsalGunzip(std::unique_ptr<Reader> in, std::uint64_t max)
      : Decompressor(std::move(in), max, "gzip"), state_(std::make_unique<inflate_state>()) {
    Reset();
  }

 protected:
  Result<std::size_t> Step(std::span<std::uint8_t> out) override {
    if (state_->block_state == ISAL_BLOCK_FINISH) {
      if (avail_ == 0) return std::size_t{0};
      Reset();  // another gzip member follows
    }
    state_->next_in = const_cast<std::uint8_t*>(next_);
    state_->avail_in = static_cast<std::uint32_t>(avail_);
    state_->next_out = out.data();
    state_->avail_out = static_cast<std::uint32_t>(std::min<std::size_t>(out.size(), 1u << 30));
    int rc = isal_inflate(state_.get());
    std::size_t produced = static_cast<std::size_t>(state_->next_out - out.data());
    next_ = state_->next_in;
    avail_ = state_->avail_in;
    if (rc != ISAL_DECOMP_OK) {
      const char* why = rc == ISAL_INCORRECT_CHECKSUM ? "CRC mismatch" : "corrupt data";
      return DataLoss(std::string("gzip: ") + why + " (igzip error " + std::to_string(rc) + ")");
    }
    return produced;
  }
  bool AtMemberBoundary() const override { return state_->block_state == ISAL_BLOCK_FINISH; }

 private:
  void Reset() {
    isal_inflate_init(state_.get());
    state_->crc_flag = ISAL_GZIP;  // parse the gzip header, check CRC32 and ISIZE
  }
  std::unique_ptr<inflate_state> state_;  // ~200 KB: on the heap
};
#endif

struct ZstdDctxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

class ZstdReader final : public Decompressor {
 public:
  ZstdReader(std::unique_ptr<Reader> in, std::uint64_t max)
      : Decompressor(std::move(in), max, "zstd"), ctx_(ZSTD_createDCtx()) {}

 protected:
  Result<std::size_t> Step(std::span<std::uint8_t> out) override {
    if (!ctx_) return Internal("zstd: cannot create a decoder");
    if (avail_ == 0 && frame_done_) return std::size_t{0};
    ZSTD_inBuffer in{next_, avail_, 0};
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    std::size_t rc = ZSTD_decompressStream(ctx_.get(), &o, &in);
    if (ZSTD_isError(rc)) return DataLoss(std::string("zstd: corrupt data (") + ZSTD_getErrorName(rc) + ")");
    next_ += in.pos;
    avail_ -= in.pos;
    frame_done_ = rc == 0;
    return o.pos;
  }
  bool AtMemberBoundary() const override { return frame_done_; }

 private:
  std::unique_ptr<ZSTD_DCtx, ZstdDctxDeleter> ctx_;
  bool frame_done_ = false;
};

}  // namespace

bool HaveIsal() {
#ifdef SEALROOT_HAVE_ISAL
  return true;
#else
  return false;
#endif
}

Result<std::unique_ptr<Reader>> MakeDecompressor(Compression compression, std::unique_ptr<Reader> in,
                                                 std::uint64_t max_output, GzipBackend backend) {
  switch (compression) {
    case Compression::kNone:
      return std::unique_ptr<Reader>(std::move(in));
    case Compression::kZstd:
      return std::unique_ptr<Reader>(std::make_unique<ZstdReader>(std::move(in), max_output));
    case Compression::kGzip:
      break;
  }
#ifdef SEALROOT_HAVE_ISAL
  if (backend != GzipBackend::kZlib)
    return std::unique_ptr<Reader>(std::make_unique<IsalGunzip>(std::move(in), max_output));
#else
  if (backend == GzipBackend::kIsal) return Unimplemented("gzip: this build has no ISA-L");
#endif
  return std::unique_ptr<Reader>(std::make_unique<ZlibGunzip>(std::move(in), max_output));
}

}  // namespace sealroot::image
