// From containerd's bundle to the agent's API: the OCI runtime config (config.json) of a
// container, or the process of an exec, as the kata-compatible grpc.Spec / grpc.Process the
// agent's CreateContainer and ExecProcess take. Host paths of the bundle (root.path, the rootfs
// containerd prepared) are not carried: a confidential container's root comes from the image the
// agent pulls. Namespace paths are carried as given; JoinPodNamespaces decides which of them a
// pod's container joins (design/shim.md).
#pragma once

#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "oci.pb.h"

namespace sealroot::shim {

Result<::grpc::Spec> SpecFromOci(const nlohmann::json& config);
Result<::grpc::Process> ProcessFromOci(const nlohmann::json& process);
// OCI linux.resources (what containerd's Task.Update carries) for the agent's UpdateContainer.
Result<::grpc::LinuxResources> ResourcesFromOci(const nlohmann::json& resources);

// A spec containerd built without the image (`ctr run`: the image is only named by annotation)
// carries containerd's defaults for the user (0:0) and the working directory ("/"); those are
// cleared so that the image's own values apply, as they would through the CRI.
void LeaveImageDefaults(::grpc::Spec& spec);
// The same for an exec in such a container (ctr copies the container's process into it).
void LeaveImageDefaults(::grpc::Process& process);

// containerd's default spec (ctr) mounts a tmpfs on /run; the CRI leaves it out so that the
// image's /run applies, and so does the shim: the workload policy refuses a mount that covers
// part of the sealed image.
void DropRunTmpfs(::grpc::Spec& spec);

// The CRI binds the pod sandbox's /dev/shm (a host tmpfs shared through the pause container)
// into each container: in a stub enclave there is no such sharing, and the workload policy
// refuses host binds, so the container gets its own shm tmpfs instead (as runc's default).
void PrivateDevShm(::grpc::Spec& spec);

// The mount type of a volume in the container's own sealed root (design/api.md): the boot makes
// the destination a directory of the sealed root, so what the container writes there is sealed
// with the rest of its writable layer.
inline constexpr char kSealedVolumeType[] = "sealroot.volume";
// How a `ctr run` user asks for such volumes: comma-separated destinations.
inline constexpr char kSealedVolumesAnnotation[] = "io.sealroot.sealed-volumes";

// Kubernetes emptyDir volumes (the CRI's bind of kubelet's
// .../volumes/kubernetes.io~empty-dir/NAME) and the destinations kSealedVolumesAnnotation lists
// become sealed volumes instead of host directories, so their contents never reach the host in
// plaintext; a listed destination without a mount gets one. Other mounts stay: host binds are
// the workload policy's to allow (the agent refuses undeclared ones).
Status SealVolumes(::grpc::Spec& spec, const std::map<std::string, std::string>& annotations);

// A namespace of the pod that its pause process holds for the pod's containers: the sandbox
// spec's network, ipc or uts namespace, joined when `path` is given (the CRI's CNI network
// namespace), else new. A type the sandbox spec leaves out is the host's (a host-network pod):
// the pause process stays in it and holds none of that type.
struct PodNamespace {
  std::string type;  // "network", "ipc" or "uts"
  std::string path;
};
Result<std::vector<PodNamespace>> SandboxNamespaces(const nlohmann::json& config);

// The CRI makes a container share its pod's namespaces by naming the sandbox task's (the pause
// process's) /proc/<pid>/ns/<name>. A type `pause` holds keeps the path: the container joins the
// pod's namespace. A type of the pod the pause does not hold is the host's, as under runc: the
// entry goes, so the container shares it with the runtime (the agent's workload policy decides
// whether it may). Any other /proc path (another process's, or a PID namespace, which the pause
// does not hold) becomes a new namespace of the container's own. Other paths stay.
void JoinPodNamespaces(::grpc::Spec& spec, pid_t pause, std::span<const PodNamespace> held);

// config.json's "annotations" (empty when absent).
std::map<std::string, std::string> Annotations(const nlohmann::json& config);

}  // namespace sealroot::shim
