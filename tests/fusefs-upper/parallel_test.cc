// One upper data file under concurrent requests, as the FUSE writeback cache sends them (many
// 1 MiB WRITEs of one file in flight): fusefs/src/upper_file.h directly, and once through the
// mount. Writers of disjoint and overlapping ranges (whole blocks, partial blocks, ranges across
// block edges), readers, a truncate and commits (TakeChange) run at once; every byte is then
// checked against a model, and so is every byte a reader saw meanwhile. All writers write the
// same function of the offset, so the outcome does not depend on their order, while a lost
// update (two read-modify-writes of one block, the second writing back the first's old bytes) or
// a torn block (new bytes under the old tag: EIO) shows.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "fusefs/src/upper_file.h"
#include "tests/fusefs-upper/upper_fixture.h"
#include "tests/support/fault_env.h"

namespace sealroot::fusefs::testing {
namespace {

using FaultOp = sealroot::testing::FaultEnv::Op;

constexpr std::uint64_t kBlock = kUpperBlockSize;

std::uint64_t Mix(std::uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9;
  x ^= x >> 27;
  x *= 0x94d049bb133111eb;
  return x ^ (x >> 31);
}
// What every writer writes at `offset`: never 0 (a hole), never what the file held before.
std::uint8_t New(std::uint64_t offset) {
  return static_cast<std::uint8_t>(0x80 | (Mix(offset) & 0x7f));
}
// What the file held before the writers started, where it was no hole: 1..127.
std::uint8_t Old(std::uint64_t offset) {
  return static_cast<std::uint8_t>(1 + Mix(~offset) % 127);
}
std::vector<std::uint8_t> Bytes(std::uint64_t offset, std::uint64_t size, std::uint8_t (*of)(std::uint64_t)) {
  std::vector<std::uint8_t> out(size);
  for (std::uint64_t i = 0; i < size; ++i) out[i] = of(offset + i);
  return out;
}

struct Range {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

std::uint64_t Pick(std::mt19937_64& rng, std::uint64_t lo, std::uint64_t hi) {
  return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
}

// Problems seen on the test's threads, reported on the main one (a few are enough).
class Problems {
 public:
  void Add(std::string what) {
    std::lock_guard lock(mu_);
    if (list_.size() < 20) list_.push_back(std::move(what));
  }
  std::string Joined() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const std::string& p : list_) out += p + "\n";
    return out;
  }
  bool empty() const {
    std::lock_guard lock(mu_);
    return list_.empty();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> list_;
};

// A journal replayed as the mount does (fusefs/src/upper_state.cc ApplyData).
void Apply(std::optional<UpperFileState>& base, UpperFileState change) {
  if (!base || change.drop_from == 0) {
    base = std::move(change);
    return;
  }
  base->blocks.erase(base->blocks.lower_bound(change.drop_from), base->blocks.end());
  for (auto& [index, block] : change.blocks) base->blocks[index] = block;
  base->size = change.size;
  base->epoch_salts = std::move(change.epoch_salts);
}

class UpperFileParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = StoreKey::Create(SecretBytes::Random(32));
    ASSERT_TRUE(key.ok());
    key_ = std::make_shared<StoreKey>(std::move(key).value());
    host_.Reset(memfd_create("upper-parallel-test", MFD_CLOEXEC));
    ASSERT_TRUE(host_);
  }

  // An UpperFile over the host file, with a descriptor of its own: a state taken from one file
  // opens again as the next mount would.
  std::unique_ptr<UpperFile> OpenFile(UpperFileState state, bool persisted) {
    auto file =
        UpperFile::Open(key_, env_, UniqueFd(dup(host_.get())), std::move(state), "test file", persisted);
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? std::move(file).value() : nullptr;
  }
  std::unique_ptr<UpperFile> NewFile() { return OpenFile(EmptyState(), false); }
  static UpperFileState EmptyState() {
    UpperFileState state;
    state.id = 7;
    return state;
  }

  std::uint64_t HostBytes() const {
    struct stat st {};
    EXPECT_EQ(fstat(host_.get(), &st), 0);
    return static_cast<std::uint64_t>(st.st_size);
  }

  static std::vector<std::uint8_t> Contents(const UpperFile& file) {
    std::vector<std::uint8_t> out(file.size());
    for (std::uint64_t at = 0; at < out.size();) {
      auto n = file.Read(at, std::span(out).subspan(at, std::min<std::uint64_t>(out.size() - at, 1 << 20)));
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      at += *n;
    }
    return out;
  }

  static Status Write(UpperFile& file, Range r, std::uint8_t (*of)(std::uint64_t) = New) {
    const std::vector<std::uint8_t> data = Bytes(r.offset, r.size, of);
    auto n = file.Write(r.offset, data);
    if (!n.ok()) return n.status();
    if (*n != r.size) return Internal("short write");
    return OkStatus();
  }

  // The first offset where `got` differs from `want`, or -1.
  static std::int64_t FirstDifference(const std::vector<std::uint8_t>& got,
                                      const std::vector<std::uint8_t>& want) {
    if (got.size() != want.size()) return static_cast<std::int64_t>(std::min(got.size(), want.size()));
    auto diff = std::mismatch(got.begin(), got.end(), want.begin());
    return diff.first == got.end() ? -1 : diff.first - got.begin();
  }

  std::shared_ptr<StoreKey> key_;
  UniqueFd host_;
  sealroot::testing::FaultEnv env_;
};

// Two read-modify-writes of one block must both land: 8 threads own interleaved 97-byte pieces
// of the first two blocks and a bit (so pieces straddle both block edges) and each writes its
// pieces once, in an order of its own.
TEST_F(UpperFileParallelTest, ConcurrentPartialWritesToOneBlockAllLand) {
  constexpr int kThreads = 8;
  constexpr std::uint64_t kEnd = 2 * kBlock + 3000, kPiece = 97;
  auto file = NewFile();
  ASSERT_TRUE(file);
  Problems problems;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Range> mine;
      for (std::uint64_t at = t * kPiece; at < kEnd; at += kThreads * kPiece)
        mine.push_back({at, std::min(kPiece, kEnd - at)});
      std::mt19937_64 rng(t);
      std::shuffle(mine.begin(), mine.end(), rng);
      for (Range r : mine) {
        if (Status s = Write(*file, r); !s.ok())
          problems.Add("write at " + std::to_string(r.offset) + ": " + s.ToString());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_TRUE(problems.empty()) << problems.Joined();
  EXPECT_EQ(file->size(), kEnd);
  EXPECT_EQ(FirstDifference(Contents(*file), Bytes(0, kEnd, New)), -1);
}

// The file before the run: kOldSize bytes of Old() with holes in blocks 5-9 and 20. Writers
// write only below kCut; one Truncate(kCut) lands in the middle of the run (shrinking, and
// re-sealing the block that holds the new end).
constexpr std::uint64_t kOldSize = 40 * kBlock + 1234;
constexpr std::uint64_t kCut = 30 * kBlock + 4321;

bool InHole(std::uint64_t offset) {
  const std::uint64_t block = offset / kBlock;
  return (block >= 5 && block < 10) || block == 20;
}
std::uint8_t Before(std::uint64_t offset) {
  return offset >= kOldSize || InHole(offset) ? 0 : Old(offset);
}

// A write below kCut: whole blocks (as writeback sends them), a piece inside a block, a range
// across a block edge, or anything up to 1 MiB.
Range RandomWrite(std::mt19937_64& rng) {
  Range r;
  switch (Pick(rng, 0, 3)) {
    case 0:
      r = {Pick(rng, 0, kCut / kBlock - 1) * kBlock, Pick(rng, 1, 16) * kBlock};
      break;
    case 1:
      r = {Pick(rng, 0, kCut / kBlock) * kBlock + Pick(rng, 0, kBlock - 1), Pick(rng, 1, 5000)};
      break;
    case 2: {
      const std::uint64_t edge = Pick(rng, 1, kCut / kBlock) * kBlock, before = Pick(rng, 1, 3000);
      r = {edge - before, before + Pick(rng, 1, 3000)};
      break;
    }
    default:
      r = {Pick(rng, 0, kCut - 1), Pick(rng, 1, 1 << 20)};
  }
  r.offset = std::min(r.offset, kCut - 1);
  r.size = std::min(r.size, kCut - r.offset);
  return r;
}

// What a run of UpperFileWorkloadTest::RunAll left: the writes that landed, and (with commits)
// the journal's replay.
struct Workload {
  std::vector<Range> written;
  std::optional<UpperFileState> journal;
  int commits = 0;
};

class UpperFileWorkloadTest : public UpperFileParallelTest {
 protected:
  static constexpr int kWriters = 6, kWritesEach = 60, kReaders = 2;

  void SetUp() override {
    UpperFileParallelTest::SetUp();
    file_ = NewFile();
    ASSERT_TRUE(file_);
    for (std::uint64_t block = 0; block * kBlock < kOldSize; ++block) {
      if (InHole(block * kBlock)) continue;
      const Range r{block * kBlock, std::min(kBlock, kOldSize - block * kBlock)};
      ASSERT_TRUE(Write(*file_, r, Old).ok());
    }
    ASSERT_EQ(file_->size(), kOldSize);
  }

  // Writers, readers, a truncate and (with `commits`) a thread taking the journal's changes,
  // all on the file at once.
  Workload RunAll(bool commits) {
    Workload run;
    if (commits) Apply(run.journal, file_->TakeFull());
    std::vector<std::vector<Range>> written(kWriters);
    std::atomic<int> writes_done{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(100 + t);
        for (int i = 0; i < kWritesEach; ++i) {
          const Range r = RandomWrite(rng);
          if (Status s = Write(*file_, r); !s.ok()) {
            problems_.Add("write [" + std::to_string(r.offset) + ", +" + std::to_string(r.size) +
                          "): " + s.ToString());
          } else {
            written[t].push_back(r);
          }
          ++writes_done;
        }
      });
    }
    std::vector<std::thread> others;
    for (int t = 0; t < kReaders; ++t) others.emplace_back([&, t] { ReadWhileRunning(stop, 200 + t); });
    others.emplace_back([&] {
      while (writes_done.load() < kWriters * kWritesEach / 2) std::this_thread::yield();
      if (Status s = file_->Truncate(kCut); !s.ok()) problems_.Add("truncate: " + s.ToString());
    });
    if (commits) {
      others.emplace_back([&] {
        while (!stop.load()) {
          TakeChange(run.journal);
          ++run.commits;
        }
      });
    }
    for (std::thread& th : threads) th.join();
    stop = true;
    for (std::thread& th : others) th.join();
    if (commits) TakeChange(run.journal);
    for (const auto& w : written) run.written.insert(run.written.end(), w.begin(), w.end());
    return run;
  }

  // Each byte a reader sees is the old one or the new one, never an error.
  void ReadWhileRunning(const std::atomic<bool>& stop, int seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> buf;
    while (!stop.load()) {
      const std::uint64_t offset = Pick(rng, 0, kOldSize - 1);
      buf.resize(Pick(rng, 1, 300000));
      auto n = file_->Read(offset, buf);
      if (!n.ok()) {
        problems_.Add("read at " + std::to_string(offset) + ": " + n.status().ToString());
        continue;
      }
      for (std::size_t i = 0; i < *n; ++i) {
        const std::uint64_t at = offset + i;
        if (buf[i] != Before(at) && !(at < kCut && buf[i] == New(at))) {
          problems_.Add("read at " + std::to_string(offset) + ": byte " + std::to_string(at) + " is " +
                        std::to_string(buf[i]));
          break;
        }
      }
    }
  }

  // A commit's view of the file: its change must replay onto the last into a table a mount
  // accepts (no block past the size, no slot twice).
  void TakeChange(std::optional<UpperFileState>& journal) {
    Apply(journal, file_->TakeChange());
    if (auto reopened =
            UpperFile::Open(key_, Env::Default(), UniqueFd(dup(host_.get())), *journal, "replayed", true);
        !reopened.ok())
      problems_.Add("a commit took a table a mount refuses: " + reopened.status().ToString());
  }

  // The model: New where some write landed, else what was there, cut at kCut.
  static std::vector<std::uint8_t> Expected(const std::vector<Range>& written) {
    std::vector<std::uint8_t> want = Bytes(0, kCut, Before);
    for (Range r : written) {
      for (std::uint64_t at = r.offset; at < r.offset + r.size; ++at) want[at] = New(at);
    }
    return want;
  }

  std::unique_ptr<UpperFile> file_;
  Problems problems_;
};

TEST_F(UpperFileWorkloadTest, WritersReadersAndATruncateMatchAModel) {
  const Workload run = RunAll(false);
  EXPECT_TRUE(problems_.empty()) << problems_.Joined();
  ASSERT_EQ(file_->size(), kCut);
  const std::vector<std::uint8_t> want = Expected(run.written);
  EXPECT_EQ(FirstDifference(Contents(*file_), want), -1);

  // The table agrees with the host's bytes (a next mount reads the same) and with what stat says.
  const UpperFileState full = file_->TakeFull();
  EXPECT_EQ(file_->allocated(),
            std::min<std::uint64_t>(full.blocks.size() * kBlock, (kCut + 4095) / 4096 * 4096));
  auto reopened = OpenFile(full, true);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(FirstDifference(Contents(*reopened), want), -1);
}

// What commits take while writes and a truncate run replays to the file as it ends: each
// change is whole (a block never without the size that holds it, a truncate never half done).
TEST_F(UpperFileWorkloadTest, CommitsTakenMeanwhileReplayToTheSameFile) {
  Workload run = RunAll(true);
  EXPECT_TRUE(problems_.empty()) << problems_.Joined();
  EXPECT_GT(run.commits, 2);
  ASSERT_TRUE(run.journal);
  EXPECT_EQ(run.journal->size, kCut);
  auto replayed = OpenFile(std::move(*run.journal), true);
  ASSERT_TRUE(replayed);
  EXPECT_EQ(FirstDifference(Contents(*replayed), Expected(run.written)), -1);
}

// Writes that fail while others succeed change nothing of the table and keep no slot: the
// failed ranges read as before, only the successful blocks are a commit's change, and once
// written again the file's slots are dense (every slot a failed write had taken was reused).
TEST_F(UpperFileParallelTest, FailedWritesAmongParallelOnesChangeNothingAndKeepNoSlot) {
  constexpr int kThreads = 8;
  auto file = NewFile();
  ASSERT_TRUE(file);
  ASSERT_TRUE(Write(*file, {0, 8 * kBlock}, Old).ok());
  (void)file->TakeFull();
  // Each thread: a piece of an existing block, and three new blocks and a bit past the end.
  std::vector<Range> ranges;
  for (std::uint64_t t = 0; t < kThreads; ++t) {
    ranges.push_back({t * kBlock + 100, 1000});
    ranges.push_back({(8 + 4 * t) * kBlock, 3 * kBlock + 500});
  }
  std::vector<char> landed(ranges.size(), 0);
  Problems problems;
  env_.FailFrom(FaultOp::kWrite, 5, ENOSPC);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = 2 * t; i < 2 * t + 2; ++i) {
        Status s = Write(*file, ranges[i]);
        landed[i] = s.ok();
        if (!s.ok() && StatusToErrno(s) != ENOSPC) problems.Add(s.ToString());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  env_.Clear();
  EXPECT_TRUE(problems.empty()) << problems.Joined();
  const auto landed_count = std::count(landed.begin(), landed.end(), 1);
  ASSERT_GT(landed_count, 0);
  ASSERT_LT(landed_count, static_cast<std::ptrdiff_t>(ranges.size()));

  std::uint64_t size = 8 * kBlock;
  std::vector<std::uint8_t> want = Bytes(0, 40 * kBlock, Old);
  std::fill(want.begin() + 8 * kBlock, want.end(), 0);
  std::set<std::uint64_t> changed;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (!landed[i]) continue;
    const Range r = ranges[i];
    size = std::max(size, r.offset + r.size);
    for (std::uint64_t at = r.offset; at < r.offset + r.size; ++at) want[at] = New(at);
    for (std::uint64_t b = r.offset / kBlock; b * kBlock < r.offset + r.size; ++b) changed.insert(b);
  }
  want.resize(size);
  EXPECT_EQ(file->size(), size);
  EXPECT_EQ(FirstDifference(Contents(*file), want), -1);
  std::set<std::uint64_t> taken;
  for (const auto& [index, block] : file->TakeChange().blocks) taken.insert(index);
  EXPECT_EQ(taken, changed);

  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (!landed[i]) {
      ASSERT_TRUE(Write(*file, ranges[i]).ok());
    }
  }
  const UpperFileState full = file->TakeFull();
  std::set<std::uint64_t> slots;
  for (const auto& [index, block] : full.blocks) slots.insert(block.slot);
  EXPECT_EQ(slots.size(), full.blocks.size());
  EXPECT_EQ(*slots.rbegin() + 1, full.blocks.size()) << "a slot of a failed write was never reused";
  EXPECT_EQ(HostBytes(), full.blocks.size() * kBlock);
}

// Each mount's first write starts an epoch (a new key) while readers may be opening blocks
// sealed under earlier ones: their keys must stay where they are.
TEST_F(UpperFileParallelTest, ReadsKeepTheirKeysWhileAMountsFirstWriteStartsAnEpoch) {
  constexpr int kMounts = 20, kReaders = 3;
  UpperFileState state = EmptyState();
  for (int mount = 0; mount < kMounts; ++mount) {
    auto file = OpenFile(state, mount > 0);
    ASSERT_TRUE(file);
    std::atomic<bool> stop{false};
    std::atomic<int> reads{0};
    Problems problems;
    std::vector<std::thread> readers;
    for (int t = 0; t < kReaders && mount > 0; ++t) {
      readers.emplace_back([&] {
        std::vector<std::uint8_t> buf(kBlock);
        while (!stop.load()) {
          for (std::uint64_t block = 0; block < static_cast<std::uint64_t>(mount); ++block) {
            auto n = file->Read(block * kBlock, buf);
            if (!n.ok() || buf != Bytes(block * kBlock, kBlock, New))
              problems.Add("block " + std::to_string(block) + ": " + n.status().ToString());
          }
          ++reads;
        }
      });
    }
    while (mount > 0 && reads.load() < kReaders) std::this_thread::yield();
    EXPECT_TRUE(Write(*file, {static_cast<std::uint64_t>(mount) * kBlock, kBlock}).ok());
    stop = true;
    for (std::thread& th : readers) th.join();
    EXPECT_TRUE(problems.empty()) << "mount " << mount << ":\n" << problems.Joined();
    state = file->TakeFull();
    ASSERT_EQ(state.epoch_salts.size(), static_cast<std::size_t>(mount + 1));
  }
  auto last = OpenFile(state, true);
  ASSERT_TRUE(last);
  EXPECT_EQ(FirstDifference(Contents(*last), Bytes(0, kMounts * kBlock, New)), -1);
}

// Through the mount: the writeback of one file written by several threads (many WRITE requests
// of it in flight), fsyncs and reads meanwhile, then a remount.
TEST_F(UpperTest, OneFileWrittenByManyThreadsThroughTheMountSurvivesARemount) {
  constexpr int kThreads = 4;
  constexpr std::uint64_t kEach = 8 << 20, kChunk = 1 << 20;
  const RootHash root = SealDefaultLower();
  ASSERT_TRUE(MountPersistent(root).ok());
  const std::string path = P("big");
  ASSERT_EQ(WriteFile(path, ""), 0);
  Problems problems;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
      // Its chunks in an order of its own, now and then an fdatasync (the writeback starts).
      std::vector<std::uint64_t> chunks;
      for (std::uint64_t at = t * kEach; at < (t + 1) * kEach; at += kChunk) chunks.push_back(at);
      std::mt19937_64 rng(t);
      std::shuffle(chunks.begin(), chunks.end(), rng);
      for (std::uint64_t at : chunks) {
        const std::vector<std::uint8_t> data = Bytes(at, kChunk, New);
        if (pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(at)) !=
            static_cast<ssize_t>(kChunk))
          problems.Add("pwrite at " + std::to_string(at) + ": " + std::strerror(errno));
        if (Pick(rng, 0, 3) == 0 && fdatasync(fd.get()) != 0)
          problems.Add(std::string("fdatasync: ") + std::strerror(errno));
      }
    });
  }
  std::thread reader([&] {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::mt19937_64 rng(99);
    std::vector<std::uint8_t> buf(300000);
    while (!stop.load()) {
      const std::uint64_t offset = Pick(rng, 0, kThreads * kEach - 1);
      const ssize_t n = pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(offset));
      if (n < 0) problems.Add(std::string("pread: ") + std::strerror(errno));
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != 0 && buf[i] != New(offset + i)) {
          problems.Add("byte " + std::to_string(offset + i) + " is " + std::to_string(buf[i]));
          break;
        }
      }
    }
  });
  for (std::thread& th : writers) th.join();
  stop = true;
  reader.join();
  EXPECT_TRUE(problems.empty()) << problems.Joined();
  {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(fsync(fd.get()), 0);
  }
  const std::vector<std::uint8_t> bytes = Bytes(0, kThreads * kEach, New);
  const std::string want(bytes.begin(), bytes.end());
  EXPECT_TRUE(ReadFile(path) == want);
  ASSERT_TRUE(Remount(root).ok());
  EXPECT_TRUE(ReadFile(path) == want) << "after remount";
}

}  // namespace
}  // namespace sealroot::fusefs::testing
