#include "tool/src/progress_display.h"

#include <string>

namespace sealroot::tool {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRedraw = std::chrono::milliseconds(100);

double Mb(std::uint64_t bytes) {
  return static_cast<double>(bytes) / 1e6;
}

}  // namespace

ProgressDisplay::ProgressDisplay(bool live, bool summary)
    : live_(live), summary_(summary), start_(Clock::now()) {}

ProgressDisplay::~ProgressDisplay() {
  MutexLock lock(mu_);
  Clear();
}

image::ProgressCallback ProgressDisplay::Callback() {
  if (!live_ && !summary_) return nullptr;
  return [this](const image::ProgressEvent& e) { Update(e); };
}

void ProgressDisplay::Update(const image::ProgressEvent& e) {
  using Phase = image::ProgressEvent::Phase;
  MutexLock lock(mu_);
  if (e.layer_count == 0) return;  // resolving, finished
  if (layers_.size() < e.layer_count) layers_.resize(e.layer_count);
  Layer& l = layers_[e.layer];
  l.total = e.total;
  bool changed = true;
  switch (e.phase) {
    case Phase::kLayerBytes: {
      // A fetch retried from the start reports from 0 again: show (and count) only new bytes.
      if (e.bytes > l.bytes) {
        if (received_ == 0) first_byte_ = Clock::now();
        received_ += e.bytes - l.bytes;
        l.bytes = e.bytes;
        last_byte_ = Clock::now();
      }
      changed = false;
      if (l.state == State::kWaiting || l.state == State::kFetching) {
        State next = l.bytes >= l.total ? State::kFetched : State::kFetching;
        changed = next != l.state;
        l.state = next;
      }
      break;
    }
    case Phase::kLayerCached:
      l.state = State::kCached;
      break;
    case Phase::kLayerSkipped:
      l.state = State::kSkipped;
      break;
    case Phase::kLayerDone:
      if (l.state != State::kCached) l.state = State::kDone;
      break;
    default:
      changed = false;
  }
  if (live_ && (changed || Clock::now() - last_draw_ >= kRedraw)) Draw();
}

void ProgressDisplay::Draw() {
  std::size_t done = 0;
  std::string active;
  char buf[96];
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    if (l.state == State::kDone || l.state == State::kSkipped || l.state == State::kCached) ++done;
    if (l.state == State::kFetching || l.state == State::kFetched) {
      std::snprintf(buf, sizeof buf, "  #%zu %.1f/%.1f MB", i + 1, Mb(l.bytes), Mb(l.total));
      active += buf;
    }
  }
  double secs = std::chrono::duration<double>(last_byte_ - first_byte_).count();
  std::string rate;
  if (received_ > 0 && secs > 0.05) {
    std::snprintf(buf, sizeof buf, "  %.1f MB/s", Mb(received_) / secs);
    rate = buf;
  }
  std::fprintf(stderr, "\r\033[Klayers %zu/%zu done%s%s", done, layers_.size(), active.c_str(), rate.c_str());
  std::fflush(stderr);
  drawn_ = true;
  last_draw_ = Clock::now();
}

void ProgressDisplay::Clear() {
  if (drawn_) std::fputs("\r\033[K", stderr);
  drawn_ = false;
}

void ProgressDisplay::Finish(bool ok) {
  MutexLock lock(mu_);
  Clear();
  if (!ok || !summary_) return;
  std::size_t cached = 0, kept = 0;
  for (const Layer& l : layers_) {
    cached += l.state == State::kCached;
    kept += l.state == State::kSkipped;
  }
  std::string extra;
  if (cached > 0) extra += std::to_string(cached) + " from the blob cache";
  if (kept > 0) extra += (extra.empty() ? "" : ", ") + std::to_string(kept) + " already there";
  double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  double link = std::chrono::duration<double>(last_byte_ - first_byte_).count();
  char rate[48] = "";
  if (received_ > 0 && link > 0.05) std::snprintf(rate, sizeof rate, " (%.1f MB/s)", Mb(received_) / link);
  std::fprintf(stderr, "sealroot: %zu layer%s%s, %.1f MB fetched in %.1f s%s\n", layers_.size(),
               layers_.size() == 1 ? "" : "s", extra.empty() ? "" : (" (" + extra + ")").c_str(),
               Mb(received_), secs, rate);
}

}  // namespace sealroot::tool
