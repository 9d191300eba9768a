# Demo step: the enclave-agent. Starts the agent (ttrpc on a unix socket and on loopback TCP, gRPC
# on a unix socket) with step 15's signature policy and decryption key, then drives it with
# `sealroot ctl` (ttrpc) and Python grpcio (gRPC, code generated from agent/proto): health,
# PullImage of the signed+encrypted image into the sealed store, a policy refusal, a container's
# records, removal, and a clean SIGTERM exit.

agent_dir=$DEMO_WORK/agent
mkdir -p "$agent_dir"
agent_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$agent_dir/agent.json" <<JSON
{"ttrpc": ["unix://$agent_dir/agent.sock", "tcp://127.0.0.1:$agent_port"],
 "grpc": ["unix://$agent_dir/agent-grpc.sock"],
 "state_dir": "$agent_dir/state", "store_dir": "$agent_dir/store",
 "trust": {"policy": "$trust_dir/policy.json", "registries_d": "$trust_dir/registries.d",
           "decryption_keys": ["$trust_dir/keys/layer.pem"]},
 "registry": {"tls_verify": false},
 "state_sealing": {"source": "file"}}
JSON
ctl() { "$SEALROOT_BIN/sealroot" ctl --address "unix://$agent_dir/agent.sock" "$@"; }

step "agent: enclave-agent --config $agent_dir/agent.json"
cat "$agent_dir/agent.json"
"$SEALROOT_BIN/enclave-agent" --config "$agent_dir/agent.json" >"$agent_dir/agent.log" 2>&1 &
agent_pid=$!
echo "kill $agent_pid 2>/dev/null" >>"$DEMO_WORK/cleanup"
for _ in $(seq 100); do ctl health >/dev/null 2>&1 && break; sleep 0.1; done
ctl status || { cat "$agent_dir/agent.log"; fail "the agent did not come up"; }

step "agent: sealroot ctl pull $enc_image (signed + encrypted) over ttrpc"
ctl pull "$enc_image" --container-id demo1 --json || { cat "$agent_dir/agent.log"; fail "PullImage"; }
ls "$agent_dir/store/images"
if grep -rqa 'BusyBox is a multi-call binary' "$agent_dir/store"; then fail "plaintext in the sealed store"; fi
echo "agent: the sealed store holds no plaintext of the image"

step "agent: PullImage of the unsigned $DEMO_IMAGE must be refused by the policy"
if ctl pull "$DEMO_IMAGE" --container-id demo2; then fail "the agent pulled an unsigned image"; fi

step "agent: gRPC from Python grpcio, code generated from agent/proto"
/usr/bin/python3 -m grpc_tools.protoc -I agent/proto --python_out="$agent_dir" --grpc_python_out="$agent_dir" \
  agent/proto/*.proto || fail "generating Python code"
/usr/bin/python3 - "$agent_dir" "$enc_image" <<'PY' || fail "gRPC client"
import sys
sys.path.insert(0, sys.argv[1])
import grpc, health_pb2, health_pb2_grpc, image_pb2, image_pb2_grpc, agent_pb2, agent_pb2_grpc
ch = grpc.insecure_channel("unix:" + sys.argv[1] + "/agent-grpc.sock")
print("Health/Check:", health_pb2.HealthCheckResponse.ServingStatus.Name(
    health_pb2_grpc.HealthStub(ch).Check(health_pb2.CheckRequest()).status))
print("PullImage (demo3, same image, reuses the sealed root):",
      image_pb2_grpc.ImageStub(ch).PullImage(image_pb2.PullImageRequest(image=sys.argv[2], container_id="demo3")).image_ref)
try:
    agent_pb2_grpc.AgentServiceStub(ch).PauseContainer(agent_pb2.PauseContainerRequest(container_id="demo3"))
except grpc.RpcError as e:
    print("PauseContainer:", e.code().name, "-", e.details())
PY

step "agent: sealroot ctl create demo1 -- /bin/tar c / (a host-chosen command): refused by the workload policy"
if ctl create demo1 -- /bin/tar c /; then fail "the agent accepted a host-chosen command"; fi

step "agent: sealroot ctl create demo1 (the image's own command); start (no boot configured here: step 90 runs the attested boot)"
ctl create demo1 || fail "CreateContainer"
if ctl start demo1; then echo "agent: started"; else echo "agent: StartContainer answered as documented above"; fi

step "agent: sealroot ctl rm demo1, demo3 (the image's sealed store goes with its last user)"
ctl rm demo1 || fail "RemoveContainer demo1"
ctl rm demo3 || fail "RemoveContainer demo3"
[[ -z $(ls "$agent_dir/store/images") ]] || fail "the image store outlived its containers"
echo "agent: store empty"

step "agent: SIGTERM -> clean exit"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent exited with $?"
echo "agent: exited cleanly"
