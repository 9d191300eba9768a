// The store around the objects: no plaintext, bad stores/keys/roots/versions, killed writers,
// layer reuse, gc and df.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/file.h"
#include "tests/fusefs/sealfs_fixture.h"

namespace sealroot::fusefs::testing {
namespace {

using sealroot::testing::Shell;
using sealroot::testing::TempDir;

std::size_t CountFiles(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

TEST_F(SealfsTest, StoreHoldsNoPlaintext) {
  std::string marker = "SEALROOT-PLAINTEXT-MARKER";
  Item xattr = File("etc/marker-name-" + marker, marker);
  xattr.entry.xattrs = {{"user." + marker, marker}};
  std::string big;
  for (int i = 0; i < 20000; ++i) big += marker;
  SealSingle("plain", {Dir("etc"), xattr, File("etc/big", big), Link(NodeType::kSymlink, "etc/l", marker)});
  auto image = SealImage({DiffIdOf("plain")}, "{\"marker\":\"" + marker + "\"}");
  ASSERT_TRUE(image.ok());
  // grep exits 1 when nothing matches anywhere in the store.
  auto grep = Shell("grep -r -a -l -F '" + marker + "' '" + store_dir_ + "'");
  EXPECT_EQ(grep.exit_code, 1) << grep.out;
  auto tree = OpenTree(*image);
  EXPECT_EQ(*ReadAll(**tree, "etc/big"), big);  // and the marker is really in there
}

TEST_F(SealfsTest, WrongKeyIsRefused) {
  RootHash root = SealSingle("k", {File("f", "x")});
  auto other = StoreKey::Create(SecretBytes::Random(32));
  auto store = Store::Open(store_dir_, false, StoreLock::kNone);
  auto tree = SealedTree::OpenRoot(std::move(store).value(),
                                   std::make_shared<StoreKey>(std::move(other).value()), root);
  EXPECT_EQ(tree.status().code(), Code::kUnauthenticated);
  EXPECT_NE(tree.status().message().find("different key"), std::string::npos);
}

TEST_F(SealfsTest, KeyOfWrongLengthIsRefused) {
  EXPECT_EQ(StoreKey::Create(SecretBytes::Random(16)).status().code(), Code::kInvalidArgument);
}

TEST_F(SealfsTest, WrongRootHashIsRefused) {
  SealSingle("r", {File("f", "x")});
  RootHash random{};
  RandomBytes(random);
  EXPECT_EQ(OpenTree(random).status().code(), Code::kNotFound);
}

TEST_F(SealfsTest, GarbageRootObjectIsRefused) {
  RootHash root = SealSingle("g", {File("f", "x")});
  for (std::string garbage : {std::string(), std::string(10, 'x'), Pattern(5000, 9)}) {
    WriteText(ObjectPath(HashHex(root)), garbage);
    EXPECT_EQ(OpenTree(root).status().code(), Code::kDataLoss) << garbage.size();
  }
}

TEST(SealfsStoreTest, EmptyDirectoryIsNotAStore) {
  TempDir tmp;
  auto store = Store::Open(tmp.path(), false, StoreLock::kNone);
  EXPECT_EQ(store.status().code(), Code::kNotFound);
}

TEST(SealfsStoreTest, ForeignDirectoryIsRefusedEvenForWriting) {
  TempDir tmp;
  WriteText(tmp / "something", "not a store");
  for (bool create : {false, true}) {
    auto store = Store::Open(tmp.path(), create, StoreLock::kShared);
    EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(store.status().message().find("not a sealed store"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "objects"));
}

// A newer layout, and an older one (format 2 held objects padded without room for their header),
// are refused with a message that says what to do; the store is left as it was.
TEST(SealfsStoreTest, UnknownFormatVersionIsRefused) {
  for (const char* version : {"sealfs-store 9\n", "sealfs-store 2\n"}) {
    TempDir tmp;
    ASSERT_TRUE(Store::Open(tmp / "s", true, StoreLock::kShared).ok());
    WriteText(tmp / "s/sealfs-store", version);
    auto store = Store::Open(tmp / "s", true, StoreLock::kShared);
    EXPECT_EQ(store.status().code(), Code::kFailedPrecondition) << version;
    EXPECT_NE(store.status().message().find("unsupported format version"), std::string::npos);
    EXPECT_NE(store.status().message().find("seal the images into a new store"), std::string::npos);
    EXPECT_EQ(ReadFile(tmp / "s/sealfs-store").value(), version);
  }
}

TEST_F(SealfsTest, StoreBoundToOneKeyRefusesAnother) {
  auto other = StoreKey::Create(SecretBytes::Random(32));
  EXPECT_EQ(store_->CheckKey(*other, true).code(), Code::kUnauthenticated);
  EXPECT_TRUE(store_->CheckKey(*key_, true).ok());
}

TEST_F(SealfsTest, AbortedLayerLeavesNothing) {
  auto writer = LayerWriter::Create(store_, key_, DiffIdOf("aborted"));
  ASSERT_TRUE(writer.ok());
  StringSource content(Pattern(300000, 4));
  Item f = File("f", Pattern(300000, 4));
  ASSERT_TRUE((*writer)->Add(f.entry, &content).ok());
  (*writer)->Abort();
  EXPECT_FALSE(store_->HasLayer(*key_, DiffIdOf("aborted")));
  EXPECT_EQ(CountFiles(store_dir_ + "/objects"), 0u);
  EXPECT_EQ(CountFiles(store_dir_ + "/staging"), 0u);
}

TEST_F(SealfsTest, KilledWriterLeavesNothingThatLooksComplete) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child seals half a layer and dies without Commit or Abort.
    auto writer = LayerWriter::Create(store_, key_, DiffIdOf("killed"));
    Item f = File("f", Pattern(300000, 5));
    StringSource content(f.content);
    if (writer.ok()) (void)(*writer)->Add(f.entry, &content);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_FALSE(store_->HasLayer(*key_, DiffIdOf("killed")));
  EXPECT_EQ(SealImage({DiffIdOf("killed")}).status().code(), Code::kNotFound);
  EXPECT_GT(CountFiles(store_dir_ + "/staging") + CountFiles(store_dir_ + "/objects"), 0u);
  // gc cannot run while this fixture's shared lock is held, then cleans up everything.
  EXPECT_EQ(Store::Open(store_dir_, false, StoreLock::kExclusive).status().code(), Code::kUnavailable);
  store_.reset();
  auto gc_store = Store::Open(store_dir_, false, StoreLock::kExclusive);
  ASSERT_TRUE(gc_store.ok());
  auto report = (*gc_store)->CollectGarbage();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(CountFiles(store_dir_ + "/staging") + CountFiles(store_dir_ + "/objects"), 0u);
}

TEST_F(SealfsTest, SharedLayerIsSealedOnceAndReused) {
  ASSERT_TRUE(SealLayer(DiffIdOf("base"), {File("base", Pattern(200000, 6))}).ok());
  std::size_t after_base = CountFiles(store_dir_ + "/objects");
  ASSERT_TRUE(store_->HasLayer(*key_, DiffIdOf("base")));
  ASSERT_TRUE(SealLayer(DiffIdOf("app1"), {File("app", "one")}).ok());
  ASSERT_TRUE(SealLayer(DiffIdOf("app2"), {File("app", "two")}).ok());
  auto image1 = SealImage({DiffIdOf("base"), DiffIdOf("app1")});
  auto image2 = SealImage({DiffIdOf("base"), DiffIdOf("app2")});
  ASSERT_TRUE(image1.ok() && image2.ok());
  // One data object for "base" in the whole store: the second image did not seal it again.
  EXPECT_EQ(CountFiles(store_dir_ + "/objects") - after_base, 2u /*indexes*/ + 2 * 2u /*dirs, roots*/);
  EXPECT_EQ(*ReadAll(**OpenTree(*image1), "app"), "one");
  EXPECT_EQ(*ReadAll(**OpenTree(*image2), "base"), Pattern(200000, 6));
}

TEST_F(SealfsTest, GcRemovesOnlyWhatNoRootUses) {
  ASSERT_TRUE(SealLayer(DiffIdOf("base"), {File("base", Pattern(200000, 6))}).ok());
  ASSERT_TRUE(SealLayer(DiffIdOf("a"), {File("only-a", Pattern(100000, 7))}).ok());
  ASSERT_TRUE(SealLayer(DiffIdOf("b"), {File("only-b", Pattern(100000, 8))}).ok());
  ASSERT_TRUE(SealLayer(DiffIdOf("orphan"), {File("x", Pattern(100000, 9))}).ok());
  auto image_a = SealImage({DiffIdOf("base"), DiffIdOf("a")});
  auto image_b = SealImage({DiffIdOf("base"), DiffIdOf("b")});
  ASSERT_TRUE(image_a.ok() && image_b.ok());
  std::filesystem::remove(store_dir_ + "/roots/" + HashHex(*image_b));  // the user dropped image b
  store_.reset();
  auto store = Store::Open(store_dir_, false, StoreLock::kExclusive);
  ASSERT_TRUE(store.ok());
  auto before = (*store)->Usage();
  ASSERT_TRUE(before.ok());
  // Image b's layer, directories and root, and the orphan layer, are reclaimable.
  EXPECT_EQ(before->unreferenced_objects, 2u /*layer b*/ + 2u /*image b root dir + root*/ + 2u /*orphan*/);
  auto report = (*store)->CollectGarbage();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->objects_removed, before->unreferenced_objects);
  EXPECT_EQ(report->layers_removed, 2u);
  auto after = (*store)->Usage();
  EXPECT_EQ(after->unreferenced_objects, 0u);
  EXPECT_EQ(after->roots, 1u);
  EXPECT_EQ(after->layers, 2u);
  std::vector<std::string> bad;
  auto fsck = Fsck(**store, *key_, *image_a, [&](auto& o, auto&, auto&) { bad.push_back(o); });
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(bad.empty());
}

}  // namespace
}  // namespace sealroot::fusefs::testing
