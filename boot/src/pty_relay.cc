#include "boot/src/pty_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <memory>

#include "base/file.h"

namespace sealroot::boot {
namespace {

// One read of `from` written whole to `to`; false at end of stream or on an error.
bool CopyOnce(int from, int to) {
  std::array<char, 16 * 1024> buffer;
  ssize_t n = ::read(from, buffer.data(), buffer.size());
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  return WriteAll(to, std::span(reinterpret_cast<const std::uint8_t*>(buffer.data()), n)).ok();
}

}  // namespace

Result<std::unique_ptr<PtyRelay>> PtyRelay::Start(UniqueFd master, int in, int out) {
  auto relay = std::unique_ptr<PtyRelay>(new PtyRelay());
  relay->master_ = std::move(master);
  relay->in_.Reset(::fcntl(in, F_DUPFD_CLOEXEC, 3));
  relay->out_.Reset(::fcntl(out, F_DUPFD_CLOEXEC, 3));
  int stop[2];
  if (!relay->in_ || !relay->out_ || ::pipe2(stop, O_CLOEXEC) != 0) return ErrnoStatus("pty relay", errno);
  relay->stop_read_.Reset(stop[0]);
  relay->stop_write_.Reset(stop[1]);
  relay->in_thread_ = std::thread([r = relay.get()] { r->CopyIn(); });
  relay->out_thread_ = std::thread([r = relay.get()] { r->CopyOut(); });
  return relay;
}

PtyRelay::~PtyRelay() {
  if (stop_write_) (void)::write(stop_write_.get(), "x", 1);
  if (in_thread_.joinable()) in_thread_.join();
  if (out_thread_.joinable()) out_thread_.join();
}

Status PtyRelay::Resize(unsigned height, unsigned width) {
  winsize size{static_cast<unsigned short>(height), static_cast<unsigned short>(width), 0, 0};
  if (::ioctl(master_.get(), TIOCSWINSZ, &size) != 0) return ErrnoStatus("resizing the terminal", errno);
  return OkStatus();
}

void PtyRelay::CopyIn() {
  while (true) {
    pollfd fds[2] = {{in_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    if (!CopyOnce(in_.get(), master_.get())) {
      // Input closed: the terminal's end-of-file character, as typing ^D would.
      termios modes{};
      if (::tcgetattr(master_.get(), &modes) == 0) (void)::write(master_.get(), &modes.c_cc[VEOF], 1);
      return;
    }
  }
}

void PtyRelay::CopyOut() {
  while (true) {
    pollfd fds[2] = {{master_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0 && !CopyOnce(master_.get(), out_.get())) return;  // EIO: no slave left
    if (fds[1].revents == 0) continue;
    // Stopping once the process ended: what it wrote is still buffered in the pty.
    ::fcntl(master_.get(), F_SETFL, ::fcntl(master_.get(), F_GETFL) | O_NONBLOCK);
    std::array<char, 16 * 1024> buffer;
    ssize_t n;
    while ((n = ::read(master_.get(), buffer.data(), buffer.size())) > 0) {
      if (!WriteAll(out_.get(), std::span(reinterpret_cast<const std::uint8_t*>(buffer.data()), n)).ok())
        return;
    }
    return;
  }
}

}  // namespace sealroot::boot
