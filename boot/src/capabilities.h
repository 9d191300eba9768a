// Applying process.capabilities the way runc does, with raw prctl/capset (no libcap): the
// bounding set is dropped before the ids change (keeping the permitted set across setuid), then
// effective, permitted and inheritable are set and the ambient set raised.
// Runs in the child init forks for a process, before its execve.
#pragma once

#include "base/status.h"
#include "boot/spec/process_spec.h"

namespace sealroot::boot {

// Drops every capability not in `caps.bounding` from the bounding set and sets
// PR_SET_KEEPCAPS, so that a setuid() away from root that follows keeps the permitted set.
Status DropBoundingSet(const Capabilities& caps);
// After the ids changed: effective, permitted, inheritable and ambient exactly as `caps`.
Status SetCapabilities(const Capabilities& caps);

}  // namespace sealroot::boot
