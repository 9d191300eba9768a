# Image trust sources (signature policy and ocicrypt), compiled into sealroot_image.
target_sources(sealroot_image PRIVATE ${CMAKE_CURRENT_LIST_DIR}/trust_placeholder.cc)
