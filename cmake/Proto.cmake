# sealroot_proto_library(<target> [GRPC] PROTOS <name>...): C++ messages generated from
# proto/<name>.proto of the calling folder, compiled once into a static library whose generated
# headers (<name>.pb.h) are on its users' include path. GRPC also generates grpc++ service stubs
# (<name>.grpc.pb.h) and links grpc++.
function(sealroot_proto_library target)
  cmake_parse_arguments(P "GRPC" "" "PROTOS" ${ARGN})
  set(dir ${CMAKE_CURRENT_SOURCE_DIR}/proto)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/proto_gen)
  file(MAKE_DIRECTORY ${out})
  set(files)
  set(sources)
  set(grpc_args)
  foreach(name ${P_PROTOS})
    list(APPEND files ${dir}/${name}.proto)
    list(APPEND sources ${out}/${name}.pb.cc ${out}/${name}.pb.h)
    if(P_GRPC)
      list(APPEND sources ${out}/${name}.grpc.pb.cc ${out}/${name}.grpc.pb.h)
    endif()
  endforeach()
  if(P_GRPC)
    set(grpc_args --grpc_out=${out} --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN})
  endif()
  add_custom_command(
    OUTPUT ${sources}
    COMMAND ${PROTOC} --proto_path=${dir} --cpp_out=${out} ${grpc_args} ${files}
    DEPENDS ${files}
    COMMENT "Generating ${target} protobuf code"
    VERBATIM)
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUF)
  if(P_GRPC)
    target_link_libraries(${target} PUBLIC PkgConfig::GRPCPP)
  endif()
endfunction()
