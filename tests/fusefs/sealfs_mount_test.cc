// The sealed root through the kernel: `sealroot unpack --seal`, `sealroot mount`, the mounted
// tree against `umoci unpack`'s, running a program from it, tampering seen as EIO with a log
// line naming the path, bad keys and roots refused before anything is mounted, fsck/gc/df,
// named roots (gc keeps named and mounted roots, reclaims the rest; a tampered names file is
// refused), key-file mistakes, and the commands' --json documents.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/images.h"
#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

constexpr unsigned kFuseSuperMagic = 0x65735546;

std::string Sealroot() {
  return BuiltProgram("sealroot");
}

// Runs a command (gtest's Test::Run would shadow the support library's Run inside fixtures).
CommandResult Exec(const std::vector<std::string>& argv) {
  return sealroot::testing::Run(argv);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool IsFuseMount(const std::string& path) {
  struct statfs st {};
  return statfs(path.c_str(), &st) == 0 && static_cast<unsigned>(st.f_type) == kFuseSuperMagic;
}

// Whether `path` appears in this process's mount table (a dead FUSE mount still does).
bool InMountTable(const std::string& path) {
  return ReadText("/proc/self/mountinfo").find(" " + path + " ") != std::string::npos;
}

// Whether `pid` runs (a zombie has finished: it only waits to be reaped).
bool Alive(pid_t pid) {
  std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  std::size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 400; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The pid of the `sealroot mount ... MNT` daemon.
pid_t MountDaemon(const std::string& mnt) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string cmdline = ReadText(e.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(" mount ") != std::string::npos && cmdline.find(" " + mnt + " ") != std::string::npos &&
        cmdline.find("sealroot") != std::string::npos) {
      return std::stoi(e.path().filename());
    }
  }
  return -1;
}

// A sealed store holding images, and mounts that are unmounted when the test ends.
class SealfsMountTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& m : mounts_) Exec({Sealroot(), "umount", m});
  }

  // `sealroot unpack REF --seal STORE --key-file KEY [--name NAME] --json`: the root hash.
  std::string Seal(const std::string& ref, const std::string& name = "") {
    std::vector<std::string> argv = {
        Sealroot(), "unpack", "--insecure-policy", ref, "--seal", store_, "--key-file", key_, "--json"};
    if (!name.empty()) argv.insert(argv.end(), {"--name", name});
    auto r = Exec(argv);
    EXPECT_TRUE(r.ok()) << r.err << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("root_hash")) return "";
    return j["root_hash"].get<std::string>();
  }

  CommandResult Mount(const std::string& root, const std::string& mnt, const std::string& key) {
    std::filesystem::create_directories(mnt);
    auto r = Exec({Sealroot(), "mount", store_, mnt, "--root", root, "--key-file", key, "--read-only",
                   "--log-file", log_});
    if (r.ok()) mounts_.push_back(mnt);
    return r;
  }

  // A writable mount keeping its upper in tmp_/upper (pinned to `upper_root` when given),
  // writing the upper's root at unmount to tmp_/upper-root.
  std::vector<std::string> WritableMountArgs(const std::string& root, const std::string& mnt,
                                             const std::string& upper_root = "") {
    std::filesystem::create_directories(mnt);
    std::vector<std::string> argv = {Sealroot(),
                                     "mount",
                                     store_,
                                     mnt,
                                     "--root",
                                     root,
                                     "--key-file",
                                     key_,
                                     "--upper",
                                     tmp_ / "upper",
                                     "--upper-root-file",
                                     root_file_,
                                     "--log-file",
                                     log_};
    if (!upper_root.empty()) argv.insert(argv.end(), {"--upper-root", upper_root});
    return argv;
  }

  // Mounts the upper pinned to `upper_root` and reads `file` from it.
  std::string ReadFromUpper(const std::string& root, const std::string& upper_root, const std::string& file) {
    std::string mnt = tmp_ / "check";
    auto r = Exec(WritableMountArgs(root, mnt, upper_root));
    EXPECT_TRUE(r.ok()) << r.err;
    if (!r.ok()) return "";
    std::string text = ReadText(mnt + "/" + file);
    EXPECT_TRUE(Exec({Sealroot(), "umount", mnt}).ok());
    return text;
  }

  TempDir tmp_;
  std::string root_file_ = tmp_ / "upper-root";
  std::string store_ = tmp_ / "store";
  std::string key_ = tmp_ / "key";
  std::string log_ = tmp_ / "daemon.log";
  std::vector<std::string> mounts_;
};

TEST_F(SealfsMountTest, MountedTreeEqualsUmociUnpack) {
  std::string ref = BuildFeatureRichImage(tmp_ / "layout");
  std::string root = Seal(ref);
  ASSERT_EQ(root.size(), 64u);
  EXPECT_EQ(std::filesystem::status(key_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // Same depth as bundle/rootfs: ScanTree names absolute symlinks' targets relative to the root.
  ASSERT_TRUE(Mount(root, tmp_ / "sealed/rootfs", key_).ok());
  ASSERT_TRUE(IsFuseMount(tmp_ / "sealed/rootfs"));
  UmociUnpack(ref, tmp_ / "bundle");
  Tree expected = ScanTree(tmp_ / "bundle/rootfs"), actual = ScanTree(tmp_ / "sealed/rootfs");
  EXPECT_GT(expected.size(), 10u);
  EXPECT_EQ(DiffTrees(expected, actual), "");
}

TEST_F(SealfsMountTest, RunsAProgramFromTheSealedRootAndReusesLayers) {
  std::string ref = BuildBusyboxImage(tmp_ / "layout");
  std::string root = Seal(ref);
  ASSERT_EQ(root.size(), 64u);
  ASSERT_TRUE(Mount(root, tmp_ / "mnt", key_).ok());
  auto r = Exec(
      {"chroot", tmp_ / "mnt", "/bin/sh", "-c", "echo sealed $(cat /etc/passwd | head -1 | cut -d: -f1)"});
  EXPECT_EQ(r.out, "sealed root\n") << r.err;
  // allow_other + default_permissions: another user reads what the modes allow.
  std::filesystem::permissions(tmp_.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  auto nobody =
      Exec({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", tmp_ / "mnt/etc/group"});
  EXPECT_TRUE(nobody.ok()) << nobody.err;
  // A second pull of the same image seals no layer again: the store gains only the new image
  // root and its directory objects, no data object.
  auto dirs = Exec({"find", tmp_ / "mnt", "-type", "d"});
  int directories = static_cast<int>(std::count(dirs.out.begin(), dirs.out.end(), '\n'));
  auto before = Exec({Sealroot(), "df", store_, "--json"});
  std::string root2 = Seal(ref);
  auto after = Exec({Sealroot(), "df", store_, "--json"});
  auto b = nlohmann::json::parse(before.out), a = nlohmann::json::parse(after.out);
  EXPECT_NE(root2, root);
  EXPECT_EQ(a["layers"], b["layers"]);
  EXPECT_EQ(a["objects"].get<int>() - b["objects"].get<int>(), directories + 1);
}

TEST_F(SealfsMountTest, TamperedObjectReadsAsEioAndIsLoggedAndNamedByFsck) {
  std::string ref = BuildBusyboxImage(tmp_ / "layout");
  std::string root = Seal(ref);
  // Flip one bit in every data object bigger than 1 MiB (the busybox binary).
  auto flipped = Shell("cd '" + store_ +
                       "/objects' && for f in $(find . -type f -size +1M); do "
                       "printf '\\x55' | dd of=$f bs=1 seek=200 conv=notrunc status=none; echo $f; done");
  ASSERT_TRUE(flipped.ok());
  ASSERT_FALSE(flipped.out.empty());
  ASSERT_TRUE(Mount(root, tmp_ / "mnt", key_).ok());
  auto cat = Exec({"cat", tmp_ / "mnt/bin/busybox"});
  EXPECT_NE(cat.exit_code, 0);
  EXPECT_NE(cat.err.find("Input/output error"), std::string::npos) << cat.err;
  EXPECT_EQ(ReadText(tmp_ / "mnt/etc/group").substr(0, 5), "root:");  // unaffected
  EXPECT_NE(ReadText(log_).find("integrity failure: /bin/busybox"), std::string::npos) << ReadText(log_);
  auto fsck = Exec({Sealroot(), "fsck", store_, "--root", root, "--key-file", key_});
  EXPECT_EQ(fsck.exit_code, 3);
  EXPECT_NE(fsck.out.find("/bin/busybox"), std::string::npos) << fsck.out;
}

TEST_F(SealfsMountTest, WrongKeyOrRootIsRefusedBeforeMounting) {
  std::string root = Seal(BuildBusyboxImage(tmp_ / "layout"));
  ASSERT_EQ(root.size(), 64u);
  std::string other_key = tmp_ / "other-key";
  std::ofstream(other_key) << std::string(64, 'a');
  std::filesystem::permissions(other_key,
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto wrong_key = Mount(root, tmp_ / "m1", other_key);
  EXPECT_EQ(wrong_key.exit_code, 3) << wrong_key.err;
  EXPECT_NE(wrong_key.err.find("different key"), std::string::npos) << wrong_key.err;
  EXPECT_FALSE(IsFuseMount(tmp_ / "m1"));
  auto wrong_root = Mount(std::string(64, '0'), tmp_ / "m2", key_);
  EXPECT_EQ(wrong_root.exit_code, 4) << wrong_root.err;
  EXPECT_FALSE(IsFuseMount(tmp_ / "m2"));
  auto bad_hex = Mount("xyz", tmp_ / "m3", key_);
  EXPECT_EQ(bad_hex.exit_code, 2) << bad_hex.err;
  auto missing_key = Mount(root, tmp_ / "m4", tmp_ / "no-such-key");
  EXPECT_NE(missing_key.exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "no-such-key"));  // mount never creates a key
  auto foreign = Exec({Sealroot(), "fsck", tmp_.path(), "--root", root, "--key-file", key_});
  EXPECT_NE(foreign.exit_code, 0);
  EXPECT_NE(foreign.err.find("not a sealed store"), std::string::npos) << foreign.err;
  // A missing mountpoint is named in our words, not libfuse's.
  auto missing_dir = Exec(
      {Sealroot(), "mount", store_, tmp_ / "no-such-dir", "--root", root, "--key-file", key_, "--read-only"});
  EXPECT_EQ(missing_dir.exit_code, 4) << missing_dir.err;
  EXPECT_EQ(missing_dir.err,
            "sealroot mount: error: mountpoint " + tmp_ / "no-such-dir" + " does not exist\n");
}

TEST_F(SealfsMountTest, GcKeepsMountedRootsAndDfReportsUsage) {
  std::string root = Seal(BuildBusyboxImage(tmp_ / "layout"));
  ASSERT_TRUE(Mount(root, tmp_ / "mnt", key_).ok());
  // The root has no name, but it is mounted: gc keeps it.
  auto gc = Exec({Sealroot(), "gc", store_, "--key-file", key_, "--json"});
  ASSERT_TRUE(gc.ok()) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["objects_removed"], 0);
  EXPECT_EQ(nlohmann::json::parse(gc.out)["roots_removed"], 0);
  auto fsck = Exec({Sealroot(), "fsck", store_, "--root", root, "--key-file", key_});
  EXPECT_TRUE(fsck.ok()) << fsck.out << fsck.err;
  auto df = Exec({Sealroot(), "df", store_, "--json"});
  auto j = nlohmann::json::parse(df.out);
  EXPECT_EQ(j["roots"], 1);
  EXPECT_EQ(j["layers"], 1);
  EXPECT_EQ(j["unreferenced_objects"], 0);
  auto umount = Exec({Sealroot(), "umount", tmp_ / "mnt"});
  EXPECT_TRUE(umount.ok()) << umount.err;
  mounts_.clear();
  EXPECT_FALSE(IsFuseMount(tmp_ / "mnt"));
  auto again = Exec({Sealroot(), "umount", tmp_ / "mnt"});
  EXPECT_EQ(again.exit_code, 4);
  EXPECT_EQ(again.err, "sealroot umount: error: unmounting " + tmp_ / "mnt" + ": not mounted\n");
  auto missing = Exec({Sealroot(), "umount", tmp_ / "no-such-dir"});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_EQ(missing.err,
            "sealroot umount: error: unmounting " + tmp_ / "no-such-dir" + ": no such directory\n");
  // Unmounted and unnamed: now gc reclaims the root and everything only it used.
  gc = Exec({Sealroot(), "gc", store_, "--key-file", key_, "--json"});
  ASSERT_TRUE(gc.ok()) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["roots_removed"], 1);
  auto empty = nlohmann::json::parse(Exec({Sealroot(), "df", store_, "--json"}).out);
  EXPECT_EQ(empty["roots"], 0);
  EXPECT_EQ(empty["layers"], 0);
  EXPECT_EQ(empty["objects"], 0);
}

TEST_F(SealfsMountTest, NamedRootSurvivesGcAndARemovedNameLetsGcReclaimIt) {
  std::string ref = BuildBusyboxImage(tmp_ / "layout");
  std::string named = Seal(ref, "busybox:1");
  std::string unnamed = Seal(ref);
  ASSERT_EQ(named.size(), 64u);
  ASSERT_NE(named, unnamed);
  auto ls = Exec({Sealroot(), "roots", "ls", store_, "--key-file", key_, "--json"});
  ASSERT_TRUE(ls.ok()) << ls.err;
  auto listed = nlohmann::json::parse(ls.out)["roots"];
  ASSERT_EQ(listed.size(), 2u) << ls.out;
  EXPECT_EQ(listed[0]["name"], "busybox:1");
  EXPECT_EQ(listed[0]["root_hash"], named);
  EXPECT_TRUE(listed[1]["name"].is_null());
  EXPECT_EQ(listed[1]["root_hash"], unnamed);

  auto gc = Exec({Sealroot(), "gc", store_, "--key-file", key_, "--json"});
  ASSERT_TRUE(gc.ok()) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["roots_removed"], 1);
  EXPECT_GT(nlohmann::json::parse(gc.out)["objects_removed"].get<int>(),
            0);                                                   // the unnamed root's directories
  EXPECT_EQ(nlohmann::json::parse(gc.out)["layers_removed"], 0);  // shared with the named root
  auto fsck = Exec({Sealroot(), "fsck", store_, "--root", named, "--key-file", key_});
  EXPECT_TRUE(fsck.ok()) << fsck.out << fsck.err;
  EXPECT_EQ(Mount(unnamed, tmp_ / "gone", key_).exit_code, 4);  // reclaimed

  auto rm = Exec({Sealroot(), "roots", "rm", store_, "busybox:1", "--key-file", key_});
  ASSERT_TRUE(rm.ok()) << rm.err;
  EXPECT_EQ(Exec({Sealroot(), "roots", "rm", store_, "busybox:1", "--key-file", key_}).exit_code, 4);
  gc = Exec({Sealroot(), "gc", store_, "--key-file", key_, "--json"});
  ASSERT_TRUE(gc.ok()) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["roots_removed"], 1);
  EXPECT_EQ(nlohmann::json::parse(gc.out)["layers_removed"], 1);
  auto df = nlohmann::json::parse(Exec({Sealroot(), "df", store_, "--json"}).out);
  EXPECT_EQ(df["objects"], 0);
  EXPECT_EQ(df["roots"], 0);
}

TEST_F(SealfsMountTest, TamperedNamesFileIsRefusedAndGcRemovesNothing) {
  std::string ref = BuildBusyboxImage(tmp_ / "layout");
  std::string root = Seal(ref, "keep-me");
  ASSERT_EQ(root.size(), 64u);
  auto flipped = Shell("printf '\\x55' | dd of='" + store_ + "/names' bs=1 seek=30 conv=notrunc status=none");
  ASSERT_TRUE(flipped.ok()) << flipped.err;
  auto ls = Exec({Sealroot(), "roots", "ls", store_, "--key-file", key_});
  EXPECT_EQ(ls.exit_code, 3) << ls.err;
  EXPECT_NE(ls.err.find("names file authentication failed"), std::string::npos) << ls.err;
  auto gc = Exec({Sealroot(), "gc", store_, "--key-file", key_});
  EXPECT_EQ(gc.exit_code, 3) << gc.err;
  EXPECT_NE(gc.err.find("gc removed nothing"), std::string::npos) << gc.err;
  auto df = nlohmann::json::parse(Exec({Sealroot(), "df", store_, "--json"}).out);
  EXPECT_EQ(df["roots"], 1);
  EXPECT_EQ(df["unreferenced_objects"], 0);
  // Names sealed under another store's key do not authenticate either.
  std::string other_store = tmp_ / "other-store", other_key = tmp_ / "other-key";
  auto other = Exec({Sealroot(), "unpack", "--insecure-policy", ref, "--seal", other_store, "--key-file",
                     other_key, "--name", "keep-me"});
  ASSERT_TRUE(other.ok()) << other.err;
  std::filesystem::copy_file(other_store + "/names", store_ + "/names",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(Exec({Sealroot(), "gc", store_, "--key-file", key_}).exit_code, 3);
}

TEST_F(SealfsMountTest, StoreSealedBeforeNamedRootsIsNotEmptiedByGc) {
  std::string root = Seal(BuildBusyboxImage(tmp_ / "layout"));
  ASSERT_EQ(root.size(), 64u);
  std::filesystem::remove(store_ + "/names");  // as a store sealed by an older sealroot
  auto gc = Exec({Sealroot(), "gc", store_, "--key-file", key_});
  EXPECT_EQ(gc.exit_code, 1) << gc.err;
  EXPECT_NE(gc.err.find("sealed before named roots"), std::string::npos) << gc.err;
  EXPECT_EQ(Exec({Sealroot(), "gc", store_}).exit_code, 2);  // gc needs the key
  auto add = Exec({Sealroot(), "roots", "add", store_, "old", "--root", root, "--key-file", key_});
  ASSERT_TRUE(add.ok()) << add.err;
  gc = Exec({Sealroot(), "gc", store_, "--key-file", key_, "--json"});
  ASSERT_TRUE(gc.ok()) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["roots_removed"], 0);
  EXPECT_TRUE(Exec({Sealroot(), "fsck", store_, "--root", root, "--key-file", key_}).ok());
}

TEST_F(SealfsMountTest, MistypedOrUnprotectedKeyFileIsRefused) {
  std::string ref = BuildBusyboxImage(tmp_ / "layout");
  ASSERT_EQ(Seal(ref).size(), 64u);
  // An existing store: a key file that does not exist is a mistake, not a new key.
  auto typo =
      Exec({Sealroot(), "unpack", "--insecure-policy", ref, "--seal", store_, "--key-file", tmp_ / "kye"});
  EXPECT_EQ(typo.exit_code, 4) << typo.err;
  EXPECT_NE(typo.err.find("already has a key"), std::string::npos) << typo.err;
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "kye"));
  // A key others can read is refused, as ssh refuses such a private key.
  std::filesystem::permissions(key_, std::filesystem::perms::group_read | std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto open = Exec({Sealroot(), "unpack", "--insecure-policy", ref, "--seal", store_, "--key-file", key_});
  EXPECT_NE(open.exit_code, 0);
  EXPECT_NE(open.err.find("permissions 0644"), std::string::npos) << open.err;
  EXPECT_NE(open.err.find("chmod 600"), std::string::npos) << open.err;
  auto mount = Mount(std::string(64, '0'), tmp_ / "mnt", key_);
  EXPECT_NE(mount.err.find("permissions 0644"), std::string::npos) << mount.err;
}

TEST_F(SealfsMountTest, FsckAndMountJsonAreOneDocumentEach) {
  std::string root = Seal(BuildBusyboxImage(tmp_ / "layout"));
  std::string mnt = tmp_ / "mnt";
  std::filesystem::create_directories(mnt);
  auto mounted =
      Exec({Sealroot(), "mount", store_, mnt, "--root", root, "--key-file", key_, "--read-only", "--json"});
  ASSERT_TRUE(mounted.ok()) << mounted.err;
  mounts_.push_back(mnt);
  auto described = nlohmann::json::parse(mounted.out, nullptr, false);
  ASSERT_FALSE(described.is_discarded()) << mounted.out;
  EXPECT_EQ(described["mountpoint"], mnt);
  EXPECT_EQ(described["root_hash"], root);
  EXPECT_EQ(described["store"], store_);
  EXPECT_EQ(described["read_only"], true);
  EXPECT_TRUE(Exec({Sealroot(), "umount", mnt}).ok());
  mounts_.clear();

  auto flipped = Shell("cd '" + store_ +
                       "/objects' && for f in $(find . -type f -size +1M); do "
                       "printf '\\x55' | dd of=$f bs=1 seek=200 conv=notrunc status=none; done");
  ASSERT_TRUE(flipped.ok());
  auto fsck = Exec({Sealroot(), "fsck", store_, "--root", root, "--key-file", key_, "--json"});
  EXPECT_EQ(fsck.exit_code, 3);
  auto doc = nlohmann::json::parse(fsck.out, nullptr, false);  // two documents would not parse
  ASSERT_FALSE(doc.is_discarded()) << fsck.out;
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["error"]["code"], "DATA_LOSS");
  EXPECT_GE(doc["bad_objects"].size(), 1u);
}

// Ctrl-C or SIGTERM on a foreground mount: unmounted (no dead "Transport endpoint is not
// connected" mount left), the upper saved first (a write made just before is in it), exit 130.
TEST_F(SealfsMountTest, SignalToForegroundMountUnmountsAndSavesTheUpper) {
  std::string root = Seal(BuildBusyboxImage(tmp_ / "layout"));
  std::string upper_root;
  for (int sig : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(sig == SIGINT ? "SIGINT" : "SIGTERM");
    std::string mnt = tmp_ / "fg";
    std::vector<std::string> argv = WritableMountArgs(root, mnt, upper_root);
    argv.push_back("--foreground");
    BackgroundProcess mount(argv, tmp_ / "fg.log");
    ASSERT_TRUE(WaitFor([&] { return IsFuseMount(mnt); })) << ReadText(tmp_ / "fg.log");
    std::ofstream(mnt + "/written-" + std::to_string(sig)) << "before the signal\n";
    EXPECT_EQ(mount.Stop(sig), 130) << ReadText(tmp_ / "fg.log");
    EXPECT_FALSE(InMountTable(mnt));
    EXPECT_FALSE(IsFuseMount(mnt));
    std::string saved = ReadText(root_file_);
    ASSERT_EQ(saved.size(), 65u) << "no upper root saved";
    upper_root = saved.substr(0, 64);
    EXPECT_EQ(ReadFromUpper(root, upper_root, "written-" + std::to_string(sig)), "before the signal\n");
    upper_root = ReadText(root_file_).substr(0, 64);  // that mount saved the upper again
  }
}

// SIGTERM to a daemonized mount unmounts it after saving the upper; `sealroot umount` returns
// only once the upper's root is written.
TEST_F(SealfsMountTest, SigtermToDaemonAndUmountBothSaveTheUpperFirst) {
  std::string root = Seal(BuildBusyboxImage(tmp_ / "layout"));
  std::string mnt = tmp_ / "daemon";
  auto r = Exec(WritableMountArgs(root, mnt));
  ASSERT_TRUE(r.ok()) << r.err;
  mounts_.push_back(mnt);
  pid_t daemon = MountDaemon(mnt);
  ASSERT_GT(daemon, 0);
  std::ofstream(mnt + "/first") << "1\n";
  ASSERT_EQ(kill(daemon, SIGTERM), 0);
  EXPECT_TRUE(WaitFor([&] { return !Alive(daemon); })) << "the daemon survived SIGTERM";
  EXPECT_FALSE(InMountTable(mnt));
  std::string first_root = ReadText(root_file_).substr(0, 64);
  ASSERT_EQ(first_root.size(), 64u) << ReadText(log_);

  r = Exec(WritableMountArgs(root, mnt, first_root));
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(ReadText(mnt + "/first"), "1\n");
  std::ofstream(mnt + "/second") << "2\n";
  daemon = MountDaemon(mnt);
  ASSERT_GT(daemon, 0);
  auto umount = Exec({Sealroot(), "umount", mnt});
  ASSERT_TRUE(umount.ok()) << umount.err;
  mounts_.clear();
  EXPECT_FALSE(Alive(daemon)) << "umount returned while the mount's process was still saving";
  std::string second_root = ReadText(root_file_).substr(0, 64);  // read at once: already durable
  EXPECT_NE(second_root, first_root) << "umount returned before the upper was saved";
  EXPECT_EQ(ReadFromUpper(root, second_root, "second"), "2\n");
}

}  // namespace
}  // namespace sealroot::testing
