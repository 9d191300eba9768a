// sealroot-snapshotter: containerd's proxy snapshotter for sealroot (design/shim.md "Images
// through the CRI"): overlayfs for ordinary images, placeholders for the layers of confidential
// images, which only the stub enclave pulls.
#include <chrono>
#include <thread>

#include "base/args.h"
#include "base/cli.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "snapshotter/classify.h"
#include "snapshotter/config.h"
#include "snapshotter/containerd_content.h"
#include "snapshotter/server.h"
#include "snapshotter/store.h"

namespace {

namespace sn = sealroot::snapshotter;

sealroot::Status Run(const sealroot::ArgParser& args) {
  SR_ASSIGN_OR_RETURN(sn::Config config, sn::LoadConfig(args.Get("config").value_or(sn::kDefaultConfigPath),
                                                        !args.Has("config")));
  if (!args.Has("log-level")) {
    SR_ASSIGN_OR_RETURN(sealroot::log::Level level, sealroot::log::ParseLevel(config.log_level));
    sealroot::log::SetLevel(level);
  }
  SR_ASSIGN_OR_RETURN(std::unique_ptr<sn::Store> store, sn::Store::Open(config.root));
  sn::Classifier classifier(config.confidential_images, config.detect_encrypted,
                            sn::ContainerdManifestReader(config.containerd_address));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<sn::Server> server, sn::Serve(config.address, *store, classifier));
  while (!sealroot::Interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  SR_LOG(kInfo) << "stopping";
  server->Shutdown();
  return sealroot::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  sealroot::log::SetProgramName("sealroot-snapshotter");
  sealroot::log::SetLevel(sealroot::log::Level::kInfo);
  sealroot::ArgParser args(
      "sealroot-snapshotter", "",
      "Serve containerd's snapshot API (proxy_plugins) for sealroot: overlayfs for ordinary "
      "images, placeholders for the layers of confidential ones.");
  sealroot::cli::AddCommonFlags(args);
  args.Option("config", "FILE", std::string("configuration (default ") + sn::kDefaultConfigPath + ")");
  std::vector<std::string> argv_list(argv + 1, argv + argc);
  if (auto exit_code = sealroot::cli::ParseCommandLine(args, argv_list)) return *exit_code;
  if (sealroot::Status s = args.ExpectPositionals(0, 0); !s.ok()) return sealroot::cli::ReportError(args, s);
  sealroot::InstallInterruptHandler();
  if (sealroot::Status s = Run(args); !s.ok()) return sealroot::cli::ReportError(args, s);
  return 0;
}
