#include "tests/support/registry.h"

#include <fstream>
#include <stdexcept>

namespace sealroot::testing {

Registry::Registry(RegistryOptions options) : options_(std::move(options)) {
  port_ = FreePort();
  host_ = "127.0.0.1:" + std::to_string(port_);
  std::string config =
      "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: " + dir_.path() +
      "/data\n  delete:\n    enabled: true\nhttp:\n  addr: " + host_ + "\n";
  if (options_.tls) {
    std::string certs = dir_.path() + "/certs";
    auto r = Shell("mkdir -p " + certs +
                   " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
                   "-addext subjectAltName=IP:127.0.0.1 -keyout " +
                   dir_.path() + "/key.pem -out " + certs + "/ca.crt");
    if (!r.ok()) throw std::runtime_error("registry certificate: " + r.err);
    config += "  tls:\n    certificate: " + certs + "/ca.crt\n    key: " + dir_.path() + "/key.pem\n";
  }
  if (!options_.user.empty()) {
    auto r = Run({"htpasswd", "-Bbn", options_.user, options_.password});
    if (!r.ok()) throw std::runtime_error("htpasswd: " + r.err);
    std::ofstream(dir_.path() + "/htpasswd") << r.out;
    config += "auth:\n  htpasswd:\n    realm: sealroot-test\n    path: " + dir_.path() + "/htpasswd\n";
  }
  std::ofstream(dir_.path() + "/config.yml") << config;
  process_ = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{"docker-registry", "serve", dir_.path() + "/config.yml"},
      dir_.path() + "/registry.log");
  if (!WaitForPort(port_)) throw std::runtime_error("docker-registry did not start on " + host_);
}

Registry::~Registry() {
  process_.reset();
}

std::vector<std::string> Registry::SkopeoDestFlags() const {
  std::vector<std::string> flags;
  if (options_.tls) {
    flags.push_back("--dest-cert-dir=" + cert_dir());
  } else {
    flags.push_back("--dest-tls-verify=false");
  }
  if (!options_.user.empty()) flags.push_back("--dest-creds=" + options_.user + ":" + options_.password);
  return flags;
}

void Registry::Push(const std::string& source, const std::string& repo_and_tag,
                    const std::vector<std::string>& extra_flags) const {
  std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy", "--quiet"};
  for (const auto& f : SkopeoDestFlags()) argv.push_back(f);
  for (const auto& f : extra_flags) argv.push_back(f);
  argv.push_back(source);
  argv.push_back(Ref(repo_and_tag));
  auto r = Run(argv);
  if (!r.ok()) throw std::runtime_error("skopeo push " + source + " -> " + repo_and_tag + ": " + r.err);
}

}  // namespace sealroot::testing
