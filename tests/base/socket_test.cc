// base/socket.h: the one listen/connect policy every server and client uses.
#include "base/socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "base/file.h"
#include "tests/support/process.h"

namespace sealroot {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

// A socket file whose server is gone (bound, never listened on, closed).
void LeaveStaleSocket(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
}

TEST(SocketTest, UnixSocketIsCreated0600InAPrivateParent) {
  TempDir dir;
  const std::string path = dir / "run/sub/agent.sock";
  const mode_t old = ::umask(0);  // the policy must not depend on the caller's umask
  Result<UniqueFd> listener = ListenUnix(path);
  ::umask(old);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  EXPECT_TRUE(S_ISSOCK(ModeOf(path)));
  EXPECT_EQ(ModeOf(path) & 07777, 0600u);
  EXPECT_EQ(ModeOf(dir / "run/sub") & 07777, 0700u);
  Result<UniqueFd> client = ConnectUnix(path);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
}

TEST(SocketTest, ALiveServersSocketIsNotTakenOver) {
  TempDir dir;
  const std::string path = dir / "s.sock";
  Result<UniqueFd> first = ListenUnix(path);
  ASSERT_TRUE(first.ok());
  Result<UniqueFd> second = ListenUnix(path);
  EXPECT_EQ(second.status().code(), Code::kAlreadyExists) << second.status().ToString();
  EXPECT_TRUE(ConnectUnix(path).ok()) << "the first server lost its socket";
}

TEST(SocketTest, AStaleSocketIsReplaced) {
  TempDir dir;
  const std::string path = dir / "s.sock";
  LeaveStaleSocket(path);
  Result<UniqueFd> listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  EXPECT_TRUE(ConnectUnix(path).ok());
}

TEST(SocketTest, AnythingButASocketAtThePathIsLeftAlone) {
  TempDir dir;
  const std::string path = dir / "s.sock";
  ASSERT_TRUE(WriteFileAtomic(path, std::string_view("data")).ok());
  Result<UniqueFd> listener = ListenUnix(path);
  EXPECT_EQ(listener.status().code(), Code::kAlreadyExists) << listener.status().ToString();
  EXPECT_EQ(*ReadFile(path), "data");
}

TEST(SocketTest, ConnectWaitsForAServerUntilTheDeadline) {
  TempDir dir;
  const std::string path = dir / "late.sock";
  EXPECT_EQ(ConnectUnix(path).status().code(), Code::kNotFound);  // one attempt by default
  EXPECT_FALSE(ConnectUnix(path, std::chrono::steady_clock::now() + 20ms).ok());
  std::thread server([&] {
    std::this_thread::sleep_for(50ms);
    Result<UniqueFd> listener = ListenUnix(path);
    ASSERT_TRUE(listener.ok());
    UniqueFd conn(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(conn.valid());
  });
  Result<UniqueFd> client = ConnectUnix(path, std::chrono::steady_clock::now() + 60s);
  server.join();
  EXPECT_TRUE(client.ok()) << client.status().ToString();
}

TEST(SocketTest, AbstractSocketsHaveNoFile) {
  const std::string name = "@sealroot-test-" + std::to_string(::getpid());
  Result<UniqueFd> listener = ListenUnix(name);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  EXPECT_EQ(ListenUnix(name).status().code(), Code::kAlreadyExists);  // EADDRINUSE
  EXPECT_TRUE(ConnectUnix(name).ok());
}

TEST(SocketTest, TcpListensOnAFreePortAndConnectsWithADeadline) {
  Result<UniqueFd> listener = ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  Result<std::uint16_t> port = LocalPort(listener->get());
  ASSERT_TRUE(port.ok());
  EXPECT_NE(*port, 0);
  Result<UniqueFd> client = ConnectTcp("127.0.0.1", *port, std::chrono::steady_clock::now() + 10s);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ(ListenTcp("not-an-address", 0).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace sealroot
