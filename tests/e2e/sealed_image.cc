#include "tests/e2e/sealed_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "base/crypto.h"
#include "base/encoding.h"
#include "base/fd.h"
#include "fusefs/writer.h"

namespace sealroot::testing {
namespace {

class FdSource : public Reader {
 public:
  explicit FdSource(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> out) override {
    ssize_t n = ::read(fd_.get(), out.data(), out.size());
    if (n < 0) return ErrnoStatus("read", errno);
    return static_cast<std::size_t>(n);
  }

 private:
  UniqueFd fd_;
};

Status AddEntry(fusefs::LayerWriter& writer, const std::string& dir, const std::string& relative) {
  std::string full = relative.empty() ? dir : dir + "/" + relative;
  struct stat st;
  if (::lstat(full.c_str(), &st) != 0) return ErrnoStatus("lstat " + full, errno);
  fusefs::LayerEntry entry;
  entry.path = relative;
  entry.mode = st.st_mode & 07777;
  entry.uid = st.st_uid;
  entry.gid = st.st_gid;
  entry.mtime_sec = st.st_mtim.tv_sec;
  entry.mtime_nsec = st.st_mtim.tv_nsec;
  if (S_ISDIR(st.st_mode)) {
    entry.type = fusefs::NodeType::kDirectory;
    return writer.Add(entry, nullptr);
  }
  if (S_ISLNK(st.st_mode)) {
    entry.type = fusefs::NodeType::kSymlink;
    entry.link_target = std::filesystem::read_symlink(full).string();
    return writer.Add(entry, nullptr);
  }
  entry.type = fusefs::NodeType::kRegular;
  entry.size = static_cast<std::uint64_t>(st.st_size);
  FdSource source(UniqueFd(::open(full.c_str(), O_RDONLY | O_CLOEXEC)));
  return writer.Add(entry, &source);
}

}  // namespace

void MakeBusyboxRoot(const std::string& dir, const std::string& marker) {
  std::string script = "set -e; mkdir -p '" + dir + "/bin' '" + dir + "/etc'; cp /bin/busybox '" + dir +
                       "/bin/'; chroot '" + dir + "' /bin/busybox --install -s /bin";
  if (std::system(script.c_str()) != 0) throw std::runtime_error("making a busybox root in " + dir);
  std::ofstream(dir + "/etc/passwd")
      << "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
  std::ofstream(dir + "/etc/group") << "root:x:0:\napp:x:1000:\nextra:x:2000:app\n";
  std::ofstream(dir + "/etc/motd") << marker << "\n";
}

Result<fusefs::RootHash> SealDirectory(const std::string& store_dir, const SecretBytes& key,
                                       const std::string& dir, const std::string& config_json) {
  SR_ASSIGN_OR_RETURN(std::unique_ptr<fusefs::Store> opened,
                      fusefs::Store::Open(store_dir, /*create=*/true, fusefs::StoreLock::kShared));
  std::shared_ptr<const fusefs::Store> store = std::move(opened);
  SR_ASSIGN_OR_RETURN(fusefs::StoreKey store_key, fusefs::StoreKey::Create(key.Clone()));
  auto shared_key = std::make_shared<const fusefs::StoreKey>(std::move(store_key));
  SR_RETURN_IF_ERROR(store->CheckKey(*shared_key, /*bind=*/true));

  // A stand-in DiffID: unique per directory content is all the store needs here.
  std::string diff_id = "sha256:" + HexEncode(Sha256Of(dir + config_json));
  SR_ASSIGN_OR_RETURN(auto writer, fusefs::LayerWriter::Create(store, shared_key, diff_id));
  SR_RETURN_IF_ERROR(AddEntry(*writer, dir, ""));
  for (const auto& item : std::filesystem::recursive_directory_iterator(dir)) {
    SR_RETURN_IF_ERROR(AddEntry(*writer, dir, item.path().lexically_relative(dir).string()));
  }
  SR_RETURN_IF_ERROR(writer->Commit());
  fusefs::ImageMetadata image;
  image.manifest_digest = "sha256:" + HexEncode(Sha256Of("manifest" + config_json));
  image.config_digest = "sha256:" + HexEncode(Sha256Of(config_json));
  image.config_json = config_json;
  image.diff_ids = {diff_id};
  return fusefs::BuildImageRoot(*store, *shared_key, image);
}

}  // namespace sealroot::testing
