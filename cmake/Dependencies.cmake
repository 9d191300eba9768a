# Every third-party dependency comes from Debian 12 packages (scripts/install-deps).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)
pkg_check_modules(FUSE3 REQUIRED IMPORTED_TARGET fuse3)
pkg_check_modules(LIBSECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(ISAL IMPORTED_TARGET libisal)
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
pkg_check_modules(PROTOBUF REQUIRED IMPORTED_TARGET protobuf)
pkg_check_modules(RNP IMPORTED_TARGET librnp)
find_program(PROTOC protoc REQUIRED)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

# A target with the SEALROOT_STATIC property links these three statically (sealroot-boot, see
# boot/CMakeLists.txt); every other target gets the shared libraries. $<TARGET_PROPERTY:...> in a
# link interface is evaluated on the target being linked.
find_library(SEALROOT_CRYPTO_ARCHIVE libcrypto.a)
find_library(SEALROOT_FUSE3_ARCHIVE libfuse3.a)
find_library(SEALROOT_SECCOMP_ARCHIVE libseccomp.a)
set(sealroot_static_link "$<BOOL:$<TARGET_PROPERTY:SEALROOT_STATIC>>")
add_library(sealroot_openssl_crypto INTERFACE)
target_link_libraries(sealroot_openssl_crypto
  INTERFACE "$<IF:${sealroot_static_link},${SEALROOT_CRYPTO_ARCHIVE},OpenSSL::Crypto>")
add_library(sealroot_fuse3 INTERFACE)
target_link_libraries(sealroot_fuse3 INTERFACE "$<IF:${sealroot_static_link},${SEALROOT_FUSE3_ARCHIVE},PkgConfig::FUSE3>")
target_include_directories(sealroot_fuse3 INTERFACE ${FUSE3_INCLUDE_DIRS})
target_compile_options(sealroot_fuse3 INTERFACE ${FUSE3_CFLAGS_OTHER})
add_library(sealroot_seccomp INTERFACE)
target_link_libraries(sealroot_seccomp
  INTERFACE "$<IF:${sealroot_static_link},${SEALROOT_SECCOMP_ARCHIVE},PkgConfig::LIBSECCOMP>")
