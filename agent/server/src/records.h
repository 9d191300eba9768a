// The agent's records and their persisted form. Images and containers are kept in one JSON
// document, sealed with the StateSealer and written atomically to <state_dir>/state.sealed, so
// a restarted agent sees either the old or the new state, never a mix.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "agent/server/runtime.h"
#include "agent/server/state_sealer.h"
#include "agent/server/workload_policy.h"
#include "base/env.h"
#include "base/secret.h"
#include "base/status.h"
#include "fusefs/types.h"

namespace sealroot::agent {

// A pulled image: one sealed store, shared by every container that uses the image.
struct ImageRecord {
  std::string image;      // as the client wrote it (the join key)
  std::string image_ref;  // canonical, digest-pinned
  fusefs::RootHash root_hash{};
  std::string store_name;       // directory under <store_dir>/images/
  SecretBytes key;              // the store's key
  std::set<std::string> users;  // container ids
  ImageRunConfig run;           // from the verified image config: what the workload policy compares to
};

enum class ContainerState { kPulled, kCreated, kRunning, kStopped };
std::string_view ContainerStateName(ContainerState state);

struct ContainerRecord {
  std::string id;
  std::string image;  // key into the image records
  ContainerState state = ContainerState::kPulled;
  std::string spec;  // serialized grpc.Spec, set by CreateContainer
  // Not persisted: processes do not survive an agent restart (records come back kStopped).
  std::shared_ptr<Process> init;
  std::map<std::string, std::shared_ptr<Process>> execs;
  // Not persisted: a StartContainer launching the container, and ExecProcess calls starting
  // execs (by exec id), while the service lock is released for the wait on the enclave.
  bool starting = false;
  std::set<std::string> execs_starting;
  bool busy() const { return starting || !execs_starting.empty(); }
};

struct AgentState {
  std::map<std::string, ImageRecord> images;          // by image
  std::map<std::string, ContainerRecord> containers;  // by id
};

inline constexpr char kStateFileName[] = "state.sealed";

// Seals `state` and writes it to <state_dir>/state.sealed atomically (mode 0600) through `env`.
// On failure the file holds the previous state, whole.
Status SaveState(const AgentState& state, const StateSealer& sealer, const std::string& state_dir,
                 Env& env = Env::Default());
// Reads it back; an absent file is an empty state. kDataLoss if it was not sealed by `sealer`.
Result<AgentState> LoadState(const StateSealer& sealer, const std::string& state_dir);

}  // namespace sealroot::agent
