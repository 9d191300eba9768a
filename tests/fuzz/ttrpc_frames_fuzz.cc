// The ttrpc frame decoder, from both ends (agent/server/ttrpc.h):
//  - as a server: the input is written to a live TtrpcService connection as a client's byte
//    stream (frames with any length, stream id, type and body), then the write side is shut.
//    Every frame the server sends back must be a well-formed response frame whose body parses.
//  - as a client: the input is what a server answers to one Client::Call; the call returns a
//    status or a payload, and never reads past a frame's declared length.
// The service is started for each input (on a unix socket in a temporary directory made once)
// and stopped before the input ends: its threads may still be writing late replies after the
// client saw the connection end, and libFuzzer's per-input leak check would count their memory.
#include <google/protobuf/stubs/logging.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "base/fd.h"
#include "rpc/handler.h"
#include "rpc/server.h"
#include "rpc/ttrpc.h"
#include "tests/fuzz/fuzz_check.h"
#include "ttrpc.pb.h"

namespace {

using namespace sealroot;
using rpc::ListenAddress;
using rpc::RpcHandler;
using rpc::RpcReply;
using rpc::TtrpcService;
namespace wire = sealroot::rpc::ttrpc;

class EchoHandler final : public RpcHandler {
 public:
  RpcReply Call(std::string_view service, std::string_view method, std::string_view payload) const override {
    if (service == "fuzz.Fail") return {InvalidArgument("asked to fail: " + std::string(method)), {}};
    return {OkStatus(), std::string(payload)};
  }
  bool IsBlocking(std::string_view, std::string_view) const override { return false; }
};

struct Fixture {
  Fixture() {
    char dir_template[] = "/tmp/sealroot-ttrpc-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(dir_template) != nullptr);
    dir = dir_template;
    server_address.path = dir + "/server.sock";
    client_address.path = dir + "/client.sock";
    // A listening socket that plays the server for Client::Call.
    listener = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    client_address.path.copy(sun.sun_path, sizeof(sun.sun_path) - 1);
    FUZZ_CHECK(bind(listener.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0);
    FUZZ_CHECK(listen(listener.get(), 4) == 0);
  }
  ~Fixture() {
    unlink(server_address.path.c_str());
    unlink(client_address.path.c_str());
    rmdir(dir.c_str());
  }
  std::string dir;
  EchoHandler handler;
  ListenAddress server_address;
  ListenAddress client_address;
  UniqueFd listener;
};

Fixture& GetFixture() {
  static Fixture fixture;  // removes its directory at exit
  return fixture;
}

bool WriteAll(int fd, std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // the peer closed: a protocol error ended the connection
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

std::string ReadToEof(int fd) {
  std::string out;
  char buffer[16384];
  while (true) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

void AsServer(Fixture& f, std::span<const std::uint8_t> input) {
  auto service = TtrpcService::Start(f.server_address, f.handler);
  FUZZ_CHECK(service.ok());
  auto fd = wire::Dial(f.server_address);
  FUZZ_CHECK(fd.ok());
  // A client that stops reading could make the server's replies block; the input is small
  // (libFuzzer's -max_len) and replies echo at most its size, so the socket buffers hold both.
  (void)WriteAll(fd->get(), input);
  shutdown(fd->get(), SHUT_WR);
  const std::string replies = ReadToEof(fd->get());
  // Every complete frame is a response whose body parses. The last one may be cut short: once
  // the client half-closes, the server shuts the connection while late replies may be writing.
  std::size_t pos = 0;
  while (replies.size() - pos >= wire::kHeaderSize) {
    const auto* head = reinterpret_cast<const std::uint8_t*>(replies.data() + pos);
    wire::FrameHeader header =
        wire::DecodeHeader(std::span<const std::uint8_t, wire::kHeaderSize>(head, wire::kHeaderSize));
    FUZZ_CHECK(header.type == wire::kTypeResponse);
    pos += wire::kHeaderSize;
    if (replies.size() - pos < header.length) break;
    ::ttrpc::Response response;
    FUZZ_CHECK(response.ParseFromArray(replies.data() + pos, static_cast<int>(header.length)));
    pos += header.length;
  }
}

void AsClient(Fixture& f, std::span<const std::uint8_t> input) {
  auto client = wire::Client::Connect(f.client_address);
  FUZZ_CHECK(client.ok());
  UniqueFd peer(accept4(f.listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  FUZZ_CHECK(peer);
  FUZZ_CHECK(WriteAll(peer.get(), input));
  shutdown(peer.get(), SHUT_WR);
  auto reply = (*client)->Call("fuzz.Service", "Method", "payload", std::chrono::seconds(5));
  if (reply.ok()) {
    // Only a complete response frame for stream 1 can have produced a payload.
    FUZZ_CHECK(input.size() >= wire::kHeaderSize);
    wire::FrameHeader header = wire::DecodeHeader(input.first<wire::kHeaderSize>());
    FUZZ_CHECK(header.type == wire::kTypeResponse && header.stream_id == 1);
    FUZZ_CHECK(input.size() - wire::kHeaderSize >= header.length);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Malformed requests are the point; protobuf's complaints about them are noise.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Fixture& f = GetFixture();
  std::span<const std::uint8_t> input(data, size);
  if (input.size() >= wire::kHeaderSize) {
    // The header codec round-trips every 10 bytes.
    wire::FrameHeader header = wire::DecodeHeader(input.first<wire::kHeaderSize>());
    auto encoded = wire::EncodeHeader(header);
    FUZZ_CHECK(std::equal(encoded.begin(), encoded.end(), input.begin()));
  }
  AsServer(f, input);
  AsClient(f, input);
  return 0;
}
