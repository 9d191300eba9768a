// sealroot mount | umount | fsck | gc | df | roots: the sealed store's commands (design/sealfs.md).
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "base/cli.h"
#include "base/crypto.h"
#include "base/encoding.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/interrupt.h"
#include "base/log.h"
#include "base/socket.h"
#include "fusefs/fuse_mount.h"
#include "fusefs/sealed_tree.h"
#include "fusefs/store.h"
#include "fusefs/upper.h"
#include "sealing/sealing.h"
#include "tool/src/commands.h"

namespace sealroot::tool {
namespace {

using nlohmann::json;
namespace sf = sealroot::fusefs;

void AddKeyFlags(ArgParser& p) {
  p.Option("root", "HEX", "the image's root hash (64 hex characters)");
  p.Option("key-file", "FILE", "the store key (32 raw bytes or 64 hex characters)");
  p.Option("key-fd", "N", "read the store key from file descriptor N");
}

struct Opened {
  std::shared_ptr<const sf::Store> store;
  std::shared_ptr<const sf::StoreKey> key;
  sf::RootHash root{};
};

// The store key named on a command line (--key-file or --key-fd). Never creates a key.
Result<std::shared_ptr<const sf::StoreKey>> LoadKey(const ArgParser& p) {
  std::optional<int> key_fd;
  if (auto fd = p.Get("key-fd")) {
    try {
      key_fd = std::stoi(*fd);
    } catch (const std::exception&) {
      return InvalidArgument("--key-fd: not a file descriptor: " + *fd);
    }
  }
  auto key_file = p.Get("key-file");
  if (key_file && access(key_file->c_str(), F_OK) != 0)
    return NotFound("key file " + *key_file + " does not exist");
  SR_ASSIGN_OR_RETURN(SecretBytes key_bytes, sealing::LoadOrCreateKey(key_file, key_fd));
  SR_ASSIGN_OR_RETURN(sf::StoreKey key, sf::StoreKey::Create(std::move(key_bytes)));
  return std::make_shared<const sf::StoreKey>(std::move(key));
}

// The store, key and root hash named on a command line. Never creates a key or a store.
Result<Opened> OpenRoot(const ArgParser& p, const std::string& store_dir) {
  auto root_hex = p.Get("root");
  if (!root_hex) return InvalidArgument("--root HEX is required");
  Opened o;
  SR_ASSIGN_OR_RETURN(o.root, sf::ParseHash(*root_hex));
  SR_ASSIGN_OR_RETURN(o.key, LoadKey(p));
  SR_ASSIGN_OR_RETURN(o.store, sf::Store::Open(store_dir, false, sf::StoreLock::kNone));
  return o;
}

// The mount's serving process holds a listening abstract unix socket named after the mountpoint
// until it exits, after saving the upper; `umount` connects before unmounting and waits for the
// socket to go away. The parent directory is resolved, never the mount itself (a dead FUSE
// mount cannot be stat'ed).
// The abstract socket name ("@...", base/socket.h) of a mountpoint.
Result<std::string> MountSocketFor(const std::string& mountpoint) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(mountpoint, ec);
  if (!ec) path = std::filesystem::canonical(path.parent_path(), ec) / path.filename();
  if (ec) return ErrnoStatus("resolving " + mountpoint, ec.value());
  return "@sealroot-mount-" + HexEncode(Sha256Of(path.string())).substr(0, 32);
}

// The socket stays open for the rest of the process (the kernel closes it at exit), so `umount`
// returns once the mount's process has exited. Best effort: without it the mount works, only
// `umount` cannot wait for the upper's save.
void HoldMountSocket(const std::string& mountpoint) {
  Result<std::string> name = MountSocketFor(mountpoint);
  Result<UniqueFd> fd = name.ok() ? ListenUnix(*name, 64) : Result<UniqueFd>(name.status());
  if (!fd.ok()) {
    SR_LOG(kWarning) << "umount of " << mountpoint << " will not wait for this mount's upper to be saved";
    return;
  }
  (void)fd->Release();  // inherited by the daemon
}

// Connects to the mount's socket (none: a mount not served by `sealroot mount`).
UniqueFd ConnectMountSocket(const std::string& mountpoint) {
  Result<std::string> name = MountSocketFor(mountpoint);
  if (!name.ok()) return {};
  Result<UniqueFd> fd = ConnectUnix(*name);
  return fd.ok() ? std::move(*fd) : UniqueFd();
}

// Returns once the serving process has closed its socket (it exited); kCancelled on Ctrl-C.
Status WaitForMountProcess(const UniqueFd& fd, const std::string& mountpoint) {
  char byte;
  while (!Interrupted()) {
    ssize_t n = read(fd.get(), &byte, 1);
    if (n == 0 || (n < 0 && errno != EINTR)) return OkStatus();
  }
  return Cancelled("unmounted " + mountpoint + ": interrupted while waiting for its upper to be saved");
}

// Whether `path` is a mount point in this process's mount table (a dead FUSE mount still is).
// The parent is resolved, never the mount itself (a dead FUSE mount cannot be stat'ed).
bool InMountTable(const std::string& path) {
  std::error_code ec;
  std::filesystem::path where = std::filesystem::absolute(path, ec);
  if (!ec) where = std::filesystem::canonical(where.parent_path(), ec) / where.filename();
  auto table = ReadFile("/proc/self/mountinfo", 16u << 20);
  if (ec || !table.ok()) return true;  // cannot tell: let umount2 decide
  // Field 5 is the mount point, with space, tab, newline and backslash as octal escapes.
  std::string escaped;
  for (char c : where.string()) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03o", static_cast<unsigned char>(c));
      escaped += buf;
    } else {
      escaped += c;
    }
  }
  std::size_t line_start = 0;
  while (line_start < table->size()) {
    std::size_t end = table->find('\n', line_start);
    if (end == std::string::npos) end = table->size();
    std::string_view line(table->data() + line_start, end - line_start);
    std::size_t field = 0, pos = 0;
    while (field < 4 && pos != std::string_view::npos) {
      pos = line.find(' ', pos);
      if (pos != std::string_view::npos) ++pos;
      ++field;
    }
    if (pos != std::string_view::npos && line.substr(pos, line.find(' ', pos) - pos) == escaped) return true;
    line_start = end + 1;
  }
  return false;
}

Status RunMount(const ArgParser& p) {
  const std::string& store_dir = p.positionals()[0];
  const std::string& mountpoint = p.positionals()[1];
  const bool read_only = p.Bool("read-only");
  if (struct stat st{}; stat(mountpoint.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR))
    return NotFound("mountpoint " + mountpoint + " does not exist");
  if (read_only && (p.Has("upper") || p.Has("upper-root")))
    return InvalidArgument("--upper and --upper-root need a writable mount (drop --read-only)");
  SR_ASSIGN_OR_RETURN(Opened o, OpenRoot(p, store_dir));
  // Open and verify the root (and the upper's state) before mounting: a bad key, root or upper
  // never produces a mount.
  SR_ASSIGN_OR_RETURN(std::unique_ptr<sf::SealedTree> tree, sf::SealedTree::OpenRoot(o.store, o.key, o.root));
  std::unique_ptr<sf::UnionFs> writable;
  if (!read_only) {
    sf::UpperOptions upper;
    upper.dir = p.Get("upper").value_or("");
    if (auto pinned = p.Get("upper-root")) {
      SR_ASSIGN_OR_RETURN(upper.expected_state, sf::ParseHash(*pinned));
    }
    SR_ASSIGN_OR_RETURN(writable, sf::UnionFs::Open(std::move(tree), o.key, o.root, upper));
  }
  sf::Filesystem& fs = writable ? static_cast<sf::Filesystem&>(*writable) : *tree;
  sf::FuseMountOptions options;
  options.mountpoint = mountpoint;
  options.fsname = "sealfs:" + sf::HashHex(o.root).substr(0, 16);
  options.read_only = read_only;
  options.writeback_cache = !p.Bool("no-writeback-cache");
  options.debug = p.Bool("debug-fuse");
  options.stop_on_signal = true;
  // gc keeps a mounted root, named or not, while this process lives.
  SR_ASSIGN_OR_RETURN(sf::RootPin pin, o.store->PinRoot(o.root));
  HoldMountSocket(mountpoint);
  SR_ASSIGN_OR_RETURN(std::unique_ptr<sf::FuseMount> mount, sf::FuseMount::Create(fs, options));
  if (p.Bool("json")) {
    std::error_code ec;
    std::filesystem::path where = std::filesystem::absolute(mountpoint, ec);
    std::cout << json{{"mountpoint", ec ? mountpoint : where.string()},
                      {"root_hash", sf::HashHex(o.root)},
                      {"store", store_dir},
                      {"read_only", read_only},
                      {"upper", p.Get("upper").value_or("")},
                      {"foreground", p.Bool("foreground")}}
                     .dump()
              << std::endl;
  }
  // Absolute before daemonizing: the daemon runs in "/".
  const std::string root_file =
      p.Has("upper-root-file") ? std::filesystem::absolute(*p.Get("upper-root-file")).string() : "";
  if (!p.Bool("foreground")) SR_RETURN_IF_ERROR(mount->Daemonize(p.Get("log-file").value_or("")));
  Status served = mount->Serve();
  mount.reset();  // unmounted: nothing changes the upper any more
  if (writable && p.Has("upper")) {
    // The new upper root: the key holder keeps it to pin the next mount (--upper-root).
    SR_ASSIGN_OR_RETURN(sf::Hash32 state, writable->Commit());
    SR_LOG(kInfo) << "upper " << *p.Get("upper") << " committed, upper root " << sf::HashHex(state);
    if (!root_file.empty()) SR_RETURN_IF_ERROR(WriteFileAtomic(root_file, sf::HashHex(state) + "\n", 0600));
  }
  return served;
}

Status RunFsck(const ArgParser& p, bool& reported) {
  SR_ASSIGN_OR_RETURN(Opened o, OpenRoot(p, p.positionals()[0]));
  json bad = json::array();
  auto report = sf::Fsck(
      *o.store, *o.key, o.root, [&](const std::string& object, const std::string& path, const Status& error) {
        bad.push_back({{"object", object}, {"path", path}, {"error", error.message()}});
        if (!p.Bool("json"))
          std::cout << "bad object " << object << " (" << path << "): " << error.message() << "\n";
      });
  if (!report.ok()) return report.status();
  Status result = OkStatus();
  if (report->bad_objects > 0) {
    result = DataLoss("root " + sf::HashHex(o.root) + ": " + std::to_string(report->bad_objects) +
                      " damaged objects");
  }
  if (p.Bool("json")) {
    // One document, the verdict in it: the caller reports no second one (FsckCommand).
    json doc{{"root", sf::HashHex(o.root)},
             {"objects_checked", report->objects_checked},
             {"bytes_checked", report->bytes_checked},
             {"bad_objects", bad},
             {"ok", result.ok()}};
    if (!result.ok())
      doc["error"] = {{"code", std::string(CodeName(result.code()))}, {"message", result.message()}};
    std::cout << doc.dump() << "\n";
    reported = true;
  } else {
    std::cout << "checked " << report->objects_checked << " objects (" << report->bytes_checked
              << " bytes): " << report->bad_objects << " bad\n";
  }
  return result;
}

// Runs `body` after the common parsing; returns the exit code.
template <typename Body>
int RunCommand(ArgParser& p, Args args, std::size_t positionals, Body body) {
  cli::AddCommonFlags(p);
  if (auto exit = cli::ParseCommandLine(p, args)) return *exit;
  Status s = p.ExpectPositionals(positionals, positionals);
  if (s.ok()) s = body(p);
  return s.ok() ? cli::kExitOk : cli::ReportError(p, s);
}

}  // namespace

int Mount(Args args) {
  // -f is the conventional spelling (as fuse programs spell it); ArgParser only knows long options.
  std::vector<std::string> rewritten(args.begin(), args.end());
  for (std::string& a : rewritten) {
    if (a == "-f") a = "--foreground";
  }
  ArgParser p("sealroot mount", "STORE MOUNTPOINT",
              "Mount a sealed image root (FUSE): writable through an encrypted upper, or read-only.");
  AddKeyFlags(p);
  p.Flag("read-only", "mount the sealed root read-only (no upper)");
  p.Option("upper", "DIR", "keep the writable upper in DIR across mounts (default: in memory)");
  p.Option("upper-root", "HEX", "refuse an upper whose state is not this root (freshness across mounts)");
  p.Option("upper-root-file", "FILE", "write the upper's root at unmount to FILE");
  p.Flag("no-writeback-cache", "send every write to the daemon at once (no kernel write batching)");
  p.Flag("foreground", "stay in the foreground (-f) instead of returning once mounted");
  p.Option("log-file", "FILE", "where the daemon logs (integrity failures name the path)");
  p.Flag("debug-fuse", "trace FUSE requests on stderr");
  return RunCommand(p, rewritten, 2, RunMount);
}

int Umount(Args args) {
  ArgParser p("sealroot umount", "MOUNTPOINT", "Unmount a sealed root; returns once its upper is saved.");
  return RunCommand(p, args, 1, [](const ArgParser& parser) -> Status {
    const std::string& mnt = parser.positionals()[0];
    // Said plainly, before the kernel's "Invalid argument" or fusermount3's mtab message.
    if (struct stat st{}; lstat(mnt.c_str(), &st) != 0 && errno == ENOENT)
      return NotFound("unmounting " + mnt + ": no such directory");
    if (!InMountTable(mnt)) return NotFound("unmounting " + mnt + ": not mounted");
    UniqueFd server = ConnectMountSocket(mnt);
    auto unmounted = [&] {
      // The upper's state is saved when this returns.
      return server ? WaitForMountProcess(server, mnt) : OkStatus();
    };
    if (umount2(mnt.c_str(), 0) == 0) return unmounted();
    int err = errno;
    if (err == EPERM) {  // not root: the setuid helper may unmount the user's own FUSE mounts
      std::string cmd = "fusermount3 -u -- '" + mnt + "'";
      if (mnt.find('\'') == std::string::npos && std::system(cmd.c_str()) == 0) return unmounted();
    }
    if (err == EINVAL) return NotFound("unmounting " + mnt + ": not mounted");  // not "Invalid argument"
    return ErrnoStatus("unmounting " + mnt, err);
  });
}

int Fsck(Args args) {
  ArgParser p("sealroot fsck", "STORE", "Verify every object of a sealed image root; report each bad one.");
  AddKeyFlags(p);
  cli::AddCommonFlags(p);
  if (auto exit = cli::ParseCommandLine(p, args)) return *exit;
  Status s = p.ExpectPositionals(1, 1);
  if (!s.ok()) return cli::ReportError(p, s);
  // --json: a damaged root's verdict is in fsck's one document already.
  bool reported = false;
  s = RunFsck(p, reported);
  if (s.ok()) return cli::kExitOk;
  return reported ? cli::ExitCodeFor(s) : cli::ReportError(p, s);
}

int Gc(Args args) {
  ArgParser p("sealroot gc", "STORE",
              "Remove the roots that are neither named nor mounted, then every layer and object no remaining "
              "root uses.");
  p.Option("key-file", "FILE", "the store key (gc reads the root names with it)");
  p.Option("key-fd", "N", "read the store key from file descriptor N");
  p.Flag("prune-unnamed",
         "on a store sealed before named roots (it has no names): remove its roots too (else refused)");
  return RunCommand(p, args, 1, [](const ArgParser& parser) -> Status {
    const std::string& dir = parser.positionals()[0];
    if (!parser.Has("key-file") && !parser.Has("key-fd")) {
      return InvalidArgument(
          "gc needs the store key (--key-file or --key-fd): it keeps the named roots, "
          "whose names only the key can read");
    }
    SR_ASSIGN_OR_RETURN(auto store, sf::Store::Open(dir, false, sf::StoreLock::kExclusive));
    SR_ASSIGN_OR_RETURN(std::shared_ptr<const sf::StoreKey> key, LoadKey(parser));
    SR_RETURN_IF_ERROR(store->CheckKey(*key, /*bind=*/false));
    sf::GcOptions options;
    options.prune_roots = true;
    auto names = store->RootNames(*key);
    if (names.ok()) {
      for (const sf::NamedRoot& n : *names) options.keep.insert(n.root);
    } else if (names.status().code() != Code::kNotFound) {
      return names.status().WithContext("gc removed nothing");  // tampered names: keep everything
    } else if (!parser.Bool("prune-unnamed")) {
      SR_ASSIGN_OR_RETURN(std::vector<sf::RootHash> roots, store->ListRoots());
      if (!roots.empty()) {
        return FailedPrecondition("store " + dir +
                                  " was sealed before named roots (it has no names), so gc " +
                                  "would remove all its " + std::to_string(roots.size()) +
                                  " roots: name the ones to keep (sealroot roots add " + dir +
                                  " NAME --root HEX), or pass --prune-unnamed");
      }
    }
    SR_ASSIGN_OR_RETURN(sf::GcReport r, store->CollectGarbage(options));
    if (parser.Bool("json")) {
      std::cout << json{{"roots_removed", r.roots_removed},
                        {"objects_removed", r.objects_removed},
                        {"bytes_removed", r.bytes_removed},
                        {"layers_removed", r.layers_removed},
                        {"staging_removed", r.staging_removed}}
                       .dump()
                << "\n";
    } else {
      std::cout << "removed " << r.roots_removed << " roots, " << r.objects_removed << " objects ("
                << r.bytes_removed << " bytes), " << r.layers_removed << " layers, " << r.staging_removed
                << " staged files\n";
    }
    return OkStatus();
  });
}

int Df(Args args) {
  ArgParser p("sealroot df", "STORE", "Show a sealed store's space usage.");
  return RunCommand(p, args, 1, [](const ArgParser& parser) -> Status {
    SR_ASSIGN_OR_RETURN(auto store, sf::Store::Open(parser.positionals()[0], false, sf::StoreLock::kNone));
    SR_ASSIGN_OR_RETURN(sf::UsageReport r, store->Usage());
    if (parser.Bool("json")) {
      std::cout << json{{"roots", r.roots},
                        {"layers", r.layers},
                        {"objects", r.objects},
                        {"bytes", r.bytes},
                        {"unreferenced_objects", r.unreferenced_objects},
                        {"unreferenced_bytes", r.unreferenced_bytes}}
                       .dump()
                << "\n";
    } else {
      std::cout << "roots " << r.roots << "\nlayers " << r.layers << "\nobjects " << r.objects << " ("
                << r.bytes << " bytes)\nreclaimable " << r.unreferenced_objects << " objects ("
                << r.unreferenced_bytes << " bytes)\n";
    }
    return OkStatus();
  });
}

namespace {

Status RootsList(const ArgParser& p, const sf::Store& store, const sf::StoreKey& key) {
  SR_ASSIGN_OR_RETURN(std::vector<sf::NamedRoot> names, store.RootNames(key));
  SR_ASSIGN_OR_RETURN(std::vector<sf::RootHash> roots, store.ListRoots());
  std::set<sf::RootHash> present(roots.begin(), roots.end()), named;
  json out = json::array();
  for (const sf::NamedRoot& n : names) {
    named.insert(n.root);
    out.push_back(
        {{"name", n.name}, {"root_hash", sf::HashHex(n.root)}, {"present", present.contains(n.root)}});
  }
  for (const sf::RootHash& r : roots) {
    if (!named.contains(r))
      out.push_back({{"name", nullptr}, {"root_hash", sf::HashHex(r)}, {"present", true}});
  }
  if (p.Bool("json")) {
    std::cout << json{{"roots", out}}.dump() << "\n";
    return OkStatus();
  }
  for (const json& r : out) {
    std::string name = r["name"].is_null() ? "-" : r["name"].get<std::string>();
    std::cout << r["root_hash"].get<std::string>() << "  " << name
              << (r["present"].get<bool>() ? "" : "  (missing)") << "\n";
  }
  return OkStatus();
}

Status RootsRemove(const std::string& name, const sf::Store& store, const sf::StoreKey& key) {
  SR_RETURN_IF_ERROR(sf::ValidateRootName(name));
  return store.UpdateRootNames(key, [&](std::vector<sf::NamedRoot>& names) -> Status {
    auto it =
        std::find_if(names.begin(), names.end(), [&](const sf::NamedRoot& n) { return n.name == name; });
    if (it == names.end()) return NotFound("store " + store.dir() + " has no root named " + name);
    names.erase(it);
    return OkStatus();
  });
}

Status RootsAdd(const ArgParser& p, const std::string& name, std::shared_ptr<const sf::Store> store,
                std::shared_ptr<const sf::StoreKey> key) {
  SR_RETURN_IF_ERROR(sf::ValidateRootName(name));
  auto root_hex = p.Get("root");
  if (!root_hex) return InvalidArgument("roots add needs --root HEX");
  SR_ASSIGN_OR_RETURN(sf::RootHash root, sf::ParseHash(*root_hex));
  // Only a root this key opens gets a name.
  SR_RETURN_IF_ERROR(sf::SealedTree::OpenRoot(store, key, root).status());
  return store->UpdateRootNames(*key, [&](std::vector<sf::NamedRoot>& names) -> Status {
    std::erase_if(names, [&](const sf::NamedRoot& n) { return n.name == name; });
    names.push_back({name, root});
    return OkStatus();
  });
}

}  // namespace

int Roots(Args args) {
  if (args.empty() || (args[0] != "ls" && args[0] != "rm" && args[0] != "add")) {
    bool help = !args.empty() && (args[0] == "--help" || args[0] == "-h");
    (help ? std::cout : std::cerr)
        << "Usage: sealroot roots ls STORE | rm STORE NAME | add STORE NAME --root HEX  (--key-file F | "
           "--key-fd N)\n"
           "\nName the roots of a sealed store: gc keeps named (and mounted) roots and reclaims the rest.\n";
    return help ? cli::kExitOk : cli::kExitUsage;
  }
  const std::string sub = args[0];
  ArgParser p("sealroot roots " + sub, sub == "ls" ? "STORE" : "STORE NAME",
              sub == "ls" ? "List a store's roots with their names (unnamed ones as -: gc reclaims them)."
              : sub == "rm"
                  ? "Remove a root's name (gc then reclaims the root unless mounted or named again)."
                  : "Name a root of the store (replacing the name's previous root).");
  p.Option("key-file", "FILE", "the store key (root names are sealed under it)");
  p.Option("key-fd", "N", "read the store key from file descriptor N");
  if (sub == "add") p.Option("root", "HEX", "the root hash to name");
  const std::size_t positionals = sub == "ls" ? 1 : 2;
  return RunCommand(p, args.subspan(1), positionals, [&](const ArgParser& parser) -> Status {
    SR_ASSIGN_OR_RETURN(std::shared_ptr<const sf::StoreKey> key, LoadKey(parser));
    const sf::StoreLock lock = sub == "ls" ? sf::StoreLock::kNone : sf::StoreLock::kShared;
    SR_ASSIGN_OR_RETURN(std::shared_ptr<const sf::Store> store,
                        sf::Store::Open(parser.positionals()[0], false, lock));
    SR_RETURN_IF_ERROR(store->CheckKey(*key, /*bind=*/false));
    if (sub == "ls") return RootsList(parser, *store, *key);
    if (sub == "rm") return RootsRemove(parser.positionals()[1], *store, *key);
    return RootsAdd(parser, parser.positionals()[1], store, key);
  });
}

}  // namespace sealroot::tool
