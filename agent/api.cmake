# The agent API: protos, the sealroot_agent library (service, ttrpc and gRPC servers,
# records, config) and the enclave-agent daemon. Included from agent/CMakeLists.txt.

# Generated protobuf code, compiled once. Only messages are generated: the gRPC server is a
# generic service over the same dispatcher as ttrpc, so no grpc_cpp_plugin stubs are needed.
set(SEALROOT_AGENT_PROTOS agent health image oci ttrpc)
set(SEALROOT_AGENT_PROTO_DIR ${CMAKE_CURRENT_SOURCE_DIR}/proto)
set(SEALROOT_AGENT_PROTO_OUT ${CMAKE_CURRENT_BINARY_DIR}/proto_gen)
file(MAKE_DIRECTORY ${SEALROOT_AGENT_PROTO_OUT})
set(_agent_proto_sources)
set(_agent_proto_files)
foreach(name ${SEALROOT_AGENT_PROTOS})
  list(APPEND _agent_proto_files ${SEALROOT_AGENT_PROTO_DIR}/${name}.proto)
  list(APPEND _agent_proto_sources ${SEALROOT_AGENT_PROTO_OUT}/${name}.pb.cc ${SEALROOT_AGENT_PROTO_OUT}/${name}.pb.h)
endforeach()
add_custom_command(
  OUTPUT ${_agent_proto_sources}
  COMMAND ${PROTOC} --proto_path=${SEALROOT_AGENT_PROTO_DIR} --cpp_out=${SEALROOT_AGENT_PROTO_OUT} ${_agent_proto_files}
  DEPENDS ${_agent_proto_files}
  COMMENT "Generating agent protobuf code"
  VERBATIM)
add_library(sealroot_agent_proto STATIC ${_agent_proto_sources})
target_include_directories(sealroot_agent_proto SYSTEM PUBLIC ${SEALROOT_AGENT_PROTO_OUT})
target_link_libraries(sealroot_agent_proto PUBLIC PkgConfig::PROTOBUF)

add_library(sealroot_agent STATIC
  server/src/agent.cc
  server/src/blocking_calls.cc
  server/src/boot_runtime.cc
  server/src/call_context.cc
  server/src/config.cc
  server/src/container_keys.cc
  server/src/dispatcher.cc
  server/src/executor.cc
  server/src/grpc_server.cc
  server/src/key_broker.cc
  server/src/listen.cc
  server/src/oci_defaults.cc
  server/src/oci_spec.cc
  server/src/oci_spec_parse.cc
  server/src/pipeline_puller.cc
  server/src/private_dir.cc
  server/src/pulls.cc
  server/src/reachability.cc
  server/src/records.cc
  server/src/runtime.cc
  server/src/service_impl.cc
  server/src/state_sealer.cc
  server/src/ttrpc_server.cc
  server/src/ttrpc_service.cc
  server/src/ttrpc_wire.cc
  server/src/validate.cc
  server/src/watched_process.cc
  server/src/workload_policy.cc
)
target_include_directories(sealroot_agent PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(sealroot_agent
  PUBLIC sealroot_agent_proto sealroot_boot_spec sealroot_local_attest sealroot_kbs sealroot_base nlohmann_json::nlohmann_json
  PRIVATE sealroot_sealing sealroot_image sealroot_stub_enclave PkgConfig::GRPCPP)
sealroot_defaults(sealroot_agent)

add_executable(enclave-agent enclave_agent_main.cc)
target_link_libraries(enclave-agent PRIVATE sealroot_agent sealroot_base)
sealroot_defaults(enclave-agent)
