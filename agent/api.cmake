# The agent API: protos, the sealroot_agent library (service, dispatcher, gRPC server,
# records, config; ttrpc comes from rpc/) and the enclave-agent daemon. Included from agent/CMakeLists.txt.

# Generated protobuf code, compiled once. Only messages are generated: the gRPC server is a
# generic service over the same dispatcher as ttrpc, so no grpc_cpp_plugin stubs are needed.
sealroot_proto_library(sealroot_agent_proto PROTOS agent health image oci)
add_subdirectory(spec)

add_library(sealroot_agent STATIC
  server/src/agent.cc
  server/src/boot_runtime.cc
  server/src/config.cc
  server/src/container_keys.cc
  server/src/dispatcher.cc
  server/src/grpc_server.cc
  server/src/key_broker.cc
  server/src/pipeline_puller.cc
  server/src/private_dir.cc
  server/src/pulls.cc
  server/src/reachability.cc
  server/src/records.cc
  server/src/runtime.cc
  server/src/service_impl.cc
  server/src/state_sealer.cc
  server/src/validate.cc
  server/src/watched_process.cc
  server/src/workload_policy.cc
)
target_include_directories(sealroot_agent PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(sealroot_agent
  PUBLIC sealroot_agent_proto sealroot_agent_spec sealroot_rpc sealroot_boot_spec sealroot_local_attest sealroot_kbs sealroot_base nlohmann_json::nlohmann_json
  PRIVATE sealroot_sealing sealroot_image sealroot_stub_enclave PkgConfig::GRPCPP)
sealroot_defaults(sealroot_agent)

add_executable(enclave-agent enclave_agent_main.cc)
target_link_libraries(enclave-agent PRIVATE sealroot_agent sealroot_base)
sealroot_defaults(enclave-agent)
