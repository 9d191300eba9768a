# Project-wide compile settings, applied per target with sealroot_defaults(<target>).
set(SEALROOT_WARNINGS -Wall -Wextra -Wnon-virtual-dtor -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  list(APPEND SEALROOT_WARNINGS -Wthread-safety -Wshadow-uncaptured-local)
else()
  # gcc 12 also warns about designated initializers that leave members to their defaults (the
  # C++20 idiom this code uses for option structs), and at -O2 it reports overflows inside
  # libstdc++'s own std::string and std::vector code (gcc bugs 105329, 105651): noise, where
  # clang has none.
  list(APPEND SEALROOT_WARNINGS -Wshadow=local -Wno-missing-field-initializers)
  if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    list(APPEND SEALROOT_WARNINGS -Wno-restrict -Wno-stringop-overflow -Wno-stringop-overread -Wno-array-bounds)
  endif()
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
