// Read-ahead in the union (a container's root): small lower files are stored in the page cache
// as on the read-only tree, never over a writer's bytes, and never at the cost of the threads
// that serve requests.
#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "tests/fusefs-upper/posix_suite.h"
#include "tests/fusefs/page_cache.h"

namespace sealroot::fusefs::testing {
namespace {

// Reading the first file of a listed directory reads its small lower files ahead into the page
// cache, as on the read-only tree; a file already copied up is left alone (its lower bytes
// stored over it would be stale), and so is one the host tampered with (its reader gets EIO).
TEST_F(UpperTest, ReadingAListedDirectoryStoresItsSmallLowerFilesInThePageCache) {
  std::vector<Item> lower{Dir("d"), File("d/tampered", Pattern(120000, 99))};
  for (int i = 0; i < 30; ++i) lower.push_back(File("d/f" + std::to_string(10 + i), Pattern(10000, i)));
  const RootHash root = SealSingle("lower", lower);
  FlipByte(NthLargestObject("lower", 0), 64 + 10);
  ASSERT_TRUE(Mount(root, {}).ok());
  ASSERT_EQ(WriteFile(P("d/f39"), "new", O_WRONLY | O_TRUNC), 0);
  Names(P("d"));
  EXPECT_EQ(ReadFile(P("d/f10")), Pattern(10000, 0));
  for (int i = 1; i < 29; ++i) {
    const std::string file = P("d/f" + std::to_string(10 + i));
    EXPECT_TRUE(BecomesPageCached(file)) << file;
    EXPECT_EQ(ReadFile(file), Pattern(10000, i)) << file;
  }
  EXPECT_EQ(ReadFile(P("d/f39")), "new");
  EXPECT_FALSE(IsPageCached(P("d/tampered")));
  EXPECT_EQ(ReadFile(P("d/tampered")), "errno " + std::to_string(EIO));
}

// A prefetch stores what it read while the file cannot change: an open for writing and a
// truncate of that file are turned back (kAborted) until the store is done, and once they have
// copied the file up it is no longer prefetched.
TEST_F(UpperTest, WritersOfALowerFileAreTurnedBackWhileItsPrefetchStoresIt) {
  const RootHash root = SealSingle("lower", {Dir("d"), File("d/f", Pattern(10000, 1))});
  auto lower = OpenTree(root);
  ASSERT_TRUE(lower.ok());
  auto fs = UnionFs::Open(std::move(lower).value(), key_, root, {});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  Filesystem& union_fs = **fs;  // UnionFs::Open (the factory) hides Filesystem::Open
  auto dir = union_fs.LookupStat(kRootIno, "d");
  ASSERT_TRUE(dir.ok());
  auto file = union_fs.LookupStat(dir->attr.ino, "f");
  ASSERT_TRUE(file.ok());
  const std::uint64_t ino = file->attr.ino;
  std::vector<std::uint8_t> buffer(10000);
  int stores = 0;
  Status prefetched = union_fs.Prefetch(ino, buffer, [&](std::span<const std::uint8_t> bytes) {
    ++stores;
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), Pattern(10000, 1));
    EXPECT_EQ(union_fs.Open(ino, O_WRONLY).status().code(), Code::kAborted);
    EXPECT_EQ(union_fs.Open(ino, O_RDWR | O_TRUNC).status().code(), Code::kAborted);
    EXPECT_EQ(union_fs.SetAttr(ino, {.size = 5}).status().code(), Code::kAborted);
    auto reader = union_fs.Open(ino, O_RDONLY);  // reading changes nothing
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (reader.ok()) union_fs.Release(*reader);
  });
  EXPECT_TRUE(prefetched.ok()) << prefetched.ToString();
  EXPECT_EQ(stores, 1);
  auto writer = union_fs.Open(ino, O_WRONLY);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  union_fs.Release(*writer);
  EXPECT_TRUE(union_fs.SetAttr(ino, {.size = 5}).ok());
  EXPECT_TRUE(union_fs.Prefetch(ino, buffer, [&](std::span<const std::uint8_t>) { ++stores; }).ok());
  EXPECT_EQ(stores, 1) << "a file copied up was stored again";
}

// The union with its prefetch held at the moment it stores one file, until the test lets it go;
// every other call goes to the union.
class HeldPrefetch : public Filesystem {
 public:
  explicit HeldPrefetch(Filesystem& inner) : inner_(inner) {}

  std::uint64_t held_ino = 0;
  std::atomic<bool> storing = false, turned_back = false, released = false;

  Status Prefetch(std::uint64_t ino, std::span<std::uint8_t> buffer, const PageStore& store) override {
    return inner_.Prefetch(ino, buffer, [&](std::span<const std::uint8_t> bytes) {
      if (ino == held_ino) {
        storing = true;
        Until([&] { return released.load(); }, 30);  // longer than the test waits for anything
      }
      store(bytes);
    });
  }
  Result<std::uint64_t> Open(std::uint64_t ino, int flags) override {
    auto handle = inner_.Open(ino, flags);
    if (ino == held_ino && handle.status().code() == Code::kAborted) turned_back = true;
    return handle;
  }
  // Waits up to `seconds` for `done`.
  static bool Until(const std::function<bool()>& done, int seconds = 10) {
    for (int i = 0; i < seconds * 100 && !done(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done();
  }

  bool prefetches() const override { return inner_.prefetches(); }
  Result<Attr> Lookup(std::uint64_t parent, std::string_view name) override {
    return inner_.Lookup(parent, name);
  }
  Result<Stat> LookupStat(std::uint64_t parent, std::string_view name) override {
    return inner_.LookupStat(parent, name);
  }
  void Forget(std::uint64_t ino, std::uint64_t count) override { inner_.Forget(ino, count); }
  Result<Attr> GetAttr(std::uint64_t ino) override { return inner_.GetAttr(ino); }
  Result<Stat> GetStat(std::uint64_t ino) override { return inner_.GetStat(ino); }
  Result<std::string> ReadLink(std::uint64_t ino) override { return inner_.ReadLink(ino); }
  Result<std::size_t> Read(std::uint64_t handle, std::uint64_t offset, std::span<std::uint8_t> out) override {
    return inner_.Read(handle, offset, out);
  }
  void Release(std::uint64_t handle) override { inner_.Release(handle); }
  Status ReadDir(std::uint64_t ino, std::uint64_t offset, const DirFiller& add) override {
    return inner_.ReadDir(ino, offset, add);
  }
  Result<std::string> GetXattr(std::uint64_t ino, std::string_view name) override {
    return inner_.GetXattr(ino, name);
  }
  Result<std::vector<std::string>> ListXattr(std::uint64_t ino) override { return inner_.ListXattr(ino); }
  FsStats StatFs() override { return inner_.StatFs(); }
  Result<Stat> SetAttr(std::uint64_t ino, const SetAttrRequest& request) override {
    return inner_.SetAttr(ino, request);
  }
  Result<std::size_t> Write(std::uint64_t handle, std::uint64_t offset,
                            std::span<const std::uint8_t> data) override {
    return inner_.Write(handle, offset, data);
  }
  Status Fsync(std::uint64_t handle, bool datasync) override { return inner_.Fsync(handle, datasync); }

 private:
  Filesystem& inner_;
};

// Through the kernel, with one thread serving requests: a writer's open that arrives while the
// file is being stored is answered after the store, and the thread serves other requests
// meanwhile — among them a read of that very file, which a store can wait for. Had the open
// waited on that thread, the read (and so the store, and so the open) would never finish.
TEST_F(UpperTest, AWritersOpenDuringAPrefetchStoreLeavesTheRequestThreadFree) {
  std::vector<Item> lower{Dir("d")};
  for (int i = 0; i < 3; ++i) lower.push_back(File("d/f" + std::to_string(i), Pattern(10000, i)));
  const RootHash root = SealSingle("lower", lower);
  auto tree = OpenTree(root);
  ASSERT_TRUE(tree.ok());
  auto fs = UnionFs::Open(std::move(tree).value(), key_, root, {});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  HeldPrefetch held(**fs);
  auto mount = FuseMount::Create(held, {.mountpoint = mnt_, .read_only = false, .max_threads = 1});
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  std::thread server([&] { (void)(*mount)->Serve(); });

  // The scenario runs in a lambda so that a failed assertion still unmounts below.
  [&] {
    held.held_ino = Lstat(P("d/f1")).st_ino;
    Names(P("d"));
    EXPECT_EQ(ReadFile(P("d/f0")), Pattern(10000, 0));  // the read that starts the prefetch of f1, f2
    ASSERT_TRUE(HeldPrefetch::Until([&] { return held.storing.load(); })) << "d/f1 was not prefetched";

    std::atomic<bool> written = false;
    std::thread writer([&] { written = WriteFile(P("d/f1"), "new", O_WRONLY) == 0; });
    EXPECT_TRUE(HeldPrefetch::Until([&] { return held.turned_back.load(); }))
        << "the open was not turned back";
    std::string read_meanwhile;
    std::atomic<bool> read_done = false;
    std::thread reader([&] {
      read_meanwhile = ReadFile(P("d/f1"));
      read_done = true;
    });
    EXPECT_TRUE(HeldPrefetch::Until([&] { return read_done.load(); }))
        << "a read of the file was not served while its store was held";
    EXPECT_FALSE(written) << "the open was answered before the store";
    held.released = true;
    reader.join();
    EXPECT_EQ(read_meanwhile, Pattern(10000, 1));

    writer.join();
    EXPECT_TRUE(written);
    EXPECT_EQ(ReadFile(P("d/f1")), "new" + Pattern(10000, 1).substr(3));
  }();
  held.released = true;
  umount2(mnt_.c_str(), MNT_DETACH);
  server.join();
}

}  // namespace
}  // namespace sealroot::fusefs::testing
