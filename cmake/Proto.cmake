# sealroot_proto_library(<target> PROTOS <name>...): C++ messages (no gRPC stubs) generated from
# proto/<name>.proto of the calling folder, compiled once into a static library whose generated
# headers (<name>.pb.h) are on its users' include path.
function(sealroot_proto_library target)
  cmake_parse_arguments(P "" "" "PROTOS" ${ARGN})
  set(dir ${CMAKE_CURRENT_SOURCE_DIR}/proto)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/proto_gen)
  file(MAKE_DIRECTORY ${out})
  set(files)
  set(sources)
  foreach(name ${P_PROTOS})
    list(APPEND files ${dir}/${name}.proto)
    list(APPEND sources ${out}/${name}.pb.cc ${out}/${name}.pb.h)
  endforeach()
  add_custom_command(
    OUTPUT ${sources}
    COMMAND ${PROTOC} --proto_path=${dir} --cpp_out=${out} ${files}
    DEPENDS ${files}
    COMMENT "Generating ${target} protobuf code"
    VERBATIM)
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUF)
endfunction()
