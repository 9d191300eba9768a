#include "shim/events.h"

#include <google/protobuf/util/time_util.h>

#include "base/log.h"
#include "containerd_events_service.pb.h"
#include "rpc/ttrpc.h"

namespace sealroot::shim {
namespace {

constexpr int kAttempts = 25;
constexpr auto kRetryDelay = std::chrono::milliseconds(200);

}  // namespace

EventPublisher::EventPublisher(std::string ttrpc_address, std::string ns)
    : address_(std::move(ttrpc_address)), namespace_(std::move(ns)) {
  thread_ = std::thread([this] { Loop(); });
}

EventPublisher::~EventPublisher() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void EventPublisher::Publish(std::string topic, const google::protobuf::Message& event) {
  containerd::services::events::ttrpc::v1::ForwardRequest request;
  auto* envelope = request.mutable_envelope();
  *envelope->mutable_timestamp() = google::protobuf::util::TimeUtil::GetCurrentTime();
  envelope->set_namespace_(namespace_);
  envelope->set_topic(topic);
  // containerd resolves type URLs by the bare protobuf name (its typeurl registry).
  envelope->mutable_event()->set_type_url(event.GetDescriptor()->full_name());
  envelope->mutable_event()->set_value(event.SerializeAsString());
  SR_LOG(kDebug) << "event " << topic << " " << event.ShortDebugString();
  {
    MutexLock lock(mu_);
    queue_.push_back({std::move(topic), request.SerializeAsString()});
  }
  cv_.notify_all();
}

void EventPublisher::Loop() {
  std::unique_ptr<rpc::ttrpc::Client> client;
  while (true) {
    Item item;
    {
      MutexLock lock(mu_);
      while (queue_.empty() && !stopping_) cv_.wait(mu_);
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    if (address_.empty()) continue;
    Status sent = Unavailable("not sent");
    for (int attempt = 0; attempt < kAttempts && !sent.ok(); ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(kRetryDelay);
      if (!client) {
        rpc::ListenAddress address{.kind = rpc::ListenAddress::Kind::kUnix, .path = address_};
        Result<std::unique_ptr<rpc::ttrpc::Client>> connected = rpc::ttrpc::Client::Connect(address);
        if (!connected.ok()) {
          sent = connected.status();
          continue;
        }
        client = std::move(*connected);
      }
      sent = client
                 ->Call("containerd.services.events.ttrpc.v1.Events", "Forward", item.bytes,
                        std::chrono::seconds(10))
                 .status();
      // A broken connection (containerd restarted) is replaced; a refusal is final.
      if (!sent.ok() && (sent.code() == Code::kUnavailable || sent.code() == Code::kOutOfRange ||
                         sent.code() == Code::kDeadlineExceeded || sent.code() == Code::kInternal ||
                         sent.code() == Code::kUnknown)) {
        client.reset();
      } else if (!sent.ok()) {
        break;
      }
    }
    if (!sent.ok()) {
      SR_LOG(kWarning) << "event " << item.topic << " not delivered: " << sent.message();
    }
  }
}

}  // namespace sealroot::shim
