// base/mounts.h: mountinfo lines with and without optional fields, escaped paths, junk lines.
#include "base/mounts.h"

#include <gtest/gtest.h>

namespace sealroot {
namespace {

TEST(MountInfoTest, ParsesFieldsAroundTheOptionalOnesAndUnescapesPaths) {
  const std::string text =
      "22 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw\n"
      "45 26 0:40 / /var/tmp/mnt\\040with\\040space\\134x ro,nosuid - fuse.sealfs sealfs:af11 "
      "ro,max_read=262144\n"
      "31 22 0:27 /user.slice /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "not a mountinfo line\n"
      "\n";
  std::vector<MountInfo> mounts = ParseMountInfo(text);
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0].device, "254:0");
  EXPECT_EQ(mounts[0].mount_point, "/");
  EXPECT_EQ(mounts[0].fs_type, "ext4");
  EXPECT_EQ(mounts[0].super_options, "rw");
  EXPECT_EQ(mounts[1].mount_point, "/var/tmp/mnt with space\\x");
  EXPECT_EQ(mounts[1].fs_type, "fuse.sealfs");
  EXPECT_EQ(mounts[1].device, "0:40");
  EXPECT_EQ(mounts[2].root, "/user.slice");
  EXPECT_EQ(mounts[2].super_options, "rw,memory");
}

TEST(MountInfoTest, ReadsThisProcesssTable) {
  auto mounts = ReadMountInfo();
  ASSERT_TRUE(mounts.ok()) << mounts.status().ToString();
  bool root = false;
  for (const MountInfo& m : *mounts) root |= m.mount_point == "/";
  EXPECT_TRUE(root);
}

}  // namespace
}  // namespace sealroot
