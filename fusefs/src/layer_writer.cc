#include <algorithm>

#include "base/interrupt.h"
#include "fusefs/src/object.h"
#include "fusefs/src/records.h"
#include "fusefs/writer.h"

namespace sealroot::fusefs {
namespace {

class LayerWriterImpl final : public LayerWriter {
 public:
  LayerWriterImpl(std::shared_ptr<const Store> store, std::shared_ptr<const StoreKey> key,
                  std::string diff_id)
      : store_(std::move(store)),
        key_(std::move(key)),
        diff_id_(std::move(diff_id)),
        data_(*store_, *key_),
        index_(*store_, *key_) {}
  ~LayerWriterImpl() override {
    if (!done_) Abort();
  }

  Status Begin() { return index_.Begin(ObjectKind::kLayerIndex); }

  Status Add(const LayerEntry& entry, Reader* content) override {
    if (done_) return FailedPrecondition("layer " + diff_id_ + " is already committed or aborted");
    Status s = AddEntry(entry, content);
    if (!s.ok()) return std::move(s).WithContext("sealing " + (entry.path.empty() ? "/" : entry.path));
    return s;
  }

  Status Commit() override {
    if (done_) return FailedPrecondition("layer " + diff_id_ + " is already committed or aborted");
    const std::string ctx = "committing sealed layer " + diff_id_;
    SR_ASSIGN_OR_RETURN(ObjectRef index, index_.Finish());
    objects_.push_back(index.name);
    SR_RETURN_IF_ERROR_CTX(store_->Sync(), ctx);
    SR_RETURN_IF_ERROR(store_->CommitLayer(*key_, diff_id_, index, objects_));
    done_ = true;
    return OkStatus();
  }

  void Abort() override {
    data_.Abandon();
    index_.Abandon();
    for (const Hash32& name : objects_) store_->RemoveObject(name);
    objects_.clear();
    done_ = true;
  }

 private:
  Status AddEntry(const LayerEntry& entry, Reader* content) {
    if (Interrupted()) return Cancelled("interrupted");
    Record rec;
    rec.type = entry.type;
    rec.name = entry.path;
    rec.mode = entry.mode & 07777;
    rec.uid = entry.uid;
    rec.gid = entry.gid;
    rec.mtime_sec = entry.mtime_sec;
    rec.mtime_nsec = static_cast<std::uint32_t>(std::clamp<std::int64_t>(entry.mtime_nsec, 0, 999999999));
    rec.dev_major = entry.dev_major;
    rec.dev_minor = entry.dev_minor;
    rec.target = entry.link_target;
    rec.xattrs = entry.xattrs;
    if (entry.type == NodeType::kRegular) {
      if (content == nullptr) return InvalidArgument("a regular file without content");
      rec.size = entry.size;
      SR_RETURN_IF_ERROR(SealContent(entry.size, *content, rec));
    }
    ByteWriter w;
    EncodeRecord(rec, w);
    return index_.Write(w.bytes());
  }

  Status SealContent(std::uint64_t size, Reader& content, Record& rec) {
    if (size <= kInlineMax) {
      rec.inline_data.resize(size);
      std::size_t got = 0;
      while (got < size) {
        SR_ASSIGN_OR_RETURN(std::size_t n,
                            content.Read(std::span(
                                reinterpret_cast<std::uint8_t*>(rec.inline_data.data()) + got, size - got)));
        if (n == 0) return DataLoss("content ended early");
        got += n;
      }
      return ExpectEnd(content);
    }
    SR_RETURN_IF_ERROR(data_.Begin(ObjectKind::kData));
    std::uint64_t got = 0;
    while (got < size) {
      std::span<std::uint8_t> space = data_.Space();
      space = space.first(static_cast<std::size_t>(std::min<std::uint64_t>(space.size(), size - got)));
      SR_ASSIGN_OR_RETURN(std::size_t n, content.Read(space));
      if (n == 0) return DataLoss("content ended early");
      SR_RETURN_IF_ERROR(data_.Advance(n));
      got += n;
    }
    SR_RETURN_IF_ERROR(ExpectEnd(content));
    SR_ASSIGN_OR_RETURN(ObjectRef ref, data_.Finish());
    objects_.push_back(ref.name);
    rec.ref = ref;
    return OkStatus();
  }

  static Status ExpectEnd(Reader& content) {
    std::uint8_t extra = 0;
    SR_ASSIGN_OR_RETURN(std::size_t n, content.Read(std::span(&extra, 1)));
    if (n != 0) return DataLoss("content is longer than its declared size");
    return OkStatus();
  }

  std::shared_ptr<const Store> store_;
  std::shared_ptr<const StoreKey> key_;
  std::string diff_id_;
  ObjectWriter data_;
  ObjectWriter index_;
  std::vector<Hash32> objects_;
  bool done_ = false;
};

}  // namespace

Result<std::unique_ptr<LayerWriter>> LayerWriter::Create(std::shared_ptr<const Store> store,
                                                         std::shared_ptr<const StoreKey> key,
                                                         std::string diff_id) {
  auto w = std::make_unique<LayerWriterImpl>(std::move(store), std::move(key), std::move(diff_id));
  SR_RETURN_IF_ERROR(w->Begin());
  return std::unique_ptr<LayerWriter>(std::move(w));
}

}  // namespace sealroot::fusefs
