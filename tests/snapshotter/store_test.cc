// The snapshot store against containerd's overlayfs semantics (mount shapes, commit and remove
// rules, labels, usage, filters), its metadata across a reopen, placeholders, and the
// confidential-image classifier.
#include "snapshotter/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/crypto.h"
#include "base/encoding.h"
#include "snapshotter/classify.h"
#include "snapshotter/config.h"
#include "tests/support/process.h"

namespace sealroot::snapshotter {
namespace {

using sealroot::testing::TempDir;

std::unique_ptr<Store> OpenStore(const std::string& root) {
  Result<std::unique_ptr<Store>> store = Store::Open(root);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

std::string Fs(const std::string& root, int id) {
  return root + "/snapshots/" + std::to_string(id) + "/fs";
}

bool EmptyDir(const std::string& dir) {
  return std::filesystem::is_empty(dir);
}

TEST(SnapshotStore, MountsAreOverlayfsMounts) {
  TempDir dir;
  const std::string root = dir / "root";
  auto store = OpenStore(root);
  Result<std::vector<Mount>> base = store->Prepare("base-active", "", {});
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  ASSERT_EQ(base->size(), 1u);
  EXPECT_EQ((*base)[0].type, "bind");
  EXPECT_EQ((*base)[0].source, Fs(root, 1));
  EXPECT_EQ((*base)[0].options, (std::vector<std::string>{"rw", "rbind"}));
  std::ofstream(Fs(root, 1) + "/file") << "layer one";
  ASSERT_TRUE(store->Commit("layer1", "base-active", {{"k", "v"}}).ok());

  Result<std::vector<Mount>> view = store->View("view1", "layer1", {});
  ASSERT_TRUE(view.ok());
  EXPECT_EQ((*view)[0].type, "bind");
  EXPECT_EQ((*view)[0].source, Fs(root, 1));  // the parent itself, read-only
  EXPECT_EQ((*view)[0].options, (std::vector<std::string>{"ro", "rbind"}));

  Result<std::vector<Mount>> child = store->Prepare("child-active", "layer1", {});
  ASSERT_TRUE(child.ok());
  ASSERT_EQ((*child)[0].type, "overlay");
  const std::vector<std::string>& options = (*child)[0].options;
  EXPECT_NE(std::find(options.begin(), options.end(), "upperdir=" + Fs(root, 3)), options.end());
  EXPECT_NE(std::find(options.begin(), options.end(), "workdir=" + root + "/snapshots/3/work"),
            options.end());
  EXPECT_EQ(options.back(), "lowerdir=" + Fs(root, 1));
  ASSERT_TRUE(store->Commit("layer2", "child-active", {}).ok());
  EXPECT_FALSE(std::filesystem::exists(root + "/snapshots/3/work"));

  // Two parents: lowerdir nearest first; a view has no upper.
  Result<std::vector<Mount>> top = store->View("view2", "layer2", {});
  ASSERT_TRUE(top.ok());
  ASSERT_EQ((*top)[0].type, "overlay");
  EXPECT_EQ((*top)[0].options.back(), "lowerdir=" + Fs(root, 3) + ":" + Fs(root, 1));
  for (const std::string& o : (*top)[0].options) EXPECT_FALSE(o.starts_with("upperdir=")) << o;
  Result<std::vector<Mount>> again = store->Mounts("view2");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].options, (*top)[0].options);
  EXPECT_EQ(store->Mounts("layer2").status().code(), Code::kFailedPrecondition);
}

TEST(SnapshotStore, CommitAndRemoveFollowTheParentRules) {
  TempDir dir;
  auto store = OpenStore(dir / "root");
  ASSERT_TRUE(store->Prepare("a", "", {}).ok());
  EXPECT_EQ(store->Prepare("a", "", {}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(store->Prepare("b", "a", {}).status().code(), Code::kInvalidArgument);  // parent not committed
  EXPECT_EQ(store->Prepare("b", "missing", {}).status().code(), Code::kNotFound);
  ASSERT_TRUE(store->Commit("c1", "a", {}).ok());
  EXPECT_EQ(store->Stat("a").status().code(), Code::kNotFound);
  ASSERT_TRUE(store->View("v", "c1", {}).ok());
  EXPECT_EQ(store->Commit("c2", "v", {}).code(), Code::kFailedPrecondition);  // a view
  ASSERT_TRUE(store->Prepare("a2", "c1", {}).ok());
  EXPECT_EQ(store->Commit("c1", "a2", {}).code(), Code::kAlreadyExists);

  // c1 has two children: it stays until both are gone.
  Status refused = store->Remove("c1");
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition) << refused.ToString();
  ASSERT_TRUE(store->Remove("v").ok());
  EXPECT_EQ(store->Remove("c1").code(), Code::kFailedPrecondition);
  ASSERT_TRUE(store->Remove("a2").ok());
  ASSERT_TRUE(store->Remove("c1").ok());
  EXPECT_EQ(store->Remove("c1").code(), Code::kNotFound);
  EXPECT_TRUE(EmptyDir(dir / "root/snapshots"));
}

TEST(SnapshotStore, MetadataLabelsAndUsageSurviveAReopen) {
  TempDir dir;
  const std::string root = dir / "root";
  {
    auto store = OpenStore(root);
    ASSERT_TRUE(store->Prepare("a", "", {{"at-prepare", "1"}}).ok());
    std::ofstream(Fs(root, 1) + "/data") << std::string(10000, 'x');
    Result<Usage> active = store->GetUsage("a");
    ASSERT_TRUE(active.ok());
    EXPECT_EQ(active->inodes, 2);
    EXPECT_GE(active->size, 10000);
    ASSERT_TRUE(store->Commit("base", "a", {{"containerd.io/snapshot.ref", "sha256:1"}}).ok());
    ASSERT_TRUE(store->Prepare("top", "base", {{"x", "1"}, {"y", "2"}}).ok());
    std::string paths[] = {"labels.x", "labels.z"};
    Result<Info> updated = store->Update(Info{.name = "top", .labels = {{"z", "3"}}}, paths);
    ASSERT_TRUE(updated.ok());
    EXPECT_EQ(updated->labels, (Labels{{"y", "2"}, {"z", "3"}}));
    std::string bad[] = {"parent"};
    EXPECT_EQ(store->Update(Info{.name = "top"}, bad).status().code(), Code::kInvalidArgument);
  }
  // An interrupted create leaves a directory no snapshot owns: the next open removes it.
  std::filesystem::create_directories(root + "/snapshots/new-9/fs");
  std::filesystem::create_directories(root + "/snapshots/77/fs");
  auto store = OpenStore(root);
  Result<Info> base = store->Stat("base");
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->kind, Kind::kCommitted);
  EXPECT_EQ(base->labels, (Labels{{"containerd.io/snapshot.ref", "sha256:1"}}));
  Result<Usage> usage = store->GetUsage("base");
  ASSERT_TRUE(usage.ok());
  EXPECT_GE(usage->size, 10000);
  Result<Info> top = store->Stat("top");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->kind, Kind::kActive);
  EXPECT_EQ(top->parent, "base");
  EXPECT_EQ(top->labels, (Labels{{"y", "2"}, {"z", "3"}}));
  Result<std::vector<Mount>> mounts = store->Mounts("top");
  ASSERT_TRUE(mounts.ok());
  EXPECT_EQ((*mounts)[0].options.back(), "lowerdir=" + Fs(root, 1));
  EXPECT_FALSE(std::filesystem::exists(root + "/snapshots/new-9"));
  EXPECT_FALSE(std::filesystem::exists(root + "/snapshots/77"));
  // Ids are not reused after a reopen.
  ASSERT_TRUE(store->Prepare("next", "", {}).ok());
  EXPECT_TRUE(std::filesystem::exists(Fs(root, 3)));
}

// containerd's metadata store, after a Prepare answered ALREADY_EXISTS, looks for the committed
// snapshot with this filter: the placeholder must match it, and nothing else.
TEST(SnapshotStore, APlaceholderIsWhatContainerdLooksFor) {
  TempDir dir;
  const std::string root = dir / "root";
  auto store = OpenStore(root);
  ASSERT_TRUE(store->Prepare("k8s.io/1/a", "", {}).ok());
  ASSERT_TRUE(
      store->Commit("k8s.io/2/base", "k8s.io/1/a", {{"containerd.io/snapshot.ref", "sha256:aa"}}).ok());
  ASSERT_TRUE(store
                  ->CommitPlaceholder("k8s.io/3/extract-1 sha256:bb", "k8s.io/2/base",
                                      {{"containerd.io/snapshot.ref", "sha256:bb"}})
                  .ok());
  Result<Info> info = store->Stat("k8s.io/3/extract-1 sha256:bb");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, Kind::kCommitted);
  EXPECT_EQ(info->labels.at(kPlaceholderLabel), "true");
  EXPECT_TRUE(EmptyDir(Fs(root, 2)));

  std::string filter[] = {R"(labels."containerd.io/snapshot.ref"==sha256:bb,parent=="k8s.io/2/base")"};
  Result<Filter> parsed = Filter::Parse(filter);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  Result<std::vector<Info>> found = store->List(*parsed);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].name, "k8s.io/3/extract-1 sha256:bb");
  std::string others[] = {"kind==active", R"(labels."containerd.io/snapshot.ref"==sha256:bb,parent==x)"};
  Result<Filter> none = Filter::Parse(others);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(store->List(*none)->empty());
  std::string presence[] = {"labels.\"containerd.io/snapshot/sealroot.placeholder\"", "name~=^k8s.io/2/"};
  Result<Filter> either = Filter::Parse(presence);
  ASSERT_TRUE(either.ok());
  EXPECT_EQ(store->List(*either)->size(), 2u);
  std::string broken[] = {"labels.\"x==1"};
  EXPECT_FALSE(Filter::Parse(broken).ok());

  // A container's root over placeholders is mountable: empty lower layers.
  Result<std::vector<Mount>> rootfs = store->Prepare("k8s.io/4/ctr", "k8s.io/3/extract-1 sha256:bb", {});
  ASSERT_TRUE(rootfs.ok());
  EXPECT_EQ((*rootfs)[0].options.back(), "lowerdir=" + Fs(root, 2) + ":" + Fs(root, 1));
}

std::string Manifest(const std::string& layer_media_type) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":2},)"
         R"("layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:11","size":3},)"
         R"({"mediaType":")" +
         layer_media_type + R"(","digest":"sha256:22","size":4}]})";
}

std::string DigestOf(const std::string& text) {
  return "sha256:" + HexEncode(Sha256Of(text));
}

TEST(Classifier, EncryptedLayersAndPatternsMakeAnImageConfidential) {
  const std::string encrypted = Manifest("application/vnd.oci.image.layer.v1.tar+gzip+encrypted");
  const std::string plain = Manifest("application/vnd.oci.image.layer.v1.tar+gzip");
  std::map<std::string, std::string> content = {{DigestOf(encrypted), encrypted}, {DigestOf(plain), plain}};
  std::vector<std::string> reads;
  ManifestReader reader = [&](const std::string& ns, const std::string& digest) -> Result<std::string> {
    reads.push_back(ns + " " + digest);
    auto it = content.find(digest);
    if (it == content.end()) return NotFound("no such blob");
    return it->second;
  };
  Classifier classifier({"registry.example/secret/*"}, true, reader);
  auto labels = [](const std::string& ref, const std::string& manifest) {
    return Labels{{kImageRefLabel, ref}, {kManifestDigestLabel, manifest}, {kSnapshotRefLabel, "sha256:cc"}};
  };

  Result<std::optional<std::string>> why =
      classifier.Classify("k8s.io", labels("a/b:1", DigestOf(encrypted)));
  ASSERT_TRUE(why.ok()) << why.status().ToString();
  ASSERT_TRUE(why->has_value());
  EXPECT_NE((*why)->find("sha256:22"), std::string::npos) << **why;
  EXPECT_EQ(reads.back(), "k8s.io " + DigestOf(encrypted));

  why = classifier.Classify("k8s.io", labels("a/b:1", DigestOf(plain)));
  ASSERT_TRUE(why.ok());
  EXPECT_FALSE(why->has_value());

  const std::size_t before = reads.size();
  why = classifier.Classify("k8s.io", labels("registry.example/secret/app:2", DigestOf(plain)));
  ASSERT_TRUE(why.ok());
  ASSERT_TRUE(why->has_value());
  EXPECT_NE((*why)->find("registry.example/secret/*"), std::string::npos);
  EXPECT_EQ(reads.size(), before);  // a pattern decides without the manifest

  // Not labelled by the CRI (ctr, the unpacker of another client): ordinary.
  why = classifier.Classify("k8s.io", {{kSnapshotRefLabel, "sha256:cc"}});
  ASSERT_TRUE(why.ok());
  EXPECT_FALSE(why->has_value());

  // A store that answers other bytes than the digest names is not believed.
  content[DigestOf(plain)] = encrypted;
  EXPECT_EQ(classifier.Classify("k8s.io", labels("a/b:1", DigestOf(plain))).status().code(), Code::kDataLoss);
  EXPECT_EQ(classifier.Classify("k8s.io", labels("a/b:1", "sha256:zz")).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(classifier.Classify("k8s.io", labels("a/b:1", DigestOf("missing"))).status().code(),
            Code::kNotFound);

  Classifier patterns_only({}, false, reader);
  why = patterns_only.Classify("k8s.io", labels("a/b:1", DigestOf(encrypted)));
  ASSERT_TRUE(why.ok());
  EXPECT_FALSE(why->has_value());
}

TEST(SnapshotterConfig, ParsesKeysAndRefusesUnknownOnes) {
  Result<Config> config = ParseConfig(
      R"({"root": "/r", "address": "/s.sock", "containerd_address": "/c.sock", "detect_encrypted": false,
          "confidential_images": ["a/*"], "log_level": "debug"})");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->root, "/r");
  EXPECT_EQ(config->containerd_address, "/c.sock");
  EXPECT_FALSE(config->detect_encrypted);
  EXPECT_EQ(config->confidential_images, std::vector<std::string>{"a/*"});
  EXPECT_EQ(ParseConfig(R"({"rot": "/r"})").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseConfig(R"({"root": "relative"})").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseConfig(R"({"confidential_images": [""]})").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace sealroot::snapshotter
