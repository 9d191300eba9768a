// A container must not reach the agent's API, which has no authentication: CreateContainer
// refuses a spec that
//  * bind-mounts a directory holding the agent's unix sockets or state (the listeners' parent
//    directories, state_dir with the boots' key-release and exec sockets, store_dir), or one
//    of their ancestors, into the container;
//  * keeps the agent's network namespace (no "network" namespace in linux.namespaces, or a path
//    naming the agent's own) while a TCP listener is configured: loopback TCP is reachable from
//    every process of that namespace;
//  * keeps the agent's mount namespace (no "mount" namespace, or a path naming the agent's own).
// A spec without "linux" gets the default namespaces (new network and mount) and passes.
//
// Thread-safety: a pure function (it stats namespace paths).
#pragma once

#include "agent/server/config.h"
#include "base/status.h"
#include "oci.pb.h"

namespace sealroot::agent {

// kPermissionDenied naming what would expose the API.
Status CheckAgentUnreachable(const ::grpc::Spec& spec, const AgentConfig& config);

}  // namespace sealroot::agent
