// base/secret.h: constant-time equality, wiping, explicit copies, random secrets.
#include "base/secret.h"

#include <gtest/gtest.h>

#include <vector>

namespace sealroot {
namespace {

TEST(SecretTest, ConstantTimeEqualComparesContentAndSize) {
  std::vector<std::uint8_t> a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 2};
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(a, c));
  EXPECT_FALSE(ConstantTimeEqual(a, d));
  EXPECT_TRUE(ConstantTimeEqual({}, {}));
}

TEST(SecretTest, SecureWipeZeroes) {
  std::vector<std::uint8_t> buffer = {9, 9, 9, 9};
  SecureWipe(buffer);
  EXPECT_EQ(buffer, (std::vector<std::uint8_t>{0, 0, 0, 0}));
}

TEST(SecretTest, CloneIsEqualAndIndependent) {
  SecretBytes a(std::vector<std::uint8_t>{5, 6, 7});
  SecretBytes b = a.Clone();
  EXPECT_TRUE(a == b);
  b.data()[0] = 0;
  EXPECT_FALSE(a == b);
  EXPECT_EQ(a.data()[0], 5);
}

TEST(SecretTest, MoveAssignmentTakesTheBytesAndEmptiesTheSource) {
  SecretBytes a(std::vector<std::uint8_t>{1, 2, 3});
  SecretBytes b(std::vector<std::uint8_t>{4});
  b = std::move(a);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.data()[2], 3);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
}

TEST(SecretTest, RandomSecretsHaveTheSizeAndDiffer) {
  SecretBytes a = SecretBytes::Random(32), b = SecretBytes::Random(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(SecretBytes::Random(0).empty());
}

}  // namespace
}  // namespace sealroot
