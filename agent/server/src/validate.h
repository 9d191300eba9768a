// Request validation shared by the service methods: container ids become path components and
// specs become the app enclave's process, so both are checked before anything else happens.
#pragma once

#include <string>
#include <string_view>

#include "agent.pb.h"
#include "base/status.h"

namespace sealroot::agent {

// kata/runc grammar: [A-Za-z0-9][A-Za-z0-9_.-]{1,127}. Rejects "..", "/", NUL, empty.
Status ValidateContainerId(std::string_view id);
// The OCI spec of CreateContainer: present, with a valid process (ValidateProcess), absolute
// mount destinations, masked/readonly/device/namespace paths, and known, distinct namespace types.
Status ValidateSpec(const ::grpc::Spec& spec);
// A process (CreateContainer's or an exec's): args without NUL, env NAME=VALUE, absolute cwd,
// known rlimit types.
Status ValidateProcess(const ::grpc::Process& process);
// The image reference of PullImage / image_guest_pull: non-empty, bounded, no control bytes.
Status ValidateImageRef(std::string_view image, std::size_t max_size);
// The image a CreateContainer asks to pull in the guest (kata 3.x storage driver
// "image_guest_pull"); "" when there is none, an error when there are several.
Result<std::string> GuestPullImage(const ::grpc::CreateContainerRequest& request);

}  // namespace sealroot::agent
