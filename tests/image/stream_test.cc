// Stream stages: verifying readers and decompressors, including the attacks they stop.
#include "image/stream.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "base/crypto.h"
#include "tests/support/process.h"

namespace sealroot::image {
namespace {

class MemoryReader final : public Reader {
 public:
  explicit MemoryReader(std::string data) : data_(std::move(data)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    std::size_t n = std::min(out.size(), data_.size() - pos_);
    std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  std::size_t pos_ = 0;
};

std::unique_ptr<Reader> Mem(std::string s) {
  return std::make_unique<MemoryReader>(std::move(s));
}

std::string Compress(const std::vector<std::string>& argv, const std::string& data) {
  testing::CommandOptions o;
  o.stdin_data = data;
  auto r = testing::Run(argv, o);
  EXPECT_TRUE(r.ok()) << r.err;
  return r.out;
}

std::string Payload() {
  std::string s;
  for (int i = 0; i < 200000; ++i) s += "line " + std::to_string(i) + "\n";
  return s;
}

Result<std::string> Decompress(Compression c, std::string in, std::uint64_t limit = 1ull << 32,
                               GzipBackend backend = GzipBackend::kDefault) {
  SR_ASSIGN_OR_RETURN(auto r, MakeDecompressor(c, Mem(std::move(in)), limit, backend));
  return ReadAll(*r, 1u << 30);
}

TEST(VerifyingReader, AcceptsExactContent) {
  std::string data = "hello";
  auto r = MakeVerifyingReader(Mem(data), Digest::FromSha256(Sha256Of(data)), 5, "blob");
  auto all = ReadAll(*r, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, data);
}

TEST(VerifyingReader, TamperedBlobIsDataLoss) {
  auto r =
      MakeVerifyingReader(Mem("hellO"), Digest::FromSha256(Sha256Of(std::string_view("hello"))), 5, "blob x");
  auto all = ReadAll(*r, 100);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), Code::kDataLoss);
  EXPECT_NE(all.status().message().find("blob x: digest mismatch"), std::string::npos);
}

TEST(VerifyingReader, TruncatedAndOverlongBlobsAreDataLoss) {
  Digest d = Digest::FromSha256(Sha256Of(std::string_view("hello")));
  auto short_reader = MakeVerifyingReader(Mem("hell"), d, 5, "blob");
  EXPECT_EQ(ReadAll(*short_reader, 100).status().code(), Code::kDataLoss);
  auto long_reader = MakeVerifyingReader(Mem("hello, and more"), d, 5, "blob");
  auto r = ReadAll(*long_reader, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("more than the declared"), std::string::npos);
}

TEST(Decompress, GzipBackendsAgree) {
  std::string data = Payload();
  std::string gz = Compress({"gzip", "-c"}, data);
  auto zlib = Decompress(Compression::kGzip, gz, 1ull << 32, GzipBackend::kZlib);
  ASSERT_TRUE(zlib.ok()) << zlib.status().ToString();
  EXPECT_EQ(*zlib, data);
  auto def = Decompress(Compression::kGzip, gz);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  EXPECT_EQ(*def, data);
}

TEST(Decompress, ConcatenatedGzipMembers) {
  std::string gz = Compress({"gzip", "-c"}, "first\n") + Compress({"gzip", "-c"}, "second\n");
  for (auto backend : {GzipBackend::kZlib, GzipBackend::kDefault}) {
    auto out = Decompress(Compression::kGzip, gz, 1 << 20, backend);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(*out, "first\nsecond\n");
  }
}

TEST(Decompress, TruncatedGzipIsDataLoss) {
  std::string gz = Compress({"gzip", "-c"}, Payload());
  for (auto backend : {GzipBackend::kZlib, GzipBackend::kDefault}) {
    auto out = Decompress(Compression::kGzip, gz.substr(0, gz.size() / 2), 1ull << 32, backend);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), Code::kDataLoss) << out.status().ToString();
  }
}

TEST(Decompress, CorruptGzipIsDataLoss) {
  std::string gz = Compress({"gzip", "-c"}, Payload());
  gz[gz.size() / 2] ^= 0x55;
  gz[gz.size() / 2 + 1] ^= 0x55;
  for (auto backend : {GzipBackend::kZlib, GzipBackend::kDefault}) {
    EXPECT_EQ(Decompress(Compression::kGzip, gz, 1ull << 32, backend).status().code(), Code::kDataLoss);
  }
}

TEST(Decompress, GzipBombStopsAtTheLimit) {
  std::string gz = Compress({"gzip", "-c"}, std::string(8 << 20, '\0'));
  for (auto backend : {GzipBackend::kZlib, GzipBackend::kDefault}) {
    auto out = Decompress(Compression::kGzip, gz, 1 << 20, backend);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), Code::kResourceExhausted);
    EXPECT_NE(out.status().message().find("decompression bomb"), std::string::npos);
  }
}

TEST(Decompress, ZstdRoundTripTruncationAndBomb) {
  std::string data = Payload();
  std::string zst = Compress({"zstd", "-q", "-c"}, data);
  auto out = Decompress(Compression::kZstd, zst);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, data);
  EXPECT_EQ(Decompress(Compression::kZstd, zst.substr(0, zst.size() - 10)).status().code(), Code::kDataLoss);
  EXPECT_EQ(Decompress(Compression::kZstd, zst, 1000).status().code(), Code::kResourceExhausted);
}

// Fails after yielding `good` bytes.
class FailingReader final : public Reader {
 public:
  explicit FailingReader(std::string good) : inner_(std::move(good)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    SR_ASSIGN_OR_RETURN(std::size_t n, inner_.Read(out));
    if (n == 0) return DataLoss("blob y: digest mismatch");
    return n;
  }

 private:
  MemoryReader inner_;
};

TEST(ReadAhead, PassesEveryByteThrough) {
  std::string data = Payload();
  auto r = MakeReadAhead(Mem(data), 4096, 2);
  auto all = ReadAll(*r, 1u << 30);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, data);
}

TEST(ReadAhead, ErrorArrivesAfterTheDataBeforeIt) {
  auto r = MakeReadAhead(std::make_unique<FailingReader>(std::string(10000, 'z')), 4096, 2);
  std::string got;
  std::array<std::uint8_t, 1000> buf;
  while (true) {
    auto n = r->Read(buf);
    if (!n.ok()) {
      EXPECT_EQ(n.status().code(), Code::kDataLoss);
      break;
    }
    ASSERT_NE(*n, 0u) << "end of stream instead of the error";
    got.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  EXPECT_EQ(got, std::string(10000, 'z'));
}

TEST(ReadAhead, AbandonedEarlyStopsItsThread) {
  auto r = MakeReadAhead(Mem(Payload()), 1024, 1);
  std::array<std::uint8_t, 10> buf;
  ASSERT_TRUE(r->Read(buf).ok());
  r.reset();  // must join, not hang, while the producer waits for queue space
}

TEST(Decompress, MediaTypes) {
  EXPECT_EQ(*CompressionOfLayer("application/vnd.oci.image.layer.v1.tar"), Compression::kNone);
  EXPECT_EQ(*CompressionOfLayer("application/vnd.oci.image.layer.v1.tar+zstd"), Compression::kZstd);
  EXPECT_EQ(*CompressionOfLayer("application/vnd.docker.image.rootfs.diff.tar.gzip"), Compression::kGzip);
  EXPECT_FALSE(CompressionOfLayer("application/vnd.oci.image.layer.v1.tar+bzip2").ok());
  EXPECT_FALSE(CompressionOfLayer("text/plain").ok());
}

}  // namespace
}  // namespace sealroot::image
