// The writer and the reader agree: every entry type, metadata, hard links, whiteouts and opaque
// directories across layers, random-access reads.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "tests/fusefs/sealfs_fixture.h"

namespace sealroot::fusefs::testing {
namespace {

TEST_F(SealfsTest, EveryEntryTypeRoundTrips) {
  Item owned = File("etc/owned", "owned by 1000", 04750);
  owned.entry.uid = 1000;
  owned.entry.gid = 2000;
  owned.entry.mtime_sec = 1700000000;
  owned.entry.mtime_nsec = 123456789;
  owned.entry.xattrs = {{"user.note", "hello"}, {"security.capability", std::string("\x01\x00\x00\x02", 4)}};
  Item chr = Marker(NodeType::kCharDevice, "dev/null");
  chr.entry.mode = 0666;
  chr.entry.dev_major = 1;
  chr.entry.dev_minor = 3;
  Item blk = Marker(NodeType::kBlockDevice, "dev/sda");
  blk.entry.dev_major = 8;
  Item fifo = Marker(NodeType::kFifo, "dev/fifo");
  fifo.entry.mode = 0600;
  std::string big = Pattern(3 * 65536 + 1234, 7);
  RootHash root =
      SealSingle("all", {Dir("", 0755), Dir("etc", 0750), owned, File("etc/empty", ""), File("etc/big", big),
                         Link(NodeType::kSymlink, "etc/link", "../x/y"),
                         Link(NodeType::kHardLink, "etc/big2", "etc/big"), Dir("dev"), chr, blk, fifo});
  auto tree = OpenTree(root);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  Filesystem& fs = **tree;

  auto a = Walk(fs, "etc/owned");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode, S_IFREG | 04750u);
  EXPECT_EQ(a->uid, 1000u);
  EXPECT_EQ(a->gid, 2000u);
  EXPECT_EQ(a->mtime_sec, 1700000000);
  EXPECT_EQ(a->mtime_nsec, 123456789u);
  EXPECT_EQ(*ReadAll(fs, "etc/owned"), "owned by 1000");
  EXPECT_EQ(*fs.GetXattr(a->ino, "user.note"), "hello");
  EXPECT_EQ(*fs.GetXattr(a->ino, "security.capability"), std::string("\x01\x00\x00\x02", 4));
  EXPECT_EQ(fs.GetXattr(a->ino, "user.missing").status().code(), Code::kNotFound);
  EXPECT_EQ(fs.ListXattr(a->ino)->size(), 2u);

  EXPECT_EQ(Walk(fs, "etc")->mode, S_IFDIR | 0750u);
  EXPECT_EQ(Walk(fs, "etc/empty")->size, 0u);
  EXPECT_EQ(*ReadAll(fs, "etc/empty"), "");
  EXPECT_EQ(*ReadAll(fs, "etc/big"), big);
  EXPECT_EQ(*ReadAll(fs, "etc/big", 4096), big);

  auto big1 = Walk(fs, "etc/big"), big2 = Walk(fs, "etc/big2");
  EXPECT_EQ(big1->ino, big2->ino);
  EXPECT_EQ(big1->nlink, 2u);
  EXPECT_EQ(Walk(fs, "etc/owned")->nlink, 1u);

  auto link = Walk(fs, "etc/link");
  EXPECT_EQ(link->mode & S_IFMT, static_cast<std::uint32_t>(S_IFLNK));
  EXPECT_EQ(*fs.ReadLink(link->ino), "../x/y");
  EXPECT_EQ(link->size, 6u);

  auto null = Walk(fs, "dev/null");
  EXPECT_EQ(null->mode, S_IFCHR | 0666u);
  EXPECT_EQ(null->rdev, makedev(1, 3));
  EXPECT_EQ(Walk(fs, "dev/sda")->mode & S_IFMT, static_cast<std::uint32_t>(S_IFBLK));
  EXPECT_EQ(Walk(fs, "dev/fifo")->mode, S_IFIFO | 0600u);

  EXPECT_EQ(*List(fs, "etc"), (std::vector<std::string>{".", "..", "big", "big2", "empty", "link", "owned"}));
  EXPECT_EQ(Walk(fs, "")->nlink, 4u);  // ".", "..", etc, dev
  EXPECT_EQ(Walk(fs, "etc/nothing").status().code(), Code::kNotFound);
  EXPECT_EQ((*tree)->config_json(), "{}");
}

TEST_F(SealfsTest, RandomAccessReadsReturnExactRanges) {
  std::string big = Pattern(5 * 65536 + 77, 3);
  RootHash root = SealSingle("ra", {File("f", big)});
  auto tree = OpenTree(root);
  ASSERT_TRUE(tree.ok());
  auto attr = Walk(**tree, "f");
  auto handle = (*tree)->Open(attr->ino, 0);
  ASSERT_TRUE(handle.ok());
  for (std::uint64_t off : {0ull, 1ull, 65535ull, 65536ull, 100000ull, 5 * 65536ull, 5 * 65536ull + 76}) {
    std::vector<std::uint8_t> buf(70000);
    auto n = (*tree)->Read(*handle, off, buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    std::size_t expect = std::min<std::size_t>(buf.size(), big.size() - off);
    ASSERT_EQ(*n, expect) << off;
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), *n), big.substr(off, expect)) << off;
  }
  std::vector<std::uint8_t> buf(10);
  EXPECT_EQ(*(*tree)->Read(*handle, big.size(), buf), 0u);
  (*tree)->Release(*handle);
}

// Reads without an open handle (the read-only mount's zero-message opens): more files than the
// tree keeps objects open for, each read twice, with inline and object-backed content alike.
TEST_F(SealfsTest, ReadsByInodeNeedNoOpen) {
  std::vector<Item> items{Dir("d")};
  auto content = [](int i) { return Pattern(i % 3 == 0 ? 100 : 70000 + i, static_cast<std::uint32_t>(i)); };
  for (int i = 0; i < 300; ++i) items.push_back(File("d/f" + std::to_string(i), content(i)));
  RootHash root = SealSingle("ino", std::move(items));
  auto tree = OpenTree(root);
  ASSERT_TRUE(tree.ok());
  ASSERT_TRUE((*tree)->reads_without_open());
  std::vector<std::uint64_t> inos;
  for (int i = 0; i < 300; ++i) inos.push_back(Walk(**tree, "d/f" + std::to_string(i))->ino);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 300; ++i) {
      std::string want = content(i);
      std::vector<std::uint8_t> buf(want.size() + 10);
      auto n = (*tree)->ReadInode(inos[i], 1, buf);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), *n), want.substr(1)) << i;
    }
  }
  // Forgotten, the inode is unknown again (its object closed with it).
  (*tree)->Forget(inos[1], 1);
  std::vector<std::uint8_t> buf(10);
  EXPECT_FALSE((*tree)->ReadInode(inos[1], 0, buf).ok());
  EXPECT_FALSE((*tree)->ReadInode(Walk(**tree, "d")->ino, 0, buf).ok());  // a directory
}

// readdirplus's source: every entry with its full stat and one lookup reference.
TEST_F(SealfsTest, ReadDirPlusStatsEveryEntry) {
  RootHash root = SealSingle("plus", {Dir("d"), File("d/a", "aaa", 0600), Dir("d/b"), File("d/c", "c")});
  auto tree = OpenTree(root);
  ASSERT_TRUE(tree.ok());
  std::uint64_t dir = Walk(**tree, "d")->ino;
  auto all = (*tree)->ReadDirPlus(dir, 0, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].name, ".");
  EXPECT_FALSE((*all)[0].counted);
  EXPECT_EQ((*all)[2].name, "a");
  EXPECT_TRUE((*all)[2].counted);
  EXPECT_EQ((*all)[2].stat.attr.mode, S_IFREG | 0600u);
  EXPECT_EQ((*all)[2].stat.attr.size, 3u);
  EXPECT_TRUE(S_ISDIR((*all)[3].stat.attr.mode));
  // A bounded reply resumes at the offset after its last entry.
  auto first = (*tree)->ReadDirPlus(dir, 0, 3);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 3u);
  auto rest = (*tree)->ReadDirPlus(dir, first->back().next_offset, 100);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0].name, "b");
  EXPECT_EQ((*rest)[1].name, "c");
}

TEST_F(SealfsTest, WhiteoutsAndOpaqueDirectoriesApplyToLowerLayersOnly) {
  ASSERT_TRUE(
      SealLayer(DiffIdOf("l1"), {Dir("a"), File("a/x", "x1"), File("a/y", "y1"), Dir("b"),
                                 File("b/old", "old"), File("c", "c1"), Dir("d"), File("d/keep", "k")})
          .ok());
  // The opaque marker sits after the layer's own b/new in tar order: it still hides only b/old.
  ASSERT_TRUE(SealLayer(DiffIdOf("l2"), {File("b/new", "new"), Marker(NodeType::kOpaque, "b"),
                                         Marker(NodeType::kWhiteout, "a/x"), Marker(NodeType::kWhiteout, "c"),
                                         Dir("c"), File("c/inside", "dir now"), Dir("d", 0700)})
                  .ok());
  auto root = SealImage({DiffIdOf("l1"), DiffIdOf("l2")});
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  auto tree = OpenTree(*root);
  ASSERT_TRUE(tree.ok());
  Filesystem& fs = **tree;
  EXPECT_EQ(*List(fs, "a"), (std::vector<std::string>{".", "..", "y"}));
  EXPECT_EQ(*List(fs, "b"), (std::vector<std::string>{".", "..", "new"}));
  EXPECT_EQ(*ReadAll(fs, "c/inside"), "dir now");
  EXPECT_EQ(Walk(fs, "d")->mode, S_IFDIR | 0700u);  // metadata updated, children kept
  EXPECT_EQ(*ReadAll(fs, "d/keep"), "k");
  EXPECT_EQ((*tree)->diff_ids(), (std::vector<std::string>{DiffIdOf("l1"), DiffIdOf("l2")}));
}

TEST_F(SealfsTest, HardLinksAcrossLayersShareOneInode) {
  ASSERT_TRUE(SealLayer(DiffIdOf("h1"), {File("bin/tool", Pattern(10000, 1), 0755)}).ok());
  ASSERT_TRUE(SealLayer(DiffIdOf("h2"), {Link(NodeType::kHardLink, "bin/alias", "bin/tool"),
                                         Link(NodeType::kHardLink, "alias2", "bin/tool")})
                  .ok());
  auto root = SealImage({DiffIdOf("h1"), DiffIdOf("h2")});
  ASSERT_TRUE(root.ok());
  auto tree = OpenTree(*root);
  ASSERT_TRUE(tree.ok());
  auto a = Walk(**tree, "bin/tool"), b = Walk(**tree, "bin/alias"), c = Walk(**tree, "alias2");
  EXPECT_EQ(a->ino, b->ino);
  EXPECT_EQ(a->ino, c->ino);
  EXPECT_EQ(a->nlink, 3u);
  EXPECT_EQ(*ReadAll(**tree, "alias2"), Pattern(10000, 1));
}

// Small files' content is read back from the layer indexes when their directories are written
// (image_builder.cc InlineContent): files from two layers, in directories visited out of index
// order, past the read-back window (256 KiB of index), hard-linked, and replaced by a later layer.
TEST_F(SealfsTest, InlinedFilesFromEveryLayerKeepTheirContent) {
  std::vector<Item> lower, upper;
  for (int i = 0; i < 600; ++i) {
    // Tar order z/, y/, ..., a/: the flattening writes the directories in name order.
    const std::string dir(1, static_cast<char>('z' - i % 26));
    lower.push_back(File(dir + "/f" + std::to_string(i), Pattern(1000 + i, static_cast<std::uint32_t>(i))));
  }
  lower.push_back(Link(NodeType::kHardLink, "linked", "p/f10"));
  for (int i = 0; i < 300; ++i)
    upper.push_back(File("up/g" + std::to_string(i), Pattern(2048, static_cast<std::uint32_t>(1000 + i))));
  upper.push_back(File("z/f0", "replaced"));
  ASSERT_TRUE(SealLayer(DiffIdOf("inline-lower"), lower).ok());
  ASSERT_TRUE(SealLayer(DiffIdOf("inline-upper"), upper).ok());
  auto root = SealImage({DiffIdOf("inline-lower"), DiffIdOf("inline-upper")});
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  auto tree = OpenTree(*root);
  ASSERT_TRUE(tree.ok());
  for (int i = 1; i < 600; ++i) {
    const std::string path = std::string(1, static_cast<char>('z' - i % 26)) + "/f" + std::to_string(i);
    ASSERT_EQ(*ReadAll(**tree, path), Pattern(1000 + i, static_cast<std::uint32_t>(i))) << path;
  }
  for (int i = 0; i < 300; ++i)
    ASSERT_EQ(*ReadAll(**tree, "up/g" + std::to_string(i)),
              Pattern(2048, static_cast<std::uint32_t>(1000 + i)));
  EXPECT_EQ(*ReadAll(**tree, "z/f0"), "replaced");
  EXPECT_EQ(*ReadAll(**tree, "linked"), Pattern(1010, 10));
  EXPECT_EQ(Walk(**tree, "linked")->ino, Walk(**tree, "p/f10")->ino);
}

// An inode holds where its record is, and decoded directories are kept within a budget
// (sealed_tree.cc): with room for one directory, every record the kernel holds an inode for is
// read back from its directory again, content, attributes, link targets and xattrs as sealed.
TEST_F(SealfsTest, RecordsOfDirectoriesDroppedFromTheCacheAreReadBack) {
  constexpr int kDirs = 4, kFiles = 50;
  auto path_of = [](int d, int i) { return "d" + std::to_string(d) + "/f" + std::to_string(i); };
  auto content_of = [](int d, int i) { return Pattern(100 + i, static_cast<std::uint32_t>(d * kFiles + i)); };
  std::vector<Item> items;
  for (int d = 0; d < kDirs; ++d) {
    items.push_back(Dir("d" + std::to_string(d)));
    for (int i = 0; i < kFiles; ++i) items.push_back(File(path_of(d, i), content_of(d, i)));
    items.push_back(Link(NodeType::kSymlink, "d" + std::to_string(d) + "/link", "f" + std::to_string(d)));
  }
  Item big = File("d0/big", Pattern(300000, 7));
  big.entry.xattrs = {{"user.note", "kept"}};
  items.push_back(big);
  items.push_back(Link(NodeType::kHardLink, "d3/same", "d0/f1"));
  auto tree = OpenTree(SealSingle("dropped", items), {.directory_cache_bytes = 1});
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  Filesystem& fs = **tree;
  std::map<std::string, std::uint64_t> inos;  // every inode looked up, and held, first
  for (const Item& item : items) inos[item.entry.path] = Walk(fs, item.entry.path)->ino;
  for (int d = kDirs - 1; d >= 0; --d) {  // each read below needs another directory than the last
    for (int i = kFiles - 1; i >= 0; --i) {
      const std::uint64_t ino = inos[path_of(d, i)];
      std::vector<std::uint8_t> buf(4096);
      auto n = fs.ReadInode(ino, 0, buf);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      EXPECT_EQ(std::string(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n)), content_of(d, i));
      EXPECT_EQ(fs.GetAttr(ino)->size, 100u + static_cast<unsigned>(i));
    }
    EXPECT_EQ(*fs.ReadLink(inos["d" + std::to_string(d) + "/link"]), "f" + std::to_string(d));
    EXPECT_EQ(List(fs, "d" + std::to_string(d))->size(), 2u + kFiles + 1 + (d == 0 || d == 3 ? 1 : 0));
  }
  EXPECT_EQ(*fs.GetXattr(inos["d0/big"], "user.note"), "kept");
  EXPECT_EQ(*ReadAll(fs, "d0/big"), Pattern(300000, 7));
  EXPECT_EQ(inos["d3/same"], inos["d0/f1"]);
  EXPECT_EQ(*ReadAll(fs, "d3/same"), content_of(0, 1));
}

TEST_F(SealfsTest, HardLinkToMissingTargetIsRefused) {
  ASSERT_TRUE(SealLayer(DiffIdOf("bad"), {Link(NodeType::kHardLink, "x", "nowhere")}).ok());
  auto root = SealImage({DiffIdOf("bad")});
  ASSERT_FALSE(root.ok());
  EXPECT_NE(root.status().message().find("nowhere"), std::string::npos);
}

TEST_F(SealfsTest, ContentShorterOrLongerThanDeclaredIsRefused) {
  auto writer = LayerWriter::Create(store_, key_, DiffIdOf("len"));
  ASSERT_TRUE(writer.ok());
  Item item = File("f", "abc");
  item.entry.size = 5000;  // more than the source holds
  StringSource short_source("abc");
  EXPECT_EQ((*writer)->Add(item.entry, &short_source).code(), Code::kDataLoss);
  item.entry.size = 2;
  StringSource long_source("abc");
  EXPECT_EQ((*writer)->Add(item.entry, &long_source).code(), Code::kDataLoss);
  (*writer)->Abort();
  EXPECT_FALSE(store_->HasLayer(*key_, DiffIdOf("len")));
}

TEST_F(SealfsTest, LargeDirectoryLooksUpEveryEntry) {
  std::vector<Item> items{Dir("many")};
  for (int i = 0; i < 3000; ++i) items.push_back(File("many/f" + std::to_string(i), std::to_string(i)));
  RootHash root = SealSingle("many", std::move(items));
  auto tree = OpenTree(root);
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(List(**tree, "many")->size(), 3002u);
  for (int i = 0; i < 3000; i += 97)
    EXPECT_EQ(*ReadAll(**tree, "many/f" + std::to_string(i)), std::to_string(i));
}

}  // namespace
}  // namespace sealroot::fusefs::testing
