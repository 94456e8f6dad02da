// Reading a training run directory (runs/<name>/): its config, routing snapshots and checkpoints.
// Only files are read; the trainer's own types are not needed, so exports work without LibTorch.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace skillgrid::viz {

/// What a run directory holds.
struct RunInfo {
  std::string dir;                       ///< the directory
  nlohmann::json config;                 ///< config.json (null if absent)
  std::vector<std::string> levels;       ///< level ids in task order (from config.json)
  std::string router;                    ///< router kind from config.json ("none", "poly", ...); "" if unknown
  std::string skills_path;               ///< skills.json path if the file exists, else ""
  std::vector<std::string> checkpoints;  ///< checkpoint files, oldest first

  /// True when the run has no routed skills (router "none").
  bool no_routing() const { return router == "none"; }
};

/// Reads `dir`: config.json ("levels" — or "tasks" — anywhere in it, as an array of level ids or
/// a comma-separated string, and "router" anywhere in it), skills.json, and checkpoints (files
/// ending in .pt or .ckpt in the directory or its checkpoints/ folder, ordered by the number in
/// their name, then by name). Throws std::runtime_error with a one-line message when the
/// directory does not exist or config.json is not valid JSON.
RunInfo ReadRunDir(const std::string& dir);

/// The newest checkpoint of the run, or "" if none.
std::string LatestCheckpoint(const RunInfo& run);

}  // namespace skillgrid::viz
