#include "tests/support/images.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/support/process.h"

namespace sealroot::testing {
namespace {

// Python's tarfile writes exactly what the spec says (including hostile names), in PAX format.
constexpr const char* kTarWriter = R"PY(
import io, sys, tarfile
h = lambda s: bytes.fromhex(s)
t_ = lambda s: h(s).decode('utf-8', 'surrogateescape')
with tarfile.open(sys.argv[2], 'w', format=tarfile.PAX_FORMAT) as out:
    for line in open(sys.argv[1]):
        f = line.rstrip('\n').split('\t')
        ti = tarfile.TarInfo(t_(f[1]))
        ti.type = f[0].encode()
        data = h(f[2])
        ti.linkname = t_(f[3])
        ti.mode, ti.uid, ti.gid, ti.mtime = int(f[4]), int(f[5]), int(f[6]), int(f[7])
        ti.devmajor, ti.devminor = int(f[8]), int(f[9])
        ti.uname = ti.gname = ''
        if f[10]:
            ti.pax_headers = {'SCHILY.xattr.' + t_(k): t_(v) for k, v in (kv.split(':') for kv in f[10].split(','))}
        if ti.type == tarfile.REGTYPE:
            ti.size = len(data)
            out.addfile(ti, io.BytesIO(data))
        else:
            out.addfile(ti)
)PY";

// Builds an index over two tagged manifests of one layout.
constexpr const char* kIndexWriter = R"PY(
import hashlib, json, sys
d, tag, amd, arm = sys.argv[1:5]
idx = json.load(open(d + '/index.json'))
by_tag = {m.get('annotations', {}).get('org.opencontainers.image.ref.name'): m for m in idx['manifests']}
def entry(t, plat):
    m = dict(by_tag[t]); m.pop('annotations', None); m['platform'] = plat; return m
body = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': [
    entry(amd, {'os': 'linux', 'architecture': 'amd64'}),
    entry(arm, {'os': 'linux', 'architecture': 'arm64', 'variant': 'v8'})]}).encode()
digest = hashlib.sha256(body).hexdigest()
open(d + '/blobs/sha256/' + digest, 'wb').write(body)
idx['manifests'].append({'mediaType': 'application/vnd.oci.image.index.v1+json', 'digest': 'sha256:' + digest,
    'size': len(body), 'annotations': {'org.opencontainers.image.ref.name': tag}})
json.dump(idx, open(d + '/index.json', 'w'))
)PY";

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += {kDigits[c >> 4], kDigits[c & 15]};
  return out;
}

void Check(const CommandResult& r, const std::string& what) {
  if (!r.ok())
    throw std::runtime_error(what + " failed (" + std::to_string(r.exit_code) + "): " + r.err + r.out);
}

void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

TarEntry Dir(std::string name, std::uint32_t mode = 0755, std::int64_t mtime = 1600000000) {
  TarEntry e;
  e.type = TarEntry::kDir;
  e.name = std::move(name);
  e.mode = mode;
  e.mtime = mtime;
  return e;
}

TarEntry File(std::string name, std::string data, std::uint32_t mode = 0644, std::uint32_t uid = 0,
              std::uint32_t gid = 0) {
  TarEntry e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.mode = mode;
  e.uid = uid;
  e.gid = gid;
  return e;
}

TarEntry Link(TarEntry::Type type, std::string name, std::string target) {
  TarEntry e;
  e.type = type;
  e.name = std::move(name);
  e.link = std::move(target);
  e.mode = 0777;
  return e;
}

// Rewrites the manifest tagged argv[2] so that its last layer appears argv[4] times, tags the
// result argv[3] (same config otherwise, DiffIDs repeated to match).
constexpr const char* kLayerRepeater = R"PY(
import hashlib, json, sys
d, tag, new_tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def blob(digest): return json.load(open(d + '/blobs/sha256/' + digest[7:]))
def put(obj):
    body = json.dumps(obj).encode()
    digest = hashlib.sha256(body).hexdigest()
    open(d + '/blobs/sha256/' + digest, 'wb').write(body)
    return 'sha256:' + digest, len(body)
idx = json.load(open(d + '/index.json'))
entry = next(m for m in idx['manifests'] if m.get('annotations', {}).get('org.opencontainers.image.ref.name') == tag)
manifest = blob(entry['digest'])
config = blob(manifest['config']['digest'])
config['rootfs']['diff_ids'] = [config['rootfs']['diff_ids'][-1]] * count
config.pop('history', None)
manifest['config']['digest'], manifest['config']['size'] = put(config)
manifest['layers'] = [manifest['layers'][-1]] * count
digest, size = put(manifest)
idx['manifests'].append({'mediaType': entry['mediaType'], 'digest': digest, 'size': size,
    'annotations': {'org.opencontainers.image.ref.name': new_tag}})
json.dump(idx, open(d + '/index.json', 'w'))
)PY";

}  // namespace

void WriteTar(const std::string& path, const std::vector<TarEntry>& entries) {
  std::ostringstream spec;
  for (const TarEntry& e : entries) {
    std::string xattrs;
    for (const auto& [k, v] : e.xattrs) xattrs += (xattrs.empty() ? "" : ",") + Hex(k) + ":" + Hex(v);
    spec << static_cast<char>(e.type) << '\t' << Hex(e.name) << '\t' << Hex(e.data) << '\t' << Hex(e.link)
         << '\t' << e.mode << '\t' << e.uid << '\t' << e.gid << '\t' << e.mtime << '\t' << e.major << '\t'
         << e.minor << '\t' << xattrs << '\n';
  }
  std::string spec_path = path + ".spec";
  std::ofstream(spec_path) << spec.str();
  Check(Run({"/usr/bin/python3", "-c", kTarWriter, spec_path, path}), "writing tar " + path);
  std::filesystem::remove(spec_path);
}

std::string NewLayoutImage(const std::string& dir, const std::string& tag) {
  if (!std::filesystem::exists(dir + "/oci-layout"))
    Check(Run({"umoci", "init", "--layout", dir}), "umoci init");
  std::string ref = "oci:" + dir + ":" + tag;
  Check(Run({"umoci", "new", "--image", dir + ":" + tag}), "umoci new");
  return ref;
}

void AddLayer(const std::string& ref, const std::string& tar_path) {
  Check(Run({"umoci", "raw", "add-layer", "--image", ref.substr(4), tar_path}), "umoci raw add-layer");
}

void AddZerosLayer(const std::string& ref, const std::string& work_dir, std::uint64_t bytes) {
  // A sparse file costs no disk; tar writes its zeros out and umoci gzips them (~1000:1).
  const std::string dir = work_dir + "/zeros-layer";
  Check(Shell("rm -rf " + dir + " && mkdir -p " + dir + "/root && truncate -s " + std::to_string(bytes) +
              " " + dir + "/root/zeros && tar -C " + dir + "/root -cf " + dir + "/layer.tar zeros"),
        "making a layer of zeros");
  AddLayer(ref, dir + "/layer.tar");
  std::filesystem::remove_all(dir);
}

std::string RepeatLastLayer(const std::string& ref, const std::string& new_tag, std::size_t count) {
  const std::string layout = ref.substr(4, ref.rfind(':') - 4);
  const std::string tag = ref.substr(ref.rfind(':') + 1);
  Check(Run({"/usr/bin/python3", "-c", kLayerRepeater, layout, tag, new_tag, std::to_string(count)}),
        "repeating a layer");
  return "oci:" + layout + ":" + new_tag;
}

void ConfigureImage(const std::string& ref, const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {"umoci", "config", "--image", ref.substr(4)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  Check(Run(argv), "umoci config");
}

std::string BuildBusyboxImage(const std::string& dir, const std::string& tag) {
  std::string ref = NewLayoutImage(dir, tag);
  TempDir work;
  std::string bundle = work / "bundle";
  Check(Run({"umoci", "unpack", "--image", ref.substr(4), bundle}), "umoci unpack (empty)");
  std::string root = bundle + "/rootfs";
  Check(Shell("set -e; cd " + root +
              "; mkdir -p bin sbin usr/bin usr/sbin etc root tmp; chmod 1777 tmp; "
              "cp /bin/busybox bin/busybox; chroot . /bin/busybox --install -s"),
        "installing busybox");
  WriteText(root + "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
  WriteText(root + "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
  Check(Run({"umoci", "repack", "--image", ref.substr(4), bundle}), "umoci repack");
  ConfigureImage(ref,
                 {"--config.entrypoint=/bin/sh", "--config.cmd=-c", "--config.cmd=echo hello from busybox",
                  "--config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin", "--config.workingdir=/root"});
  return ref;
}

std::string BuildFeatureRichImage(const std::string& dir, const std::string& tag) {
  std::string ref = NewLayoutImage(dir, tag);
  TempDir work;
  TarEntry suid = File("modes/suid", "#!/bin/sh\n", 04755);
  TarEntry noted = File("data/a.txt", "alpha\n", 0644, 1000, 1000);
  noted.xattrs = {{"user.note", "hello"}, {"user.other", "x=y"}};
  TarEntry fifo;
  fifo.type = TarEntry::kFifo;
  fifo.name = "dev/fifo";
  TarEntry chr;
  chr.type = TarEntry::kChar;
  chr.name = "dev/null";
  chr.mode = 0666;
  chr.major = 1;
  chr.minor = 3;
  std::vector<TarEntry> l1 = {
      Dir("./"),
      Dir("etc/"),
      File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
      File("etc/group", "root:x:0:\napp:x:1000:\nextra:x:2000:app\n"),
      Dir("data/", 0755, 1500000000),
      noted,
      File("data/gone.txt", "bye\n"),
      Dir("data/gonedir/"),
      File("data/gonedir/inner.txt", "inner\n"),
      Dir("opq/"),
      File("opq/lower1.txt", "lower\n"),
      Dir("opq/lowerdir/"),
      File("opq/lowerdir/x", "x\n"),
      Dir("links/"),
      File("links/target.txt", "target\n", 0640, 1000, 2000),
      Link(TarEntry::kHardLink, "links/hard1", "links/target.txt"),
      Dir("other/"),
      Link(TarEntry::kHardLink, "other/hard2", "links/target.txt"),
      Link(TarEntry::kSymlink, "links/abs", "/etc/passwd"),
      Link(TarEntry::kSymlink, "links/rel", "../data/a.txt"),
      Link(TarEntry::kSymlink, "links/dangling", "/nonexistent/file"),
      Dir("modes/"),
      suid,
      File("modes/sgid", "sgid\n", 02755),
      Dir("modes/sticky/", 01777),
      Dir("modes/sgiddir/", 02775),
      File("modes/private", "private\n", 0600, 1000, 1000),
      Dir("long/"),
      File("long/" + std::string(200, 'n'), "long name\n"),
      Dir("dev/"),
      fifo,
      chr,
      File("dup.txt", "first\n"),
      File("dup.txt", "second\n", 0600),
      Dir("home/"),
      Dir("home/app/", 0700),
      Dir("usr/"),
      Dir("usr/bin/")};
  l1.back().mtime = 1400000000;
  TarEntry noted2 = File("data/a.txt", "alpha2\n", 0640, 1000, 1000);
  noted2.xattrs = {{"user.note", "layer2"}};
  std::vector<TarEntry> l2 = {File("data/.wh.gone.txt", ""),
                              File("data/.wh.gonedir", ""),
                              Dir("opq/", 0750, 1550000000),
                              File("opq/new.txt", "new\n"),
                              File("opq/.wh..wh..opq", ""),
                              File("links/target.txt", "replaced\n"),
                              noted2,
                              File("newdir/sub/file.txt", "implicit parents\n")};
  TarEntry suid_owned = File("modes/suid", "#!/bin/sh\necho v3\n", 04750, 1000, 1000);
  std::vector<TarEntry> l3 = {suid_owned,
                              Dir("data/", 0750, 1510000000),
                              Dir("links/rel/"),
                              File("links/rel/inside.txt", "now a dir\n"),
                              Link(TarEntry::kSymlink, "dup.txt", "data/a.txt"),
                              File("usr/bin/app", "#!/bin/sh\necho app\n", 0755)};
  int n = 0;
  for (const auto* layer : {&l1, &l2, &l3}) {
    std::string tar = work / ("layer" + std::to_string(++n) + ".tar");
    WriteTar(tar, *layer);
    AddLayer(ref, tar);
  }
  ConfigureImage(ref, {"--config.entrypoint=/usr/bin/app", "--config.entrypoint=--flag", "--config.cmd=serve",
                       "--config.env=PATH=/usr/bin", "--config.env=APP_MODE=test",
                       "--config.workingdir=/data", "--config.user=app"});
  return ref;
}

std::string BuildMultiPlatformImage(const std::string& dir, const std::string& tag) {
  std::string amd = tag + "-amd64", arm = tag + "-arm64";
  BuildBusyboxImage(dir, amd);
  std::string arm_ref = BuildBusyboxImage(dir, arm);
  TempDir work;
  WriteTar(work / "platform.tar", {File("platform", "arm64\n")});
  AddLayer(arm_ref, work / "platform.tar");
  ConfigureImage(arm_ref, {"--architecture=arm64"});
  Check(Run({"/usr/bin/python3", "-c", kIndexWriter, dir, tag, amd, arm}), "writing the index");
  return "oci:" + dir + ":" + tag;
}

std::string MakeZstdTwin(const std::string& ref, const std::string& dest_dir, const std::string& tag) {
  std::string dest = "oci:" + dest_dir + ":" + tag;
  Check(Run({"skopeo", "--insecure-policy", "copy", "--quiet", "--dest-compress-format", "zstd", ref, dest}),
        "skopeo copy (zstd)");
  return dest;
}

void UmociUnpack(const std::string& ref, const std::string& bundle, bool rootless) {
  std::vector<std::string> argv = {"umoci", "unpack"};
  if (rootless) argv.push_back("--rootless");
  argv.insert(argv.end(), {"--image", ref.substr(4), bundle});
  Check(Run(argv), "umoci unpack " + ref);
}

Tree ScanTree(const std::string& root) {
  Tree tree;
  std::map<std::pair<dev_t, ino_t>, std::string> first_path;
  std::vector<std::string> paths = {""};
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    paths.push_back(std::filesystem::relative(e.path(), root).string());
  }
  std::sort(paths.begin(), paths.end());
  for (const std::string& rel : paths) {
    std::string full = rel.empty() ? root : root + "/" + rel;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) throw std::runtime_error("lstat " + full);
    TreeNode n;
    n.type = S_ISREG(st.st_mode)    ? 'f'
             : S_ISDIR(st.st_mode)  ? 'd'
             : S_ISLNK(st.st_mode)  ? 'l'
             : S_ISCHR(st.st_mode)  ? 'c'
             : S_ISBLK(st.st_mode)  ? 'b'
             : S_ISFIFO(st.st_mode) ? 'p'
                                    : 's';
    n.mode = st.st_mode & 07777;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    if (n.type == 'f' || n.type == 'l') n.mtime = st.st_mtim.tv_sec;
    if (n.type == 'f') n.size = static_cast<std::uint64_t>(st.st_size);
    if (n.type == 'c' || n.type == 'b') n.rdev = st.st_rdev;
    if (n.type == 'l') n.link = std::filesystem::read_symlink(full).string();
    if (n.type == 'f' && st.st_nlink > 1) {
      auto [it, inserted] = first_path.emplace(std::make_pair(st.st_dev, st.st_ino), rel);
      n.hardlink_group = it->second;
    }
    char names[4096];
    ssize_t len = ::llistxattr(full.c_str(), names, sizeof(names));
    for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(std::strlen(names + i)) + 1) {
      char value[4096];
      ssize_t vlen = ::lgetxattr(full.c_str(), names + i, value, sizeof(value));
      n.xattrs.emplace_back(names + i, std::string(value, vlen > 0 ? static_cast<std::size_t>(vlen) : 0));
    }
    std::sort(n.xattrs.begin(), n.xattrs.end());
    tree[rel] = std::move(n);
  }
  // One sha256sum run for every regular file.
  auto hashes = Shell("cd '" + root + "' && find . -type f -print0 | xargs -0 -r sha256sum");
  Check(hashes, "sha256sum");
  std::istringstream lines(hashes.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() < 68) continue;
    std::string rel = line.substr(66);
    if (rel.starts_with("./")) rel = rel.substr(2);
    if (auto it = tree.find(rel); it != tree.end()) it->second.sha256 = line.substr(0, 64);
  }
  return tree;
}

std::string DiffTrees(const Tree& expected, const Tree& actual, std::size_t max_lines) {
  std::ostringstream out;
  std::size_t lines = 0;
  auto note = [&](const std::string& path, const std::string& what) {
    if (lines++ < max_lines) out << "  /" << path << ": " << what << "\n";
  };
  for (const auto& expected_entry : expected) {
    const std::string& path = expected_entry.first;  // named (not bound): lambdas capture it
    const TreeNode& e = expected_entry.second;
    auto it = actual.find(path);
    if (it == actual.end()) {
      note(path, "missing");
      continue;
    }
    const TreeNode& a = it->second;
    auto cmp = [&](const char* field, const auto& want, const auto& got) {
      if (!(want == got)) {
        std::ostringstream s;
        s << field << " expected " << want << ", got " << got;
        note(path, s.str());
      }
    };
    cmp("type", e.type, a.type);
    cmp("mode", std::to_string(e.mode), std::to_string(a.mode));
    cmp("uid", e.uid, a.uid);
    cmp("gid", e.gid, a.gid);
    cmp("size", e.size, a.size);
    cmp("sha256", e.sha256, a.sha256);
    cmp("link", e.link, a.link);
    cmp("mtime", e.mtime, a.mtime);
    cmp("rdev", e.rdev, a.rdev);
    cmp("hardlink group", e.hardlink_group, a.hardlink_group);
    if (e.xattrs != a.xattrs) note(path, "xattrs differ");
  }
  for (const auto& [path, a] : actual) {
    if (!expected.count(path)) note(path, "unexpected");
  }
  if (lines > max_lines) out << "  ... " << (lines - max_lines) << " more\n";
  return out.str();
}

}  // namespace sealroot::testing
