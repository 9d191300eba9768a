// The `sealroot` tool's commands. Each takes the arguments after its command word and returns
// the process exit code (base/cli.h). One file per command group:
//   image_commands.cc   unpack, pull, inspect              (image path)
//   store_commands.cc   mount, umount, fsck, gc, df, roots (sealed store)
//   trust_commands.cc   keyprovider                        (image trust)
//   enclave_commands.cc enclave measure|sign|verify|run    (stub enclave / local attestation)
//   ctl_commands.cc     ctl ...                            (agent API client)
#pragma once

#include <span>
#include <string>

namespace sealroot::tool {

using Args = std::span<const std::string>;

int Unpack(Args args);
int Pull(Args args);
int Inspect(Args args);

int Mount(Args args);
int Umount(Args args);
int Fsck(Args args);
int Gc(Args args);
int Df(Args args);
int Roots(Args args);

int KeyProvider(Args args);

int Enclave(Args args);

int Ctl(Args args);

}  // namespace sealroot::tool
