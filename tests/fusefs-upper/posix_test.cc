// POSIX behaviour of the writable mount, as root and as `nobody` (default_permissions).
#include <sys/sysmacros.h>

#include "tests/fusefs-upper/posix_suite.h"

namespace sealroot::fusefs::testing {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += s + "\n";
  return out;
}

TEST_F(UpperTest, PosixSuiteAsRoot) {
  ASSERT_TRUE(Mount(SealDefaultLower(), {}).ok());
  ASSERT_EQ(mkdir(P("suite").c_str(), 0755), 0);
  auto failures = PosixSuite(P("suite"));
  EXPECT_TRUE(failures.empty()) << Join(failures);
}

TEST_F(UpperTest, PosixSuiteAsNobody) {
  ASSERT_TRUE(Mount(SealDefaultLower(), {}).ok());
  ASSERT_EQ(mkdir(P("suite").c_str(), 0755), 0);
  ASSERT_EQ(chown(P("suite").c_str(), kNobody, kNogroup), 0);
  const std::string dir = P("suite");
  auto failures = RunAs(kNobody, kNogroup, [&] { return PosixSuite(dir); });
  EXPECT_TRUE(failures.empty()) << Join(failures);
  struct stat st = Lstat(P("suite/f"));
  EXPECT_EQ(st.st_uid, kNobody);  // files belong to their creator
  EXPECT_EQ(st.st_gid, kNogroup);
}

TEST_F(UpperTest, PermissionsAreEnforcedForOtherUsers) {
  ASSERT_TRUE(Mount(SealDefaultLower(), {}).ok());
  ASSERT_EQ(WriteFile(P("secret"), "top"), 0);
  ASSERT_EQ(chmod(P("secret").c_str(), 0600), 0);
  ASSERT_EQ(mkdir(P("rootdir").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("tmp").c_str(), 01777), 0);
  ASSERT_EQ(chmod(P("tmp").c_str(), 01777), 0);
  ASSERT_EQ(WriteFile(P("tmp/roots"), "r"), 0);
  const std::string m = mnt_;
  auto failures = RunAs(kNobody, kNogroup, [&] {
    Checks c;
    SUITE_EQ(Err(open((m + "/secret").c_str(), O_RDONLY)), EACCES);
    SUITE_EQ(WriteFile(m + "/rootdir/x", "x"), EACCES);
    SUITE_EQ(Err(mkdir((m + "/rootdir/d").c_str(), 0755)), EACCES);
    SUITE_EQ(Err(chmod((m + "/secret").c_str(), 0777)), EPERM);
    SUITE_EQ(Err(chown((m + "/secret").c_str(), kNobody, kNogroup)), EPERM);
    const timespec times[2] = {{1, 0}, {1, 0}};
    SUITE_EQ(Err(utimensat(AT_FDCWD, (m + "/secret").c_str(), times, 0)), EPERM);
    SUITE_EQ(WriteFile(m + "/etc/passwd", "evil", O_WRONLY | O_APPEND), EACCES);  // a lower file
    SUITE_EQ(Err(unlink((m + "/etc/passwd").c_str())), EACCES);
    SUITE_EQ(Err(unlink((m + "/tmp/roots").c_str())), EPERM);  // sticky directory
    SUITE_EQ(WriteFile(m + "/tmp/mine", "mine"), 0);
    SUITE_EQ(Err(chown((m + "/tmp/mine").c_str(), 0, 0)), EPERM);
    SUITE_EQ(Err(setxattr((m + "/secret").c_str(), "user.x", "1", 1, 0)), EACCES);
    return c.take();
  });
  EXPECT_TRUE(failures.empty()) << Join(failures);
  EXPECT_EQ(ReadFile(P("etc/passwd")), "root:x:0:0\n");
}

TEST_F(UpperTest, RootOnlyOperations) {
  ASSERT_TRUE(Mount(SealDefaultLower(), {}).ok());
  ASSERT_EQ(WriteFile(P("owned"), "o"), 0);
  ASSERT_EQ(chown(P("owned").c_str(), 1234, 5678), 0);
  EXPECT_EQ(Lstat(P("owned")).st_uid, 1234u);
  EXPECT_EQ(Lstat(P("owned")).st_gid, 5678u);
  ASSERT_EQ(mknod(P("null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  EXPECT_TRUE(S_ISCHR(Lstat(P("null")).st_mode));
  EXPECT_EQ(Lstat(P("null")).st_rdev, makedev(1, 3));
  // A set-group-ID directory hands its group (and the bit, to directories) down.
  ASSERT_EQ(mkdir(P("sgid").c_str(), 0755), 0);
  ASSERT_EQ(chown(P("sgid").c_str(), 0, 4321), 0);
  ASSERT_EQ(chmod(P("sgid").c_str(), 02775), 0);
  ASSERT_EQ(mkdir(P("sgid/sub").c_str(), 0755), 0);
  EXPECT_EQ(Lstat(P("sgid/sub")).st_gid, 4321u);
  EXPECT_TRUE(Lstat(P("sgid/sub")).st_mode & S_ISGID);
  // Writing as another user clears set-user-ID.
  ASSERT_EQ(WriteFile(P("tmpfile"), "x"), 0);
  ASSERT_EQ(chmod(P("tmpfile").c_str(), 04777), 0);
  const std::string f = P("tmpfile");
  auto failures = RunAs(kNobody, kNogroup, [&] {
    Checks c;
    SUITE_EQ(WriteFile(f, "y", O_WRONLY | O_APPEND), 0);
    return c.take();
  });
  EXPECT_TRUE(failures.empty()) << Join(failures);
  EXPECT_FALSE(Lstat(P("tmpfile")).st_mode & S_ISUID);
}

}  // namespace
}  // namespace sealroot::fusefs::testing
