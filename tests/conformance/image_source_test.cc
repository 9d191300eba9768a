// One contract, every implementation: image::ImageSource (image/source.h) for each transport —
// a registry (docker-registry on 127.0.0.1), an OCI layout and an oci-archive — all holding the
// same image. Sources return exact bytes; manifests fetched by digest are verified; blob readers
// yield at most the descriptor's size and fail with kDataLoss at the end when size or sha256
// disagree; a source may be used from several threads at once.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/crypto.h"
#include "base/encoding.h"
#include "image/manifest.h"
#include "image/pull.h"
#include "tests/support/images.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace sealroot::image {
namespace {

using sealroot::testing::Registry;
using sealroot::testing::TempDir;

enum class Transport_ { kRegistry, kOciLayout, kOciArchive };

struct Drained {
  std::string bytes;
  Status status;  // of the read that ended the stream
};

Drained DrainReader(Reader& reader) {
  Drained out;
  std::vector<std::uint8_t> buffer(7919);
  while (true) {
    auto n = reader.Read(buffer);
    if (!n.ok()) {
      out.status = n.status();
      return out;
    }
    if (*n == 0) return out;
    out.bytes.append(reinterpret_cast<const char*>(buffer.data()), *n);
  }
}

class ImageSourceConformanceTest : public ::testing::TestWithParam<Transport_> {
 protected:
  static void SetUpTestSuite() {
    images_ = new TempDir();
    layout_ref_ = sealroot::testing::BuildBusyboxImage(*images_ / "layout", "busybox");
    archive_ref_ = "oci-archive:" + (*images_ / "busybox.tar") + ":busybox";
    auto copy =
        sealroot::testing::Run({"skopeo", "--insecure-policy", "copy", "--quiet", layout_ref_, archive_ref_});
    ASSERT_EQ(copy.exit_code, 0) << copy.err;
    registry_ = new Registry();
    registry_->Push(layout_ref_, "busybox:busybox");
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    delete images_;
    images_ = nullptr;
  }

  void SetUp() override {
    std::string text;
    PullOptions options;
    switch (GetParam()) {
      case Transport_::kRegistry:
        text = registry_->Ref("busybox:busybox");
        options.tls_verify = false;
        break;
      case Transport_::kOciLayout:
        text = layout_ref_;
        break;
      case Transport_::kOciArchive:
        text = archive_ref_;
        break;
    }
    auto ref = Reference::Parse(text);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    ref_ = *ref;
    auto source = OpenImageSource(ref_, options);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    source_ = std::move(*source);
    auto manifest = source_->GetManifest(ref_.TagOrDigest());
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    manifest_bytes_.emplace(std::move(*manifest));
    auto parsed = ParseManifest(manifest_bytes_->bytes, manifest_bytes_->media_type);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    manifest_.emplace(std::move(*parsed));
  }

  static TempDir* images_;
  static std::string layout_ref_, archive_ref_;
  static Registry* registry_;
  Reference ref_;
  std::unique_ptr<ImageSource> source_;
  std::optional<ManifestBytes> manifest_bytes_;  // no default: a Digest is always valid
  std::optional<Manifest> manifest_;
};

TempDir* ImageSourceConformanceTest::images_ = nullptr;
std::string ImageSourceConformanceTest::layout_ref_, ImageSourceConformanceTest::archive_ref_;
Registry* ImageSourceConformanceTest::registry_ = nullptr;

TEST_P(ImageSourceConformanceTest, ReferenceAndRemotenessDescribeTheTransport) {
  EXPECT_EQ(source_->reference().ToString(), ref_.ToString());
  EXPECT_EQ(source_->IsRemote(), GetParam() == Transport_::kRegistry);
}

TEST_P(ImageSourceConformanceTest, ManifestByTagIsExactBytesWithTheirDigest) {
  EXPECT_EQ(manifest_bytes_->digest, Digest::FromSha256(Sha256Of(manifest_bytes_->bytes)));
  EXPECT_TRUE(IsManifestMediaType(manifest_bytes_->media_type)) << manifest_bytes_->media_type;
  EXPECT_EQ(manifest_->layers.size(), 1u);
}

TEST_P(ImageSourceConformanceTest, ManifestByDigestIsTheSameBytesAndAnUnknownDigestFails) {
  auto by_digest = source_->GetManifest(manifest_bytes_->digest.str());
  ASSERT_TRUE(by_digest.ok()) << by_digest.status().ToString();
  EXPECT_EQ(by_digest->bytes, manifest_bytes_->bytes);
  EXPECT_EQ(by_digest->digest, manifest_bytes_->digest);
  auto unknown = source_->GetManifest(Digest::FromSha256(Sha256Of("no such manifest")).str());
  EXPECT_FALSE(unknown.ok());
}

TEST_P(ImageSourceConformanceTest, BlobsStreamExactlyTheirBytes) {
  std::vector<Descriptor> blobs = manifest_->layers;
  blobs.push_back(manifest_->config);
  for (const Descriptor& d : blobs) {
    auto reader = source_->OpenBlob(d);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    Drained got = DrainReader(**reader);
    ASSERT_TRUE(got.status.ok()) << d.digest.str() << ": " << got.status.ToString();
    EXPECT_EQ(got.bytes.size(), static_cast<std::size_t>(d.size));
    EXPECT_EQ(Digest::FromSha256(Sha256Of(got.bytes)), d.digest);
  }
}

TEST_P(ImageSourceConformanceTest, ABlobLongerThanItsDescriptorSaysIsDataLoss) {
  Descriptor shorter = manifest_->config;
  shorter.size -= 1;
  auto reader = source_->OpenBlob(shorter);
  if (!reader.ok()) {  // refusing up front is as good as failing at the end
    EXPECT_EQ(reader.status().code(), Code::kDataLoss) << reader.status().ToString();
    return;
  }
  Drained got = DrainReader(**reader);
  EXPECT_LE(got.bytes.size(), static_cast<std::size_t>(shorter.size));
  EXPECT_EQ(got.status.code(), Code::kDataLoss) << got.status.ToString();
}

TEST_P(ImageSourceConformanceTest, ABlobShorterThanItsDescriptorSaysIsDataLoss) {
  Descriptor longer = manifest_->config;
  longer.size += 1;
  auto reader = source_->OpenBlob(longer);
  if (!reader.ok()) {
    EXPECT_EQ(reader.status().code(), Code::kDataLoss) << reader.status().ToString();
    return;
  }
  Drained got = DrainReader(**reader);
  EXPECT_EQ(got.status.code(), Code::kDataLoss) << got.status.ToString();
}

TEST_P(ImageSourceConformanceTest, BlobsFromSeveralThreadsAtOnceAllVerify) {
  std::atomic<int> verified{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      const Descriptor& d = i % 2 ? manifest_->config : manifest_->layers[0];
      auto reader = source_->OpenBlob(d);
      if (!reader.ok()) return;
      Drained got = DrainReader(**reader);
      if (got.status.ok() && Digest::FromSha256(Sha256Of(got.bytes)) == d.digest) ++verified;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(verified.load(), 4);
}

INSTANTIATE_TEST_SUITE_P(Transports, ImageSourceConformanceTest,
                         ::testing::Values(Transport_::kRegistry, Transport_::kOciLayout,
                                           Transport_::kOciArchive),
                         [](const ::testing::TestParamInfo<Transport_>& param_info) {
                           switch (param_info.param) {
                             case Transport_::kRegistry:
                               return std::string("Registry");
                             case Transport_::kOciLayout:
                               return std::string("OciLayout");
                             case Transport_::kOciArchive:
                               return std::string("OciArchive");
                           }
                           return std::string("unknown");
                         });

}  // namespace
}  // namespace sealroot::image
