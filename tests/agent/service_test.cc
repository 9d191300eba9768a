// AgentService in-process, with a fake puller and runtime: records, pull joining, validation,
// removal, persistence across restarts, and the attacks named in the test names.
#include "agent/server/service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "base/file.h"
#include "tests/agent/fakes.h"
#include "tests/support/process.h"

namespace sealroot::agent {
namespace {

using sealroot::testing::TempDir;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = dir_ / "state";
    config_.store_dir = dir_ / "store";
    seal_key_ = SecretBytes::Random(32);
    Restart();
  }

  void Restart(bool with_runtime = false, std::unique_ptr<ContainerRuntime> runtime = nullptr) {
    service_.reset();
    ServiceDeps deps;
    auto puller = std::make_unique<testing::FakePuller>();
    puller_ = puller.get();
    deps.puller = std::move(puller);
    deps.runtime = with_runtime ? std::make_unique<testing::EchoRuntime>() : MakeUnavailableRuntime();
    if (runtime) deps.runtime = std::move(runtime);
    deps.sealer = *MakeKeySealer(seal_key_.Clone());
    auto service = AgentService::Create(config_, std::move(deps));
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(*service);
  }

  Result<::grpc::PullImageResponse> Pull(const std::string& image, const std::string& id) {
    ::grpc::PullImageRequest request;
    request.set_image(image);
    request.set_container_id(id);
    return service_->PullImage(request);
  }

  static ::grpc::CreateContainerRequest CreateRequest(const std::string& id) {
    ::grpc::CreateContainerRequest request;
    request.set_container_id(id);
    request.mutable_oci()->mutable_process()->add_args("/bin/sh");
    request.mutable_oci()->mutable_process()->add_env("PATH=/bin");
    request.mutable_oci()->mutable_process()->set_cwd("/");
    return request;
  }

  Status Create(const std::string& id) {
    auto r = service_->CreateContainer(CreateRequest(id));
    return r.ok() ? OkStatus() : r.status();
  }

  int StoreCount() {
    auto listing = sealroot::testing::Shell("ls " + config_.store_dir + "/images | wc -l");
    return std::stoi(listing.out);
  }

  TempDir dir_;
  AgentConfig config_;
  SecretBytes seal_key_;
  testing::FakePuller* puller_ = nullptr;
  std::unique_ptr<AgentService> service_;
};

TEST_F(ServiceTest, HealthCheckServesAndVersionNamesTheAgent) {
  auto health = service_->Check({});
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status(), ::grpc::HealthCheckResponse::SERVING);
  auto version = service_->Version({});
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->agent_version(), SEALROOT_VERSION);
}

TEST_F(ServiceTest, ConcurrentPullsOfTwoImagesDownloadEachOnce) {
  puller_->Close();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      std::string image = i % 2 ? "registry/a:1" : "registry/b:1";
      if (Pull(image, "c" + std::to_string(i)).ok()) ++ok;
    });
  }
  // Both leaders are held inside Pull, and every request has resolved its image: the other six
  // are joining (or, if one is still between resolving and looking for the pull in flight, will
  // find the image recorded). Either way no image may be downloaded twice.
  ASSERT_TRUE(puller_->WaitRunning(2));
  ASSERT_TRUE(puller_->WaitResolved(8));
  puller_->Open();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(puller_->pulls("registry/a:1"), 1);
  EXPECT_EQ(puller_->pulls("registry/b:1"), 1);
  EXPECT_EQ(StoreCount(), 2);
}

TEST_F(ServiceTest, PullImageReturnsThePinnedReferenceAndPassesCredentials) {
  ::grpc::PullImageRequest request;
  request.set_image("registry/a:1");
  request.set_container_id("c1");
  request.set_source_creds("user:s3cret");
  auto response = service_->PullImage(request);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->image_ref(), "registry/a:1@sha256:" + std::string(64, 'a'));
  EXPECT_EQ(puller_->last_creds(), "user:s3cret");
}

TEST_F(ServiceTest, PullImageWithoutContainerIdDerivesOne) {
  ASSERT_TRUE(Pull("registry/a:1", "").ok());
  ASSERT_TRUE(Pull("registry/a:1", "").ok());  // the same derived id: idempotent
  EXPECT_EQ(puller_->pulls("registry/a:1"), 1);
}

TEST_F(ServiceTest, PullForAnExistingContainerWithAnotherImageIsRefused) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  auto again = Pull("registry/b:1", "c1");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
}

TEST_F(ServiceTest, FailedPullLeavesNoStoreAndIsRetried) {
  auto failed = Pull("registry/fail:1", "c1");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Code::kDataLoss);
  EXPECT_NE(failed.status().message().find("registry/fail:1"), std::string::npos);
  EXPECT_EQ(StoreCount(), 0);
  EXPECT_FALSE(Pull("registry/fail:1", "c1").ok());
  EXPECT_EQ(puller_->pulls("registry/fail:1"), 2);  // a failure is not cached
}

TEST_F(ServiceTest, UnsignedImageRefusedByPolicyIsPermissionDenied) {
  auto refused = Pull("registry/unsigned:1", "c1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
}

TEST_F(ServiceTest, CreateContainerForUnknownContainerFails) {
  Status s = Create("nobody");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  ::grpc::StartContainerRequest start;
  start.set_container_id("nobody");
  EXPECT_EQ(service_->StartContainer(start).status().code(), Code::kNotFound);
  ::grpc::RemoveContainerRequest remove;
  remove.set_container_id("nobody");
  EXPECT_EQ(service_->RemoveContainer(remove).status().code(), Code::kNotFound);
  ::grpc::WaitProcessRequest wait;
  wait.set_container_id("nobody");
  EXPECT_EQ(service_->WaitProcess(wait).status().code(), Code::kNotFound);
}

TEST_F(ServiceTest, DuplicateCreateContainerIsAlreadyExists) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(Create("c1").ok());
  EXPECT_EQ(Create("c1").code(), Code::kAlreadyExists);
}

TEST_F(ServiceTest, MalformedSpecIsInvalidArgument) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  auto no_spec = CreateRequest("c1");
  no_spec.clear_oci();
  EXPECT_EQ(service_->CreateContainer(no_spec).status().code(), Code::kInvalidArgument);
  auto no_process = CreateRequest("c1");
  no_process.mutable_oci()->clear_process();
  EXPECT_EQ(service_->CreateContainer(no_process).status().code(), Code::kInvalidArgument);
  auto relative_cwd = CreateRequest("c1");
  relative_cwd.mutable_oci()->mutable_process()->set_cwd("tmp");
  EXPECT_EQ(service_->CreateContainer(relative_cwd).status().code(), Code::kInvalidArgument);
  auto bad_env = CreateRequest("c1");
  bad_env.mutable_oci()->mutable_process()->add_env("=oops");
  EXPECT_EQ(service_->CreateContainer(bad_env).status().code(), Code::kInvalidArgument);
  auto bad_mount = CreateRequest("c1");
  bad_mount.mutable_oci()->add_mounts()->set_destination("relative");
  EXPECT_EQ(service_->CreateContainer(bad_mount).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Create("c1").ok());  // none of the above changed the record
}

TEST_F(ServiceTest, PathTraversalContainerIdIsRefused) {
  for (const char* id : {"../../etc", "a/b", "..", "x", "a\nb", "-leadingdash"}) {
    EXPECT_EQ(Pull("registry/a:1", id).status().code(), Code::kInvalidArgument) << id;
    EXPECT_EQ(Create(id).code(), Code::kInvalidArgument) << id;
  }
  EXPECT_EQ(Create("").code(), Code::kInvalidArgument);
  EXPECT_EQ(StoreCount(), 0);
}

TEST_F(ServiceTest, ImageRefWithControlCharactersIsRefused) {
  EXPECT_EQ(Pull("registry/a:1\nX-Injected: 1", "c1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Pull(std::string(5000, 'a'), "c1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Pull("", "c1").status().code(), Code::kInvalidArgument);
}

TEST_F(ServiceTest, ImageGuestPullStorageCreatesInOneCall) {
  auto request = CreateRequest("c1");
  auto* storage = request.add_storages();
  storage->set_driver("image_guest_pull");
  storage->set_source("registry/a:1");
  storage->add_driver_options("image_guest_pull={}");
  ASSERT_TRUE(service_->CreateContainer(request).ok());
  EXPECT_EQ(puller_->pulls("registry/a:1"), 1);
  EXPECT_EQ(service_->CreateContainer(request).status().code(), Code::kAlreadyExists);
}

TEST_F(ServiceTest, StartWithoutBootRuntimeSaysBootNotAvailable) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(Create("c1").ok());
  ::grpc::StartContainerRequest start;
  start.set_container_id("c1");
  auto started = service_->StartContainer(start);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(started.status().message().find("boot not available"), std::string::npos);
}

TEST_F(ServiceTest, ExecIsRefusedByDefaultPolicy) {
  Restart(/*with_runtime=*/true);
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(Create("c1").ok());
  ::grpc::StartContainerRequest start;
  start.set_container_id("c1");
  ASSERT_TRUE(service_->StartContainer(start).ok());
  ::grpc::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.set_exec_id("e1");
  exec.mutable_process()->add_args("/bin/sh");
  auto refused = service_->ExecProcess(exec);
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("process.args"), std::string::npos)
      << refused.status().ToString();
}

TEST_F(ServiceTest, HostChosenArgsAreRefusedNamingTheField) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ::grpc::CreateContainerRequest request = CreateRequest("c1");
  request.mutable_oci()->mutable_process()->clear_args();
  for (const char* arg : {"/bin/tar", "c", "/"}) request.mutable_oci()->mutable_process()->add_args(arg);
  auto refused = service_->CreateContainer(request);
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("process.args"), std::string::npos)
      << refused.status().ToString();
  // Refused means not created: the image's own command is still accepted for that id.
  EXPECT_TRUE(Create("c1").ok());
}

TEST_F(ServiceTest, OwnerPolicyAllowsOneExtraArgvAndListedExecs) {
  config_.workload = *ParseWorkloadPolicy(R"({"args": [["/bin/sh", "-c", "echo owner"]],
                                              "exec": [["cat", "/etc/motd"]]})");
  Restart(/*with_runtime=*/true);
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ::grpc::CreateContainerRequest request = CreateRequest("c1");
  request.mutable_oci()->mutable_process()->add_args("-c");
  request.mutable_oci()->mutable_process()->add_args("echo owner");
  ASSERT_TRUE(service_->CreateContainer(request).ok());
  ::grpc::StartContainerRequest start;
  start.set_container_id("c1");
  ASSERT_TRUE(service_->StartContainer(start).ok());
  ::grpc::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.set_exec_id("e1");
  exec.mutable_process()->add_args("cat");
  exec.mutable_process()->add_args("/etc/motd");
  EXPECT_TRUE(service_->ExecProcess(exec).ok());
  exec.set_exec_id("e2");
  exec.mutable_process()->set_args(1, "/etc/shadow");
  EXPECT_EQ(service_->ExecProcess(exec).status().code(), Code::kPermissionDenied);
}

TEST_F(ServiceTest, ProcessStreamsReachTheRuntime) {
  Restart(/*with_runtime=*/true);
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(Create("c1").ok());
  ::grpc::StartContainerRequest start;
  start.set_container_id("c1");
  ASSERT_TRUE(service_->StartContainer(start).ok());
  ::grpc::WriteStreamRequest write;
  write.set_container_id("c1");
  write.set_data("hello");
  ASSERT_EQ(service_->WriteStdin(write)->len(), 5u);
  ::grpc::ReadStreamRequest read;
  read.set_container_id("c1");
  read.set_len(100);
  EXPECT_EQ(service_->ReadStdout(read)->data(), "hello");
  ::grpc::CloseStdinRequest close;
  close.set_container_id("c1");
  ASSERT_TRUE(service_->CloseStdin(close).ok());
  ::grpc::WaitProcessRequest wait;
  wait.set_container_id("c1");
  EXPECT_EQ(service_->WaitProcess(wait)->status(), 7);
  EXPECT_EQ(service_->StartContainer(start).status().code(), Code::kFailedPrecondition);  // stopped
}

// ListContainers (a sealroot extension for `ctl ps`): every container with its image, state and
// its init's exit status, known even when no one waited for it.
TEST_F(ServiceTest, ListContainersReportsImageStateAndAnExitNoOneWaitedFor) {
  Restart(/*with_runtime=*/true);
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(Create("c1").ok());
  ASSERT_TRUE(Pull("registry/a:1", "c2").ok());
  ::grpc::StartContainerRequest start;
  start.set_container_id("c1");
  ASSERT_TRUE(service_->StartContainer(start).ok());
  auto list = [&] {
    auto listed = service_->ListContainers(::grpc::ListContainersRequest());
    EXPECT_TRUE(listed.ok());
    return listed.ok() ? *listed : ::grpc::ListContainersResponse();
  };
  ::grpc::ListContainersResponse running = list();
  ASSERT_EQ(running.containers_size(), 2);
  EXPECT_EQ(running.containers(0).container_id(), "c1");
  EXPECT_EQ(running.containers(0).state(), "running");
  EXPECT_FALSE(running.containers(0).exited());
  EXPECT_EQ(running.containers(0).image(), Pull("registry/a:1", "c2")->image_ref());
  EXPECT_EQ(running.containers(1).container_id(), "c2");
  EXPECT_EQ(running.containers(1).state(), "pulled");
  // The init exits (EchoProcess: status 7 when its stdin closes); nobody calls WaitProcess.
  ::grpc::CloseStdinRequest close;
  close.set_container_id("c1");
  ASSERT_TRUE(service_->CloseStdin(close).ok());
  ::grpc::ListContainersResponse after;
  for (int i = 0; i < 200 && !(after = list()).containers(0).exited(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(after.containers(0).exited());
  EXPECT_EQ(after.containers(0).exit_status(), 7);
  EXPECT_EQ(after.containers(0).state(), "stopped");
}

// A runtime whose Start waits (like a boot attesting) until the test opens the gate.
class GatedRuntime final : public ContainerRuntime {
 public:
  Result<std::unique_ptr<Process>> Start(const ContainerLaunch& launch) override {
    std::call_once(entered_once_, [this] { entered_.set_value(); });
    gate_.wait();
    return echo_.Start(launch);
  }
  Result<std::unique_ptr<Process>> Exec(const std::string& id, const std::string& spec) override {
    return echo_.Exec(id, spec);
  }
  void Open() {
    std::call_once(open_once_, [this] { open_.set_value(); });
  }
  std::promise<void> entered_;

 private:
  std::promise<void> open_;
  std::shared_future<void> gate_ = open_.get_future().share();
  std::once_flag entered_once_, open_once_;
  testing::EchoRuntime echo_;
};

// StartContainer waits for the app enclave without the service lock: while it waits, a health
// check and another container's calls are answered, and the starting container is protected.
TEST_F(ServiceTest, CallsAreAnsweredWhileAStartContainerWaitsForItsEnclave) {
  auto runtime = std::make_unique<GatedRuntime>();
  GatedRuntime* gated = runtime.get();
  std::future<void> entered = gated->entered_.get_future();
  Restart(false, std::move(runtime));
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(Pull("registry/a:1", "c2").ok());
  ASSERT_TRUE(Create("c1").ok());
  ::grpc::StartContainerRequest start;
  start.set_container_id("c1");
  std::future<Status> started =
      std::async(std::launch::async, [&] { return service_->StartContainer(start).status(); });
  entered.wait();  // c1's launch is waiting for its enclave

  // Each call runs on its own thread; had it blocked behind c1's start, the gate opens anyway
  // (so the test ends) and the check below fails.
  auto answered = [&](auto call) {
    auto f = std::async(std::launch::async, call);
    bool ready = f.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
    if (!ready) gated->Open();
    EXPECT_TRUE(ready) << "a call waited for another container's StartContainer";
    return f.get();
  };
  EXPECT_TRUE(answered([&] { return service_->Check(::grpc::CheckRequest()).ok(); }));
  EXPECT_TRUE(answered([&] { return Create("c2").ok(); }));
  EXPECT_EQ(answered([&] { return service_->StartContainer(start).status().code(); }),
            Code::kFailedPrecondition);  // already starting
  ::grpc::RemoveContainerRequest remove;
  remove.set_container_id("c1");
  EXPECT_EQ(answered([&] { return service_->RemoveContainer(remove).status().code(); }),
            Code::kFailedPrecondition);  // not while it starts

  gated->Open();
  Status s = started.get();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(service_->RemoveContainer(remove).ok());
}

TEST_F(ServiceTest, RemoveContainerRemovesUpperAndImageOnlyItUsed) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(Pull("registry/a:1", "c2").ok());
  ASSERT_TRUE(Create("c1").ok());
  struct stat st {};
  ASSERT_EQ(stat((config_.state_dir + "/containers/c1/upper").c_str(), &st), 0);
  ::grpc::RemoveContainerRequest remove;
  remove.set_container_id("c1");
  ASSERT_TRUE(service_->RemoveContainer(remove).ok());
  EXPECT_NE(stat((config_.state_dir + "/containers/c1").c_str(), &st), 0);
  EXPECT_EQ(StoreCount(), 1);  // c2 still uses the image
  remove.set_container_id("c2");
  ASSERT_TRUE(service_->RemoveContainer(remove).ok());
  EXPECT_EQ(StoreCount(), 0);
  EXPECT_EQ(service_->RemoveContainer(remove).status().code(), Code::kNotFound);
}

TEST_F(ServiceTest, RestartedAgentKeepsItsSealedImagesAndContainers) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(Create("c1").ok());
  Restart();
  EXPECT_EQ(Create("c1").code(), Code::kAlreadyExists);  // the record survived
  ASSERT_TRUE(Pull("registry/a:1", "c2").ok());
  EXPECT_EQ(puller_->pulls("registry/a:1"), 0);  // the sealed image was reused, not pulled again
  EXPECT_EQ(StoreCount(), 1);
}

TEST_F(ServiceTest, StateSealedWithAnotherKeyIsRefused) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  service_.reset();
  ServiceDeps deps;
  deps.puller = std::make_unique<testing::FakePuller>();
  deps.runtime = MakeUnavailableRuntime();
  deps.sealer = *MakeKeySealer(SecretBytes::Random(32));
  auto other = AgentService::Create(config_, std::move(deps));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kDataLoss);
}

TEST_F(ServiceTest, TamperedStateFileIsRefused) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  service_.reset();
  std::string path = config_.state_dir + "/state.sealed";
  std::string sealed = *ReadFile(path);
  sealed[sealed.size() / 2] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(path, sealed).ok());
  ServiceDeps deps;
  deps.puller = std::make_unique<testing::FakePuller>();
  deps.runtime = MakeUnavailableRuntime();
  deps.sealer = *MakeKeySealer(seal_key_.Clone());
  EXPECT_EQ(AgentService::Create(config_, std::move(deps)).status().code(), Code::kDataLoss);
}

TEST_F(ServiceTest, StateFileHoldsNoPlaintext) {
  ::grpc::PullImageRequest request;
  request.set_image("registry/plaintext-marker:1");
  request.set_container_id("c1");
  request.set_source_creds("user:creds-marker");
  ASSERT_TRUE(service_->PullImage(request).ok());
  std::string sealed = *ReadFile(config_.state_dir + "/state.sealed");
  EXPECT_EQ(sealed.find("plaintext-marker"), std::string::npos);
  EXPECT_EQ(sealed.find("creds-marker"), std::string::npos);
  EXPECT_EQ(sealed.find(std::string(64, 'b')), std::string::npos);  // the root hash
}

TEST_F(ServiceTest, OrphanStoreOfAnInterruptedPullIsRemovedAtStart) {
  ASSERT_TRUE(Pull("registry/a:1", "c1").ok());
  ASSERT_TRUE(MakeDirs(config_.store_dir + "/images/" + std::string(32, 'f')).ok());
  ASSERT_TRUE(WriteFileAtomic(config_.store_dir + "/images/" + std::string(32, 'f') + "/half", "x").ok());
  Restart();
  EXPECT_EQ(StoreCount(), 1);
}

}  // namespace
}  // namespace sealroot::agent
