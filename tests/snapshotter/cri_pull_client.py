#!/usr/bin/env python3
"""The snapshotter's CRI test client: PullImage through containerd's CRI (as kubelet does), then
one pod with one container of that image, with stubs generated from tests/shim/cri.proto and
tests/snapshotter/cri_image.proto.

cri_pull_client.py GEN_DIR SOCKET IMAGE HANDLER LOG_DIR [pull|run|pull-run]
Prints one JSON object: the pulled image_ref; the container's state, exit code and log lines;
whether the pod was removed; or the first error."""
import json
import os
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import cri_pb2 as cri  # noqa: E402
import cri_pb2_grpc as cri_grpc  # noqa: E402
import cri_image_pb2 as cri_image  # noqa: E402
import cri_image_pb2_grpc as cri_image_grpc  # noqa: E402

_, _, socket, image, handler, log_dir, what = sys.argv
channel = grpc.insecure_channel("unix://" + socket)
runtime = cri_grpc.RuntimeServiceStub(channel)
images = cri_image_grpc.ImageServiceStub(channel)
out = {}
try:
    if "pull" in what:
        out["image_ref"] = images.PullImage(
            cri_image.PullImageRequest(image=cri.ImageSpec(image=image)), timeout=300).image_ref
    if "run" in what:
        os.makedirs(log_dir, exist_ok=True)
        config = cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name="pod", uid="uid-pod", namespace="default"),
            hostname="pod", log_directory=log_dir,
            linux=cri.LinuxPodSandboxConfig(security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NODE))))
        pod_id = runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=config, runtime_handler=handler),
                                       timeout=300).pod_sandbox_id
        cid = runtime.CreateContainer(cri.CreateContainerRequest(
            pod_sandbox_id=pod_id, sandbox_config=config,
            config=cri.ContainerConfig(metadata=cri.ContainerMetadata(name="c"),
                                       image=cri.ImageSpec(image=image), log_path="c.log")),
            timeout=300).container_id
        runtime.StartContainer(cri.StartContainerRequest(container_id=cid), timeout=300)
        deadline = time.time() + 180
        while True:
            status = runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=cid)).status
            if status.state == cri.CONTAINER_EXITED or time.time() > deadline:
                break
            time.sleep(0.2)
        with open(os.path.join(log_dir, "c.log")) as f:
            out["log"] = f.read().splitlines()
        out["state"] = cri.ContainerState.Name(status.state)
        out["exit_code"] = status.exit_code
        runtime.RemoveContainer(cri.RemoveContainerRequest(container_id=cid), timeout=120)
        runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        out["pod"] = "removed"
except grpc.RpcError as e:
    out["error"] = "%s: %s" % (e.code(), e.details())
print(json.dumps(out, sort_keys=True))
