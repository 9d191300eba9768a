// Round-trip latency of grpc.Health/Check over ttrpc (our client) and gRPC (grpc++ generic
// stub), one call at a time on one connection each, after a warm-up. Prints one JSON line:
//   {"ttrpc": {"median_us": .., "p99_us": ..}, "grpc": {...}, "calls": N}
//
//   agent_health_latency TTRPC_ADDR GRPC_SOCKET [CALLS]
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "health.pb.h"
#include "rpc/ttrpc.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double median_us = 0;
  double p99_us = 0;
};

Stats Summarize(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2], samples[std::min(samples.size() - 1, samples.size() * 99 / 100)]};
}

template <typename Call>
Stats Measure(int calls, Call&& call) {
  for (int i = 0; i < 100; ++i) call();  // warm-up
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    auto start = Clock::now();
    call();
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return Summarize(std::move(samples));
}

void Fail(const std::string& what) {
  std::cerr << "agent_health_latency: " << what << "\n";
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) Fail("usage: agent_health_latency TTRPC_ADDR GRPC_SOCKET [CALLS]");
  const int calls = argc > 3 ? std::stoi(argv[3]) : 5000;
  const std::string request = ::grpc::CheckRequest().SerializeAsString();

  auto address = sealroot::rpc::ListenAddress::Parse(argv[1]);
  if (!address.ok()) Fail(address.status().ToString());
  auto ttrpc = sealroot::rpc::ttrpc::Client::Connect(*address);
  if (!ttrpc.ok()) Fail(ttrpc.status().ToString());
  Stats t = Measure(calls, [&] {
    auto reply = (*ttrpc)->Call("grpc.Health", "Check", request);
    if (!reply.ok()) Fail(reply.status().ToString());
  });

  auto channel = ::grpc::CreateChannel(std::string("unix:") + argv[2], ::grpc::InsecureChannelCredentials());
  ::grpc::GenericStub stub(channel);
  ::grpc::Slice slice(request);
  const ::grpc::ByteBuffer request_buffer(&slice, 1);
  Stats g = Measure(calls, [&] {
    ::grpc::ClientContext context;
    ::grpc::ByteBuffer response;
    std::promise<::grpc::Status> done;
    stub.UnaryCall(&context, "/grpc.Health/Check", ::grpc::StubOptions(), &request_buffer, &response,
                   [&done](::grpc::Status status) { done.set_value(std::move(status)); });
    ::grpc::Status status = done.get_future().get();
    if (!status.ok()) Fail("gRPC: " + status.error_message());
  });

  std::cout << "{\"calls\": " << calls << ", \"ttrpc\": {\"median_us\": " << t.median_us
            << ", \"p99_us\": " << t.p99_us << "}, \"grpc\": {\"median_us\": " << g.median_us
            << ", \"p99_us\": " << g.p99_us << "}}\n";
  return 0;
}
