"""An independent gRPC client for the agent tests: Debian's grpcio, with code generated from the
project's protos at test time (the test runs grpc_tools.protoc into GEN_DIR first).

    grpc_client.py GEN_DIR SOCKET SCENARIO [ARGS...]

Prints one JSON object with what each call answered ({"code": "OK"|"NOT_FOUND"..., ...}).
"""
import concurrent.futures
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import agent_pb2  # noqa: E402
import agent_pb2_grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
import image_pb2  # noqa: E402
import image_pb2_grpc  # noqa: E402


def call(fn, request):
    try:
        response = fn(request, timeout=120)
        return {"code": "OK", "response": response}
    except grpc.RpcError as e:
        return {"code": e.code().name, "message": e.details()}


def plain(result):
    out = dict(result)
    out.pop("response", None)
    return out


def basic(channel):
    agent = agent_pb2_grpc.AgentServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    out = {}
    check = call(health.Check, health_pb2.CheckRequest())
    out["check"] = plain(check)
    if check["code"] == "OK":
        out["check"]["status"] = health_pb2.HealthCheckResponse.ServingStatus.Name(check["response"].status)
    version = call(health.Version, health_pb2.CheckRequest())
    out["version"] = plain(version)
    if version["code"] == "OK":
        out["version"]["agent_version"] = version["response"].agent_version
    out["pause"] = plain(call(agent.PauseContainer, agent_pb2.PauseContainerRequest(container_id="c1")))
    spec = agent_pb2.oci__pb2.Spec()
    spec.Process.Args.append("/bin/true")
    spec.Process.Cwd = "/"
    out["create_unknown"] = plain(call(agent.CreateContainer,
                                       agent_pb2.CreateContainerRequest(container_id="nobody", OCI=spec)))
    out["create_no_spec"] = plain(call(agent.CreateContainer, agent_pb2.CreateContainerRequest(container_id="c1")))
    out["start_unknown"] = plain(call(agent.StartContainer, agent_pb2.StartContainerRequest(container_id="nobody")))
    out["exec"] = plain(call(agent.ExecProcess, agent_pb2.ExecProcessRequest(container_id="c1", exec_id="e1")))
    raw = lambda b: b  # noqa: E731
    unknown = channel.unary_unary("/grpc.AgentService/NoSuchMethod", request_serializer=raw,
                                  response_deserializer=raw)
    out["unknown_method"] = plain(call(unknown, b""))
    garbage = channel.unary_unary("/grpc.AgentService/CreateContainer", request_serializer=raw,
                                  response_deserializer=raw)
    out["garbage_payload"] = plain(call(garbage, b"\xff\xff\xff\xff\x0f"))
    return out


def pull(channel, image, container_id, creds=""):
    stub = image_pb2_grpc.ImageStub(channel)
    result = call(stub.PullImage, image_pb2.PullImageRequest(image=image, container_id=container_id,
                                                             source_creds=creds))
    out = plain(result)
    if result["code"] == "OK":
        out["image_ref"] = result["response"].image_ref
    return out


def pulls(channel, n, *images):
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(n)) as pool:
        futures = [pool.submit(pull, channel, images[i % len(images)], "load-%d" % i) for i in range(int(n))]
        return {"results": [f.result() for f in futures]}


def health_load(channel, n):
    stub = health_pb2_grpc.HealthStub(channel)
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(n)) as pool:
        futures = [pool.submit(call, stub.Check, health_pb2.CheckRequest()) for _ in range(int(n))]
        results = [f.result() for f in futures]
    serving = sum(1 for r in results if r["code"] == "OK" and r["response"].status == 1)
    return {"serving": serving}


def main():
    channel = grpc.insecure_channel("unix:" + sys.argv[2])
    scenario, args = sys.argv[3], sys.argv[4:]
    handlers = {"basic": basic, "pull": pull, "pulls": pulls, "health": health_load}
    print(json.dumps(handlers[scenario](channel, *args)))


if __name__ == "__main__":
    main()
