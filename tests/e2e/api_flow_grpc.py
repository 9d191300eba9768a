"""The whole container flow over gRPC, for tests/e2e/api_flow_test: Debian's grpcio with code
generated from the project's protos (the test runs grpc_tools.protoc into GEN_DIR first).

    api_flow_grpc.py GEN_DIR SOCKET IMAGE CONTAINER_ID COMMAND...

PullImage -> CreateContainer (process args COMMAND) -> StartContainer -> ReadStdout until EOF ->
WaitProcess -> RemoveContainer. Prints one JSON object: each call's code, the output, the status.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import agent_pb2  # noqa: E402
import agent_pb2_grpc  # noqa: E402
import image_pb2  # noqa: E402
import image_pb2_grpc  # noqa: E402
import oci_pb2  # noqa: E402


def code_of(fn, request):
    try:
        return "OK", fn(request, timeout=120)
    except grpc.RpcError as e:
        return e.code().name + ": " + e.details(), None


def main():
    socket, image, cid, command = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    channel = grpc.insecure_channel("unix:" + socket)
    agent = agent_pb2_grpc.AgentServiceStub(channel)
    out = {}
    out["pull"], _ = code_of(image_pb2_grpc.ImageStub(channel).PullImage,
                             image_pb2.PullImageRequest(image=image, container_id=cid))
    spec = oci_pb2.Spec(Process=oci_pb2.Process(Args=command, Cwd="/"))
    out["create"], _ = code_of(agent.CreateContainer, agent_pb2.CreateContainerRequest(container_id=cid, OCI=spec))
    out["start"], _ = code_of(agent.StartContainer, agent_pb2.StartContainerRequest(container_id=cid))
    stdout = b""
    while out["start"] == "OK":
        code, chunk = code_of(agent.ReadStdout, agent_pb2.ReadStreamRequest(container_id=cid, len=4096))
        if code != "OK" or not chunk.data:
            break
        stdout += chunk.data
    out["stdout"] = stdout.decode()
    out["wait"], status = code_of(agent.WaitProcess, agent_pb2.WaitProcessRequest(container_id=cid))
    out["status"] = status.status if status else None
    out["remove"], _ = code_of(agent.RemoveContainer, agent_pb2.RemoveContainerRequest(container_id=cid))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
