// EventPublisher: forwards task events to containerd in order, over ttrpc to
// containerd.services.events.ttrpc.v1.Events/Forward at $TTRPC_ADDRESS. Publish never blocks:
// one thread sends the queue, reconnecting when containerd restarts (an event that cannot be
// delivered within a few seconds is logged and dropped, as containerd's own shims do).
//
// Thread-safety: Publish may be called from any thread.
#pragma once

#include <google/protobuf/message.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "base/thread_annotations.h"

namespace sealroot::shim {

class EventPublisher {
 public:
  // `ttrpc_address`: containerd's ttrpc socket path (empty: events are only logged).
  EventPublisher(std::string ttrpc_address, std::string ns);
  ~EventPublisher();  // sends what is queued, then stops
  EventPublisher(const EventPublisher&) = delete;
  EventPublisher& operator=(const EventPublisher&) = delete;

  // `topic` e.g. "/tasks/exit"; the event's Any type URL is its full protobuf name.
  void Publish(std::string topic, const google::protobuf::Message& event) SR_EXCLUDES(mu_);

 private:
  struct Item {
    std::string topic;
    std::string bytes;  // a serialized ForwardRequest
  };
  void Loop() SR_EXCLUDES(mu_);

  const std::string address_;
  const std::string namespace_;
  Mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Item> queue_ SR_GUARDED_BY(mu_);
  bool stopping_ SR_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sealroot::shim
