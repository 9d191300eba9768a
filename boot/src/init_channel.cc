#include "boot/src/init_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/file.h"

namespace sealroot::boot {
namespace {

using nlohmann::json;

// The spec is at most 1 MiB; the rest of a start message is small.
constexpr std::uint32_t kMaxMessage = 4u << 20;
constexpr std::size_t kMaxFds = 3;

Status ReadExactly(int fd, std::uint8_t* out, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::read(fd, out, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading the init channel", errno);
    if (n == 0) return DataLoss("init channel: message cut short");
    out += n;
    size -= static_cast<std::size_t>(n);
  }
  return OkStatus();
}

}  // namespace

Status SendInitMessage(int socket, const json& body, std::span<const int> fds) {
  const std::string text = body.dump();
  const auto size = static_cast<std::uint32_t>(text.size());
  std::uint8_t header[4] = {static_cast<std::uint8_t>(size >> 24), static_cast<std::uint8_t>(size >> 16),
                            static_cast<std::uint8_t>(size >> 8), static_cast<std::uint8_t>(size)};
  iovec iov{header, sizeof header};
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    if (fds.size() > kMaxFds) return InvalidArgument("init channel: too many descriptors");
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t sent;
  do {
    sent = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(sizeof header)) return ErrnoStatus("writing the init channel", errno);
  return WriteAll(socket, AsBytes(text));
}

Result<InitMessage> ReceiveInitMessage(int socket) {
  std::uint8_t header[4];
  iovec iov{header, sizeof header};
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return Unavailable("init channel closed");
  if (n < 0) return ErrnoStatus("reading the init channel", errno);
  InitMessage out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.fds.emplace_back(fd);
    }
  }
  if (n != sizeof header) SR_RETURN_IF_ERROR(ReadExactly(socket, header + n, sizeof header - n));
  std::uint32_t size = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                       (std::uint32_t{header[2]} << 8) | header[3];
  if (size > kMaxMessage) return ResourceExhausted("init channel: message too large");
  std::string text(size, '\0');
  SR_RETURN_IF_ERROR(ReadExactly(socket, reinterpret_cast<std::uint8_t*>(text.data()), size));
  out.body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!out.body.is_object()) return InvalidArgument("init channel: malformed message");
  return out;
}

json EncodeProcess(const ProcessSpec& p) {
  json out = {{"args", p.args},
              {"env", p.env},
              {"cwd", p.cwd},
              {"user", p.user.user},
              {"group", p.user.group},
              {"additionalGids", p.user.additional_gids},
              {"memberships", p.user.add_group_memberships},
              {"noNewPrivileges", p.no_new_privileges}};
  json rlimits = json::array();
  for (const Rlimit& r : p.rlimits) rlimits.push_back({r.resource, r.soft, r.hard});
  out["rlimits"] = std::move(rlimits);
  if (p.capabilities) {
    const Capabilities& c = *p.capabilities;
    out["capabilities"] = {{"bounding", c.bounding},
                           {"effective", c.effective},
                           {"inheritable", c.inheritable},
                           {"permitted", c.permitted},
                           {"ambient", c.ambient}};
  }
  if (p.umask) out["umask"] = *p.umask;
  if (p.oom_score_adj) out["oomScoreAdj"] = *p.oom_score_adj;
  if (p.terminal) out["terminal"] = {p.console_height, p.console_width};
  return out;
}

Result<ProcessSpec> DecodeProcess(const json& in) {
  // Written by the boot itself a moment ago: a malformed one is a bug, reported, not trusted.
  try {
    ProcessSpec p;
    in.at("args").get_to(p.args);
    in.at("env").get_to(p.env);
    in.at("cwd").get_to(p.cwd);
    in.at("user").get_to(p.user.user);
    in.at("group").get_to(p.user.group);
    in.at("additionalGids").get_to(p.user.additional_gids);
    in.at("memberships").get_to(p.user.add_group_memberships);
    in.at("noNewPrivileges").get_to(p.no_new_privileges);
    for (const json& r : in.at("rlimits")) {
      p.rlimits.push_back({r.at(0).get<int>(), r.at(1).get<std::uint64_t>(), r.at(2).get<std::uint64_t>()});
    }
    if (auto it = in.find("capabilities"); it != in.end()) {
      Capabilities c;
      it->at("bounding").get_to(c.bounding);
      it->at("effective").get_to(c.effective);
      it->at("inheritable").get_to(c.inheritable);
      it->at("permitted").get_to(c.permitted);
      it->at("ambient").get_to(c.ambient);
      p.capabilities = std::move(c);
    }
    if (auto it = in.find("umask"); it != in.end()) p.umask = it->get<mode_t>();
    if (auto it = in.find("oomScoreAdj"); it != in.end()) p.oom_score_adj = it->get<int>();
    if (auto it = in.find("terminal"); it != in.end()) {
      p.terminal = true;
      p.console_height = it->at(0).get<unsigned>();
      p.console_width = it->at(1).get<unsigned>();
    }
    if (p.args.empty()) return InvalidArgument("init channel: process without args");
    return p;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("init channel: malformed process: ") + e.what());
  }
}

}  // namespace sealroot::boot
