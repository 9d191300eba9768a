// One contract, every implementation: fusefs::Filesystem (fusefs/filesystem.h) as the FUSE
// adapter relies on it, run against the read-only SealedTree and the union over it (in-memory
// and persistent upper), all over the same sealed lower. Called directly, without a mount, so a
// difference between the implementations shows here rather than through the kernel.
#include "fusefs/filesystem.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "fusefs/upper.h"
#include "tests/fusefs/sealfs_fixture.h"

namespace sealroot::fusefs::testing {
namespace {

enum class Impl { kSealedTree, kUnionInMemory, kUnionPersistent };

std::string ImplName(const ::testing::TestParamInfo<Impl>& info) {
  switch (info.param) {
    case Impl::kSealedTree:
      return "SealedTree";
    case Impl::kUnionInMemory:
      return "UnionInMemory";
    case Impl::kUnionPersistent:
      return "UnionPersistent";
  }
  return "unknown";
}

const std::string kBig = Pattern(150000, 7);  // three 64 KiB chunks, an object of its own

class FilesystemConformanceTest : public SealfsTest, public ::testing::WithParamInterface<Impl> {
 protected:
  void SetUp() override {
    SealfsTest::SetUp();
    Item tagged = File("etc/tagged", "t\n");
    tagged.entry.xattrs = {{"user.colour", "blue"},
                           {"security.capability", std::string("\x01\x00\x00\x02", 4)}};
    tagged.entry.uid = 1000;
    tagged.entry.gid = 100;
    tagged.entry.mtime_sec = 1700000000;
    tagged.entry.mtime_nsec = 42;
    std::vector<Item> items = {Dir("etc"),
                               File("etc/passwd", "root:x:0:0\n"),
                               tagged,
                               Link(NodeType::kSymlink, "etc/link", "passwd"),
                               Dir("data", 0750),
                               File("data/big", kBig, 0640),
                               Link(NodeType::kHardLink, "data/big-link", "data/big"),
                               Dir("empty"),
                               Dir("many")};
    Item fifo = Marker(NodeType::kFifo, "etc/fifo");
    fifo.entry.mode = 0600;
    items.push_back(fifo);
    for (int i = 0; i < 60; ++i) items.push_back(File("many/f" + std::to_string(100 + i), std::to_string(i)));
    root_ = SealSingle("conformance", std::move(items));
    auto lower = OpenTree(root_);
    ASSERT_TRUE(lower.ok()) << lower.status().ToString();
    if (GetParam() == Impl::kSealedTree) {
      fs_ = std::move(*lower);
      return;
    }
    UpperOptions options;
    if (GetParam() == Impl::kUnionPersistent) options.dir = tmp_ / "upper";
    auto fs = UnionFs::Open(std::move(*lower), key_, root_, options);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
  }

  // Walks `path` from the root by Lookup.
  Result<Attr> Walk(const std::string& path) {
    Attr attr;
    attr.ino = kRootIno;
    std::size_t start = 0;
    while (start < path.size()) {
      std::size_t slash = path.find('/', start);
      std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      SR_ASSIGN_OR_RETURN(attr, fs_->Lookup(attr.ino, part));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    return attr;
  }

  Result<std::string> ReadAllOf(std::uint64_t ino, std::size_t chunk = 65536) {
    SR_ASSIGN_OR_RETURN(std::uint64_t handle, fs_->Open(ino, O_RDONLY));
    std::string out;
    std::vector<std::uint8_t> buffer(chunk);
    while (true) {
      auto n = fs_->Read(handle, out.size(), buffer);
      if (!n.ok()) {
        fs_->Release(handle);
        return n.status();
      }
      if (*n == 0) break;
      out.append(reinterpret_cast<const char*>(buffer.data()), *n);
    }
    fs_->Release(handle);
    return out;
  }

  // Every entry of a directory from `offset`, with the offset that follows each.
  std::vector<std::pair<std::string, std::uint64_t>> List(std::uint64_t ino, std::uint64_t offset = 0) {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    Status s = fs_->ReadDir(ino, offset, [&](const DirEntry& e, std::uint64_t next) {
      out.emplace_back(std::string(e.name), next);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  RootHash root_{};
  std::unique_ptr<Filesystem> fs_;
};

TEST_P(FilesystemConformanceTest, RootIsInodeOneAndADirectory) {
  auto root = fs_->GetAttr(kRootIno);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(root->ino, kRootIno);
  EXPECT_TRUE(S_ISDIR(root->mode));
}

TEST_P(FilesystemConformanceTest, LookupReportsWhatWasSealed) {
  auto passwd = Walk("etc/passwd");
  ASSERT_TRUE(passwd.ok()) << passwd.status().ToString();
  EXPECT_TRUE(S_ISREG(passwd->mode));
  EXPECT_EQ(passwd->mode & 07777, 0644u);
  EXPECT_EQ(passwd->size, 11u);

  auto tagged = Walk("etc/tagged");
  ASSERT_TRUE(tagged.ok());
  EXPECT_EQ(tagged->uid, 1000u);
  EXPECT_EQ(tagged->gid, 100u);
  EXPECT_EQ(tagged->mtime_sec, 1700000000);
  EXPECT_EQ(tagged->mtime_nsec, 42u);

  auto data = Walk("data");
  ASSERT_TRUE(data.ok());
  EXPECT_TRUE(S_ISDIR(data->mode));
  EXPECT_EQ(data->mode & 07777, 0750u);

  auto link = Walk("etc/link");
  ASSERT_TRUE(link.ok());
  EXPECT_TRUE(S_ISLNK(link->mode));
  EXPECT_EQ(link->size, 6u);  // the target's length

  auto fifo = Walk("etc/fifo");
  ASSERT_TRUE(fifo.ok());
  EXPECT_TRUE(S_ISFIFO(fifo->mode));

  // GetAttr of a looked-up inode agrees with the lookup.
  auto again = fs_->GetAttr(passwd->ino);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->mode, passwd->mode);
  EXPECT_EQ(again->size, passwd->size);
  // LookupStat/GetStat carry the same attributes.
  auto stat = fs_->GetStat(passwd->ino);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->attr.ino, passwd->ino);
  EXPECT_EQ(stat->attr.size, passwd->size);
}

TEST_P(FilesystemConformanceTest, HardLinksShareOneInode) {
  auto big = Walk("data/big");
  auto link = Walk("data/big-link");
  ASSERT_TRUE(big.ok() && link.ok());
  EXPECT_EQ(big->ino, link->ino);
  EXPECT_EQ(big->nlink, 2u);
  EXPECT_EQ(link->size, kBig.size());
}

TEST_P(FilesystemConformanceTest, MissingNamesAreEnoent) {
  auto missing = fs_->Lookup(kRootIno, "no-such-name");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(StatusToErrno(missing.status()), ENOENT) << missing.status().ToString();
  auto etc = Walk("etc");
  ASSERT_TRUE(etc.ok());
  auto nested = fs_->Lookup(etc->ino, "nope");
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(StatusToErrno(nested.status()), ENOENT) << nested.status().ToString();
}

TEST_P(FilesystemConformanceTest, ReadLinkGivesTheTargetVerbatim) {
  auto link = Walk("etc/link");
  ASSERT_TRUE(link.ok());
  auto target = fs_->ReadLink(link->ino);
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_EQ(*target, "passwd");
  auto passwd = Walk("etc/passwd");
  ASSERT_TRUE(passwd.ok());
  EXPECT_FALSE(fs_->ReadLink(passwd->ino).ok());
}

TEST_P(FilesystemConformanceTest, ReadReturnsTheContentAtEveryOffsetAndZeroAtTheEnd) {
  auto big = Walk("data/big");
  ASSERT_TRUE(big.ok());
  auto whole = ReadAllOf(big->ino);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(*whole, kBig);
  auto odd = ReadAllOf(big->ino, 4093);  // reads straddling every block boundary
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(*odd, kBig);

  auto handle = fs_->Open(big->ino, O_RDONLY);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  std::vector<std::uint8_t> buffer(1000);
  for (std::uint64_t offset :
       {std::uint64_t{0}, std::uint64_t{4095}, std::uint64_t{65535}, std::uint64_t{kBig.size() - 10}}) {
    auto n = fs_->Read(*handle, offset, buffer);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    std::size_t expect = std::min<std::size_t>(buffer.size(), kBig.size() - offset);
    ASSERT_EQ(*n, expect) << "offset " << offset;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffer.data()), *n), kBig.substr(offset, expect));
  }
  for (std::uint64_t offset :
       {std::uint64_t{kBig.size()}, std::uint64_t{kBig.size() + 1}, std::uint64_t{1} << 40}) {
    auto n = fs_->Read(*handle, offset, buffer);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 0u) << "offset " << offset;
  }
  fs_->Release(*handle);

  auto passwd = Walk("etc/passwd");  // an inline file
  ASSERT_TRUE(passwd.ok());
  EXPECT_EQ(*ReadAllOf(passwd->ino), "root:x:0:0\n");
}

TEST_P(FilesystemConformanceTest, ReadDirStartsWithDotsAndListsEveryEntryOnce) {
  auto etc = Walk("etc");
  ASSERT_TRUE(etc.ok());
  auto entries = List(etc->ino);
  ASSERT_GE(entries.size(), 2u);
  EXPECT_EQ(entries[0].first, ".");
  EXPECT_EQ(entries[1].first, "..");
  std::multiset<std::string> names;
  for (std::size_t i = 2; i < entries.size(); ++i) names.insert(entries[i].first);
  EXPECT_EQ(names, (std::multiset<std::string>{"fifo", "link", "passwd", "tagged"}));

  auto empty = Walk("empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(List(empty->ino).size(), 2u);
}

TEST_P(FilesystemConformanceTest, ReadDirOffsetsAreStablePositions) {
  auto many = Walk("many");
  ASSERT_TRUE(many.ok());
  auto all = List(many->ino);
  ASSERT_EQ(all.size(), 62u);
  // Resuming from each entry's next offset yields exactly the rest of the listing.
  for (std::size_t i = 0; i < all.size(); ++i) {
    auto rest = List(many->ino, all[i].second);
    ASSERT_EQ(rest.size(), all.size() - i - 1) << "after " << all[i].first;
    for (std::size_t j = 0; j < rest.size(); ++j) EXPECT_EQ(rest[j].first, all[i + 1 + j].first);
  }
  // A filler that is full after three entries gets three, and the listing resumes after them.
  std::vector<std::string> first;
  std::uint64_t resume = 0;
  ASSERT_TRUE(fs_->ReadDir(many->ino, 0,
                           [&](const DirEntry& e, std::uint64_t next) {
                             if (first.size() == 3) return false;
                             first.emplace_back(e.name);
                             resume = next;
                             return true;
                           })
                  .ok());
  ASSERT_EQ(first.size(), 3u);
  auto rest = List(many->ino, resume);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().first, all[3].first);
}

TEST_P(FilesystemConformanceTest, ReadDirInodesMatchLookup) {
  auto etc = Walk("etc");
  ASSERT_TRUE(etc.ok());
  std::map<std::string, std::pair<std::uint64_t, std::uint32_t>> listed;
  ASSERT_TRUE(fs_->ReadDir(etc->ino, 0,
                           [&](const DirEntry& e, std::uint64_t) {
                             listed[std::string(e.name)] = {e.ino, e.mode};
                             return true;
                           })
                  .ok());
  for (const char* name : {"passwd", "link", "fifo", "tagged"}) {
    auto attr = fs_->Lookup(etc->ino, name);
    ASSERT_TRUE(attr.ok()) << name;
    EXPECT_EQ(listed[name].first, attr->ino) << name;
    EXPECT_EQ(listed[name].second & S_IFMT, attr->mode & S_IFMT) << name;
  }
}

TEST_P(FilesystemConformanceTest, XattrsAreListedAndReadExactly) {
  auto tagged = Walk("etc/tagged");
  ASSERT_TRUE(tagged.ok());
  auto names = fs_->ListXattr(tagged->ino);
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(std::set<std::string>(names->begin(), names->end()),
            (std::set<std::string>{"user.colour", "security.capability"}));
  auto colour = fs_->GetXattr(tagged->ino, "user.colour");
  ASSERT_TRUE(colour.ok()) << colour.status().ToString();
  EXPECT_EQ(*colour, "blue");
  auto cap = fs_->GetXattr(tagged->ino, "security.capability");
  ASSERT_TRUE(cap.ok());
  EXPECT_EQ(*cap, std::string("\x01\x00\x00\x02", 4));
  EXPECT_FALSE(fs_->GetXattr(tagged->ino, "user.none").ok());
  auto passwd = Walk("etc/passwd");
  ASSERT_TRUE(passwd.ok());
  auto none = fs_->ListXattr(passwd->ino);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(FilesystemConformanceTest, ForgottenInodesCanBeLookedUpAgainAndTheRootStays) {
  auto first = Walk("etc/passwd");
  ASSERT_TRUE(first.ok());
  auto etc = Walk("etc");
  ASSERT_TRUE(etc.ok());
  fs_->Forget(first->ino, 1);
  fs_->Forget(etc->ino, 2);  // looked up twice (two walks)
  auto again = Walk("etc/passwd");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*ReadAllOf(again->ino), "root:x:0:0\n");
  fs_->Forget(kRootIno, 1);
  EXPECT_TRUE(fs_->GetAttr(kRootIno).ok());
}

// Every implementation reads ahead: a regular file's whole content, stored once; nothing for a
// directory. (Skipping a file a writer has opened is the union's: tests/fusefs-upper.)
TEST_P(FilesystemConformanceTest, PrefetchStoresARegularFileWholeAndNothingElse) {
  ASSERT_TRUE(fs_->prefetches());
  for (const auto& [path, content] :
       std::map<std::string, std::string>{{"data/big", kBig}, {"etc/passwd", "root:x:0:0\n"}}) {
    auto file = Walk(path);
    ASSERT_TRUE(file.ok()) << path;
    std::vector<std::uint8_t> buffer(file->size);
    std::vector<std::string> stored;
    Status s = fs_->Prefetch(file->ino, buffer, [&](std::span<const std::uint8_t> bytes) {
      stored.emplace_back(bytes.begin(), bytes.end());
    });
    EXPECT_TRUE(s.ok()) << path << ": " << s.ToString();
    EXPECT_EQ(stored, std::vector<std::string>{content}) << path;
  }
  auto etc = Walk("etc");
  ASSERT_TRUE(etc.ok());
  std::vector<std::uint8_t> buffer(4096);
  bool stored = false;
  (void)fs_->Prefetch(etc->ino, buffer, [&](std::span<const std::uint8_t>) { stored = true; });
  EXPECT_FALSE(stored);
}

// The union reads a lower directory in the lower until something in it changes, and lists it
// itself from then on: a listing in progress goes on across that change without repeating or
// skipping an entry (a name removed before it was reached is not listed, a new one comes last),
// and a lower directory renamed elsewhere, still read in the lower, names its new parent "..".
class UnionListingTest : public FilesystemConformanceTest {};

TEST_P(UnionListingTest, AListingInProgressGoesOnAcrossTheDirectorysFirstChange) {
  auto many = Walk("many");
  ASSERT_TRUE(many.ok());
  const auto all = List(many->ino);
  ASSERT_EQ(all.size(), 62u);
  ASSERT_TRUE(fs_->Unlink(many->ino, all[5].first).ok());   // listed already
  ASSERT_TRUE(fs_->Unlink(many->ino, all[20].first).ok());  // not reached yet
  auto created = fs_->Create({}, many->ino, "zz-new", S_IFREG | 0644, O_WRONLY);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  fs_->Release(created->handle);
  std::vector<std::string> expected;
  for (std::size_t i = 10; i < all.size(); ++i) {
    if (i != 20) expected.push_back(all[i].first);
  }
  expected.push_back("zz-new");
  std::vector<std::string> rest;
  for (const auto& [name, next] : List(many->ino, all[9].second)) rest.push_back(name);
  EXPECT_EQ(rest, expected);
}

TEST_P(UnionListingTest, ARenamedLowerDirectoryNamesItsNewParent) {
  auto etc = Walk("etc");
  ASSERT_TRUE(etc.ok());
  ASSERT_TRUE(fs_->Rename(kRootIno, "empty", etc->ino, "moved", 0).ok());
  auto moved = Walk("etc/moved");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  std::map<std::string, std::uint64_t> entries;
  ASSERT_TRUE(fs_->ReadDir(moved->ino, 0,
                           [&](const DirEntry& e, std::uint64_t) {
                             entries[std::string(e.name)] = e.ino;
                             return true;
                           })
                  .ok());
  EXPECT_EQ(entries, (std::map<std::string, std::uint64_t>{{".", moved->ino}, {"..", etc->ino}}));
}

INSTANTIATE_TEST_SUITE_P(Unions, UnionListingTest,
                         ::testing::Values(Impl::kUnionInMemory, Impl::kUnionPersistent), ImplName);

INSTANTIATE_TEST_SUITE_P(Implementations, FilesystemConformanceTest,
                         ::testing::Values(Impl::kSealedTree, Impl::kUnionInMemory, Impl::kUnionPersistent),
                         ImplName);

}  // namespace
}  // namespace sealroot::fusefs::testing
