// fsck: verify every object an image root reaches, report each bad one with a path, keep going.
#include <set>

#include "base/interrupt.h"
#include "fusefs/sealed_tree.h"
#include "fusefs/src/image_root.h"
#include "fusefs/src/object.h"
#include "fusefs/src/records.h"

namespace sealroot::fusefs {
namespace {

class Checker {
 public:
  Checker(const Store& store, const StoreKey& key, std::uint64_t max_ino, const BadObjectFn& bad)
      : store_(store), key_(key), max_ino_(max_ino), bad_(bad) {}

  FsckReport& report() { return report_; }

  Status CheckDirectory(const ObjectRef& ref, const std::string& path) {
    if (Interrupted()) return Cancelled("interrupted");
    if (!seen_.insert(ref.name).second) return OkStatus();
    ++report_.objects_checked;
    report_.bytes_checked += ref.size;
    auto bytes = ReadWholeObject(store_, key_, ref, ObjectKind::kDirectory);
    if (!bytes.ok()) return Bad(ref, path, bytes.status());
    auto entries = DecodeDirectory(*bytes, max_ino_);
    if (!entries.ok()) return Bad(ref, path, entries.status());
    for (const Record& e : *entries) {
      std::string child = (path == "/" ? "" : path) + "/" + e.name;
      if (e.type == NodeType::kDirectory) {
        SR_RETURN_IF_ERROR(CheckDirectory(*e.ref, child));
      } else if (e.ref) {
        SR_RETURN_IF_ERROR(CheckObject(*e.ref, ObjectKind::kData, child));
      }
    }
    return OkStatus();
  }

  Status CheckObject(const ObjectRef& ref, ObjectKind kind, const std::string& what) {
    if (Interrupted()) return Cancelled("interrupted");
    if (!seen_.insert(ref.name).second) return OkStatus();
    ++report_.objects_checked;
    report_.bytes_checked += ref.size;
    Status s = VerifyObject(store_, key_, ref, kind);
    if (!s.ok()) return Bad(ref, what, s);
    return OkStatus();
  }

 private:
  Status Bad(const ObjectRef& ref, const std::string& path, const Status& error) {
    if (error.code() != Code::kDataLoss) return error.WithContext(path);
    ++report_.bad_objects;
    bad_(HashHex(ref.name), path, error);
    return OkStatus();
  }

  const Store& store_;
  const StoreKey& key_;
  std::uint64_t max_ino_;
  const BadObjectFn& bad_;
  std::set<Hash32> seen_;
  FsckReport report_;
};

}  // namespace

Result<FsckReport> Fsck(const Store& store, const StoreKey& key, const RootHash& root,
                        const BadObjectFn& bad) {
  const std::string ctx = "checking root " + HashHex(root) + " in store " + store.dir();
  SR_RETURN_IF_ERROR_CTX(store.CheckKey(key, false), ctx);
  auto bytes = ReadRootObject(store, key, root);
  if (!bytes.ok()) {
    if (bytes.status().code() != Code::kDataLoss) return bytes.status().WithContext(ctx);
    bad(HashHex(root), "(image root)", bytes.status());
    return FsckReport{.objects_checked = 1, .bytes_checked = 0, .bad_objects = 1};
  }
  auto image = DecodeImageRoot(*bytes);
  if (!image.ok()) return image.status().WithContext(ctx);
  Checker checker(store, key, image->max_ino, bad);
  ++checker.report().objects_checked;
  for (const auto& [diff_id, index] : image->layers) {
    SR_RETURN_IF_ERROR_CTX(
        checker.CheckObject(index, ObjectKind::kLayerIndex, "(index of layer " + diff_id + ")"), ctx);
  }
  SR_RETURN_IF_ERROR_CTX(checker.CheckDirectory(*image->root.ref, "/"), ctx);
  return checker.report();
}

}  // namespace sealroot::fusefs
