# Project-wide compile settings, applied per target with sealroot_defaults(<target>).
set(SEALROOT_WARNINGS -Wall -Wextra -Wshadow=local -Wnon-virtual-dtor -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  list(APPEND SEALROOT_WARNINGS -Wthread-safety)
endif()
if(SEALROOT_WERROR)
  list(APPEND SEALROOT_WARNINGS -Werror)
endif()

if(SEALROOT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

function(sealroot_defaults target)
  target_compile_options(${target} PRIVATE ${SEALROOT_WARNINGS})
  target_compile_definitions(${target} PRIVATE SEALROOT_VERSION="${PROJECT_VERSION}")
endfunction()
