// The tamper suite: a host that edits the store gets EIO/kDataLoss on every affected read (never
// wrong data), unaffected files still read, and fsck names every damaged object.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/fusefs/sealfs_fixture.h"

namespace sealroot::fusefs::testing {
namespace {

constexpr std::size_t kChunkStride = 65536 + 16;
constexpr std::size_t kHeader = 64;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void WriteBytes(const std::string& path, const std::string& data) {
  std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}
void FlipBit(const std::string& path, std::size_t offset) {
  std::string d = ReadBytes(path);
  ASSERT_LT(offset, d.size());
  d[offset] ^= 0x10;
  WriteBytes(path, d);
}

class TamperTest : public SealfsTest {
 protected:
  void SetUp() override {
    SealfsTest::SetUp();
    one_ = Pattern(4 * 65536, 1);
    two_ = Pattern(4 * 65536, 2);
    three_ = Pattern(100000, 3);
    root_ = SealSingle("tamper", {Dir("a"), File("a/one", one_), File("a/two", two_), Dir("b"),
                                  File("b/small", "inline content"), File("c", three_)});
    // Data objects are listed in the order their files were sealed, the index last.
    std::istringstream lines(
        ReadBytes(store_dir_ + "/layers/" + key_->LayerName(DiffIdOf("tamper")) + "/objects"));
    std::string hex;
    while (lines >> hex) layer_objects_.push_back(hex);
    ASSERT_EQ(layer_objects_.size(), 4u);
    // Directory objects are written bottom-up: a, b, then the root directory, then the image root.
    std::istringstream root_lines(ReadBytes(store_dir_ + "/roots/" + HashHex(root_)));
    std::string kind;
    while (root_lines >> kind >> hex) {
      if (kind == "object") image_objects_.push_back(hex);
    }
    ASSERT_EQ(image_objects_.size(), 4u);
  }

  std::string Data(int i) const { return ObjectPath(layer_objects_[i]); }  // 0 a/one, 1 a/two, 2 c
  std::string Index() const { return ObjectPath(layer_objects_[3]); }
  std::string DirA() const { return ObjectPath(image_objects_[0]); }
  std::string DirB() const { return ObjectPath(image_objects_[1]); }
  std::string RootObject() const { return ObjectPath(HashHex(root_)); }

  // fsck's findings as "object path" lines.
  std::vector<std::string> FsckFindings() {
    std::vector<std::string> found;
    auto report =
        Fsck(*store_, *key_, root_, [&](const std::string& object, const std::string& path, const Status&) {
          found.push_back(object + " " + path);
        });
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return found;
  }

  void ExpectUnaffectedStillRead(Filesystem& fs, bool a_two = true) {
    EXPECT_EQ(*ReadAll(fs, "b/small"), "inline content");
    EXPECT_EQ(*ReadAll(fs, "c"), three_);
    if (a_two) {
      EXPECT_EQ(*ReadAll(fs, "a/two"), two_);
    }
  }

  std::string one_, two_, three_;
  RootHash root_{};
  std::vector<std::string> layer_objects_, image_objects_;
};

TEST_F(TamperTest, UntamperedStoreChecksClean) {
  EXPECT_TRUE(FsckFindings().empty());
  auto tree = OpenTree(root_);
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(*ReadAll(**tree, "a/one"), one_);
  ExpectUnaffectedStillRead(**tree);
}

TEST_F(TamperTest, FlippedBitInDataChunkFailsOnlyReadsThatTouchIt) {
  FlipBit(Data(0), kHeader + kChunkStride + 100);  // chunk 1 of a/one
  auto tree = OpenTree(root_);
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(ReadAll(**tree, "a/one").status().code(), Code::kDataLoss);
  // Chunk 0 is untouched and still verifies on its own.
  auto attr = Walk(**tree, "a/one");
  auto h = (*tree)->Open(attr->ino, 0);
  std::vector<std::uint8_t> buf(65536);
  auto n = (*tree)->Read(*h, 0, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), *n), one_.substr(0, 65536));
  EXPECT_EQ((*tree)->Read(*h, 65536 + 5, buf).status().code(), Code::kDataLoss);
  (*tree)->Release(*h);
  ExpectUnaffectedStillRead(**tree);
  EXPECT_EQ(FsckFindings(), (std::vector<std::string>{layer_objects_[0] + " /a/one"}));
}

TEST_F(TamperTest, SwappedChunksWithinAFileFail) {
  std::string d = ReadBytes(Data(0));
  std::string c0 = d.substr(kHeader, kChunkStride), c1 = d.substr(kHeader + kChunkStride, kChunkStride);
  d.replace(kHeader, kChunkStride, c1);
  d.replace(kHeader + kChunkStride, kChunkStride, c0);
  WriteBytes(Data(0), d);
  auto tree = OpenTree(root_);
  EXPECT_EQ(ReadAll(**tree, "a/one").status().code(), Code::kDataLoss);
  ExpectUnaffectedStillRead(**tree);
  EXPECT_EQ(FsckFindings().size(), 1u);
}

TEST_F(TamperTest, ChunkReplayedFromAnotherFileFails) {
  std::string d = ReadBytes(Data(0)), other = ReadBytes(Data(1));
  d.replace(kHeader, kChunkStride, other.substr(kHeader, kChunkStride));
  WriteBytes(Data(0), d);
  auto tree = OpenTree(root_);
  EXPECT_EQ(ReadAll(**tree, "a/one").status().code(), Code::kDataLoss);
  ExpectUnaffectedStillRead(**tree);
}

TEST_F(TamperTest, SwappedObjectsOfTwoFilesFailBoth) {
  std::string a = ReadBytes(Data(0)), b = ReadBytes(Data(1));
  WriteBytes(Data(0), b);
  WriteBytes(Data(1), a);
  auto tree = OpenTree(root_);
  EXPECT_EQ(ReadAll(**tree, "a/one").status().code(), Code::kDataLoss);
  EXPECT_EQ(ReadAll(**tree, "a/two").status().code(), Code::kDataLoss);
  ExpectUnaffectedStillRead(**tree, false);
  auto found = FsckFindings();
  std::sort(found.begin(), found.end());
  std::vector<std::string> expected = {layer_objects_[0] + " /a/one", layer_objects_[1] + " /a/two"};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(found, expected);
}

TEST_F(TamperTest, TruncatedObjectFails) {
  std::filesystem::resize_file(Data(0), kHeader + 2 * kChunkStride);
  auto tree = OpenTree(root_);
  EXPECT_EQ(ReadAll(**tree, "a/one").status().code(), Code::kDataLoss);
  ExpectUnaffectedStillRead(**tree);
  EXPECT_EQ(FsckFindings(), (std::vector<std::string>{layer_objects_[0] + " /a/one"}));
}

TEST_F(TamperTest, DeletedObjectFails) {
  std::filesystem::remove(Data(2));
  auto tree = OpenTree(root_);
  EXPECT_EQ(ReadAll(**tree, "c").status().code(), Code::kDataLoss);
  EXPECT_EQ(*ReadAll(**tree, "a/one"), one_);
  EXPECT_EQ(FsckFindings(), (std::vector<std::string>{layer_objects_[2] + " /c"}));
}

TEST_F(TamperTest, ZeroedBlockIsNotAHole) {
  std::string d = ReadBytes(Data(2));
  std::fill_n(d.begin() + kHeader, 4096, '\0');
  WriteBytes(Data(2), d);
  auto tree = OpenTree(root_);
  EXPECT_EQ(ReadAll(**tree, "c").status().code(), Code::kDataLoss);
  EXPECT_EQ(FsckFindings(), (std::vector<std::string>{layer_objects_[2] + " /c"}));
}

TEST_F(TamperTest, FlippedBitInDirectoryFailsLookupsBelowIt) {
  FlipBit(DirA(), kHeader + 10);
  auto tree = OpenTree(root_);
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(Walk(**tree, "a/one").status().code(), Code::kDataLoss);
  EXPECT_EQ(List(**tree, "a").status().code(), Code::kDataLoss);
  ExpectUnaffectedStillRead(**tree, false);
  EXPECT_EQ(FsckFindings(), (std::vector<std::string>{image_objects_[0] + " /a"}));
}

// A directory the reader dropped from its cache is verified again when it is read again: the
// records of inodes the kernel still holds are not served from an unchecked copy.
TEST_F(TamperTest, ADirectoryReadAgainAfterTheCacheDroppedItIsVerifiedAgain) {
  auto tree = OpenTree(root_, {.directory_cache_bytes = 1});
  ASSERT_TRUE(tree.ok());
  auto small = Walk(**tree, "b/small");
  ASSERT_TRUE(small.ok());
  auto one = Walk(**tree, "a/one");  // reads a: b is dropped
  ASSERT_TRUE(one.ok());
  FlipBit(DirB(), kHeader + 10);
  EXPECT_EQ((*tree)->GetAttr(small->ino).status().code(), Code::kDataLoss);
  std::vector<std::uint8_t> buf(64);
  EXPECT_EQ((*tree)->ReadInode(small->ino, 0, buf).status().code(), Code::kDataLoss);
  EXPECT_EQ((*tree)->GetAttr(one->ino)->size, one_.size());
}

TEST_F(TamperTest, FlippedBitInRootRefusesTheRoot) {
  FlipBit(RootObject(), kHeader + 3);
  EXPECT_EQ(OpenTree(root_).status().code(), Code::kDataLoss);
  EXPECT_EQ(FsckFindings(), (std::vector<std::string>{HashHex(root_) + " (image root)"}));
}

TEST_F(TamperTest, TamperedHeaderIsNamedByFsckButServesNoWrongData) {
  FlipBit(Data(1), 50);  // the size field: readers use the authenticated size from the parent
  auto tree = OpenTree(root_);
  EXPECT_EQ(*ReadAll(**tree, "a/two"), two_);
  EXPECT_EQ(FsckFindings(), (std::vector<std::string>{layer_objects_[1] + " /a/two"}));
}

TEST_F(TamperTest, FlippedBitInLayerIndexRefusesReuseAndIsNamedByFsck) {
  FlipBit(Index(), kHeader + 1);
  auto reuse = SealImage({DiffIdOf("tamper")});
  EXPECT_EQ(reuse.status().code(), Code::kDataLoss);
  auto found = FsckFindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], layer_objects_[3] + " (index of layer " + DiffIdOf("tamper") + ")");
}

TEST_F(TamperTest, ForgedLayerRecordIsRefused) {
  std::string record = store_dir_ + "/layers/" + key_->LayerName(DiffIdOf("tamper")) + "/record";
  FlipBit(record, 20);
  EXPECT_EQ(store_->LayerIndex(*key_, DiffIdOf("tamper")).status().code(), Code::kDataLoss);
  EXPECT_EQ(SealImage({DiffIdOf("tamper")}).status().code(), Code::kDataLoss);
}

TEST_F(TamperTest, RolledBackStoreRefusesTheNewerRoot) {
  std::string old_copy = tmp_ / "old";
  ASSERT_TRUE(sealroot::testing::Shell("cp -a '" + store_dir_ + "' '" + old_copy + "'").ok());
  RootHash newer = SealSingle("newer", {File("new", "newer content")});
  ASSERT_TRUE(OpenTree(newer).ok());
  ASSERT_TRUE(
      sealroot::testing::Shell("rm -rf '" + store_dir_ + "' && cp -a '" + old_copy + "' '" + store_dir_ + "'")
          .ok());
  auto refused = OpenTree(newer);
  EXPECT_EQ(refused.status().code(), Code::kNotFound);
  EXPECT_NE(refused.status().message().find("rolled-back"), std::string::npos);
  EXPECT_TRUE(OpenTree(root_).ok());
}

TEST_F(TamperTest, OlderRootCannotStandInForANewerOne) {
  // Rolling back one image to another: the host renames an older root object to the newer name.
  RootHash newer = SealSingle("newer", {File("new", "newer content")});
  std::filesystem::copy_file(RootObject(), ObjectPath(HashHex(newer)),
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(OpenTree(newer).status().code(), Code::kDataLoss);
}

}  // namespace
}  // namespace sealroot::fusefs::testing
