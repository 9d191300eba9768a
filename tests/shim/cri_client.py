#!/usr/bin/env python3
"""The shim's CRI test client: drives containerd's CRI plugin (gRPC, runtime.v1) the way kubelet
does, with stubs generated from tests/shim/cri.proto.

cri_client.py GEN_DIR SOCKET IMAGE LOG_DIR PODS CONTAINERS [NETWORK]
Runs PODS pods (RuntimeClass handler "sealroot"; NETWORK "node", the default, for host network,
or "pod" for the pod's own) at once, each with CONTAINERS containers of IMAGE: RunPodSandbox ->
the sandbox task's namespaces (PodSandboxStatus's pid, /proc/PID/ns) -> CreateContainer ->
StartContainer -> ContainerStatus until exited -> the log file -> RemoveContainer -> StopPodSandbox -> RemovePodSandbox. Prints one JSON
object: per container its state, exit code and log lines; per pod whether teardown succeeded and
its sandbox's network, ipc and uts namespaces ("POD/sandbox": "net:[N] ipc:[N] uts:[N]")."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import cri_pb2 as cri  # noqa: E402
import cri_pb2_grpc as cri_grpc  # noqa: E402

socket, image, log_dir, pods, containers = sys.argv[2:7]
network = cri.NODE if len(sys.argv) < 8 or sys.argv[7] == "node" else cri.POD
stub = cri_grpc.RuntimeServiceStub(grpc.insecure_channel("unix://" + socket))
results = {}
lock = threading.Lock()


def record(key, value):
    with lock:
        results[key] = value


def run_pod(index):
    name = "pod%d" % index
    pod_logs = os.path.join(log_dir, name)
    os.makedirs(pod_logs, exist_ok=True)
    config = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, uid="uid-" + name, namespace="default"),
        hostname=name, log_directory=pod_logs,
        linux=cri.LinuxPodSandboxConfig(security_context=cri.LinuxSandboxSecurityContext(
            namespace_options=cri.NamespaceOption(network=network))))
    try:
        pod_id = stub.RunPodSandbox(cri.RunPodSandboxRequest(config=config, runtime_handler="sealroot"),
                                    timeout=300).pod_sandbox_id
        info = stub.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True)).info
        pid = json.loads(info["info"])["pid"]
        record(name + "/sandbox",
               " ".join(os.readlink("/proc/%d/ns/%s" % (pid, ns)) for ns in ("net", "ipc", "uts")))
        ids = []
        for c in range(int(containers)):
            cname = "c%d" % c
            created = stub.CreateContainer(cri.CreateContainerRequest(
                pod_sandbox_id=pod_id, sandbox_config=config,
                config=cri.ContainerConfig(metadata=cri.ContainerMetadata(name=cname),
                                           image=cri.ImageSpec(image=image), log_path=cname + ".log")),
                timeout=300)
            ids.append((cname, created.container_id))
        for cname, cid in ids:
            stub.StartContainer(cri.StartContainerRequest(container_id=cid), timeout=300)
        for cname, cid in ids:
            deadline = time.time() + 120
            while True:
                status = stub.ContainerStatus(cri.ContainerStatusRequest(container_id=cid)).status
                if status.state == cri.CONTAINER_EXITED or time.time() > deadline:
                    break
                time.sleep(0.2)
            with open(os.path.join(pod_logs, cname + ".log")) as f:
                lines = f.read().splitlines()
            record(name + "/" + cname, {"state": cri.ContainerState.Name(status.state),
                                        "exit_code": status.exit_code, "log": lines})
        for cname, cid in ids:
            stub.RemoveContainer(cri.RemoveContainerRequest(container_id=cid), timeout=120)
        stub.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        stub.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        record(name, "removed")
    except grpc.RpcError as e:
        record(name, "error: %s: %s" % (e.code(), e.details()))


threads = [threading.Thread(target=run_pod, args=(i,)) for i in range(int(pods))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results, sort_keys=True))
