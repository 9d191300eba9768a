# Image trust: signature policy (containers-policy.json, simple signing, cosign) and ocicrypt
# layer decryption, compiled into sealroot_image (design/trust.md).

# The key-provider gRPC protocol, generated once into its own small library.
set(_kp_proto ${PROJECT_SOURCE_DIR}/image/trust/keyprovider.proto)
set(_kp_out ${CMAKE_CURRENT_BINARY_DIR}/trust_proto)
set(_kp_srcs ${_kp_out}/keyprovider.pb.cc ${_kp_out}/keyprovider.grpc.pb.cc)
add_custom_command(
  OUTPUT ${_kp_srcs} ${_kp_out}/keyprovider.pb.h ${_kp_out}/keyprovider.grpc.pb.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_kp_out}
  COMMAND ${PROTOC} -I ${PROJECT_SOURCE_DIR}/image/trust --cpp_out=${_kp_out} --grpc_out=${_kp_out}
          --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN} ${_kp_proto}
  DEPENDS ${_kp_proto}
  COMMENT "protoc keyprovider.proto")
add_library(sealroot_keyprovider_proto STATIC ${_kp_srcs})
target_include_directories(sealroot_keyprovider_proto SYSTEM PUBLIC ${_kp_out})
target_link_libraries(sealroot_keyprovider_proto PUBLIC PkgConfig::GRPCPP PkgConfig::PROTOBUF)
set_target_properties(sealroot_keyprovider_proto PROPERTIES POSITION_INDEPENDENT_CODE ON)

pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
if(NOT TARGET PkgConfig::RNP)
  message(FATAL_ERROR "image trust needs librnp (Debian: librnp-dev) for simple signing")
endif()

set(_trust ${CMAKE_CURRENT_LIST_DIR})
target_sources(sealroot_image PRIVATE
  ${_trust}/docker_ref.cc
  ${_trust}/identity.cc
  ${_trust}/inspect.cc
  ${_trust}/jwe.cc
  ${_trust}/keyprovider_client.cc
  ${_trust}/keyprovider_protocol.cc
  ${_trust}/layer_cipher.cc
  ${_trust}/decryptor.cc
  ${_trust}/lookaside.cc
  ${_trust}/options.cc
  ${_trust}/pkcs7.cc
  ${_trust}/policy.cc
  ${_trust}/private_keys.cc
  ${_trust}/signatures.cc
  ${_trust}/sigstore.cc
  ${_trust}/simple_signing.cc
  ${_trust}/strict_json.cc
  ${_trust}/verifier.cc
)
target_link_libraries(sealroot_image PRIVATE
  nlohmann_json::nlohmann_json PkgConfig::RNP PkgConfig::CURL
  PkgConfig::YAML)
# The key-provider service (`sealroot keyprovider`) reuses the protocol helpers and the proto.
target_link_libraries(sealroot_image PUBLIC sealroot_keyprovider_proto)
