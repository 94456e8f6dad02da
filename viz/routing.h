// Routing matrices (task x skill weights of one layer and head) and their JSON snapshots, as the
// viewer and exports read them from a run's skills.json.
//
// Snapshot format read by RoutingSnapshotFromJson (one JSON object):
//   {
//     "frames": 123456,                              // optional: training frames at the snapshot
//     "tasks": ["BabyAI-GoToObj-v0", ...],           // T task (level) names, row order
//     "layers": [                                     // one entry per skill-routed layer
//       {"name": "actor.0",                           // layer name
//        "router": "poly",                            // optional: router kind
//        "heads": [[[w00, ..., w0S], ...], ...]}      // h x T x S weights (one T x S per head)
//       // or "matrix": [[...], ...]                  // T x S, a layer with one head
//     ]
//   }
// A skills.json file holds one snapshot, {"snapshots": [snapshot, ...]} (the trainer's layout,
// with "levels" and "router" beside "snapshots" applying to all of them), a JSON array of
// snapshots, or JSON Lines (one snapshot per line, appended as training goes on); the last one
// is the newest. A layer may also carry "tasks" of its own. Also accepted: "layers" (or
// "routing") as an object mapping layer names to a T x S matrix or an h x T x S array (the
// agents' ActorCritic::RoutingSnapshot()), or such a map as the whole snapshot; then the task
// names come from "tasks"/"levels" or the caller's defaults (the run's levels).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace skillgrid::viz {

/// One task x skill routing matrix: the weights one layer and head gives each skill per task.
struct RoutingMatrix {
  std::string layer;                    ///< layer name, e.g. "actor.0"
  int head = 0;                         ///< head index (MHR splits); 0 for single-head routers
  int num_heads = 1;                    ///< heads the layer has
  std::string router;                   ///< router kind ("poly", "fixed", ...); may be empty
  std::vector<std::string> task_names;  ///< row labels, one per task
  int num_skills = 0;                   ///< columns S
  std::vector<float> weights;           ///< rows x S values, row-major

  /// Number of tasks (rows).
  int num_tasks() const { return static_cast<int>(task_names.size()); }
  /// Weight of task t for skill s.
  float at(int t, int s) const { return weights[static_cast<size_t>(t) * num_skills + s]; }
};

/// Every routing matrix of one snapshot, in layer order then head order.
struct RoutingSnapshot {
  int64_t frames = -1;                 ///< training frames at the snapshot; -1 if unknown
  std::vector<RoutingMatrix> matrices;  ///< one per (layer, head)

  /// Distinct layer names in order.
  std::vector<std::string> LayerNames() const;
  /// Index into matrices of (layer, head), or -1.
  int Find(const std::string& layer, int head) const;
};

/// Parses one snapshot object (format above); `default_tasks` names the rows when the snapshot
/// does not (else "task1", ...). Throws std::runtime_error with a one-line message on a
/// malformed snapshot (ragged rows, row count differing from the task count, no layers).
RoutingSnapshot RoutingSnapshotFromJson(const nlohmann::json& j,
                                        const std::vector<std::string>& default_tasks = {});

/// Writes a snapshot in the format above (every layer with "heads").
nlohmann::json RoutingSnapshotToJson(const RoutingSnapshot& snapshot);

/// Reads every snapshot of a skills.json file (any of the layouts above), oldest first.
/// Throws std::runtime_error naming the file when it cannot be read or parsed.
std::vector<RoutingSnapshot> LoadRoutingSnapshots(const std::string& path,
                                                  const std::vector<std::string>& default_tasks = {});

/// The newest snapshot of a skills.json file (see LoadRoutingSnapshots).
RoutingSnapshot LoadLatestRoutingSnapshot(const std::string& path,
                                          const std::vector<std::string>& default_tasks = {});

/// A level id shortened for labels: "BabyAI-GoToRedBallGrey-v0" -> "GoToRedBallGrey".
std::string ShortTaskName(const std::string& name);

/// Skills of task row `task` that fire: weight >= `fraction` of the row's largest weight and
/// > 0. With Poly's per-skill probabilities or a normalised allocation this picks the skills
/// the task actually mixes. Returns column indices in increasing order.
std::vector<int> FiringSkills(const RoutingMatrix& m, int task, float fraction = 0.5f);

}  // namespace skillgrid::viz
