# The writable upper and the union over a sealed lower (design/sealfs-upper.md).
target_sources(sealroot_fusefs PRIVATE
  src/union_fs.cc
  src/union_io.cc
  src/union_persist.cc
  src/upper_file.cc
  src/upper_state.cc
)
