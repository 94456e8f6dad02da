// Checkpoint files of a run directory: listing, atomic writing, and loading a model (with its
// architecture, method configuration and vocabulary) for evaluation.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/actor_critic.h"

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize

namespace skillgrid::training {

/// A run directory or checkpoint that cannot be used (missing, corrupt, other architecture).
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Path of the checkpoint of update `update` in `run_dir` (checkpoints/ckpt_00000100.pt).
std::string CheckpointPath(const std::string& run_dir, int64_t update);
/// Checkpoints of a run directory, oldest first (by update number); empty when none.
std::vector<std::string> ListCheckpoints(const std::string& run_dir);
/// The checkpoint named by `source`: a run directory's newest checkpoint, or `source` itself when it
/// is a file. Throws RunError, prefixed with `flag` (e.g. "--teacher"), when there is none.
std::string ResolveCheckpoint(const std::string& source, const std::string& flag);
/// Deletes all but the newest `keep` checkpoints.
void PruneCheckpoints(const std::string& run_dir, int keep);

/// Saves `archive` to `path` through a temporary file renamed into place, so a crash never
/// leaves a partial checkpoint under the final name.
void SaveArchiveAtomically(torch::serialize::OutputArchive& archive, const std::string& path);
/// Stores a JSON document in an archive (as a uint8 tensor under `key`).
void WriteJson(torch::serialize::OutputArchive& archive, const std::string& key, const nlohmann::json& j);
/// Reads a JSON document written by WriteJson.
nlohmann::json ReadJson(torch::serialize::InputArchive& archive, const std::string& key);

/// The metadata of a checkpoint: {"format", "config", "model", "counters", ...}. Throws RunError.
nlohmann::json ReadCheckpointMeta(const std::string& path);

/// A model restored from a checkpoint, with the checkpoint's metadata.
struct LoadedModel {
  /// The network (in eval mode) on the requested device.
  agents::ActorCritic model{nullptr};
  /// The checkpoint metadata (config, model options, counters).
  nlohmann::json meta;
};

/// Builds the network described by a checkpoint and loads its weights. Its convolutions run in
/// `precision` (fp32 | bf16), or when that is empty in the precision the run trained with, as
/// its periodic evaluations did. Loads checkpoints saved on any device. Throws RunError
/// (ConfigError for a bad precision, or a device that is not cpu / cuda[:N] or not available).
LoadedModel LoadModel(const std::string& checkpoint_path, const std::string& device,
                      const std::string& precision = "");

/// Throws RunError (one line, naming both) when a checkpoint's model options differ from
/// `expected` (another architecture or routing).
void CheckSameArchitecture(const nlohmann::json& checkpoint_model, const agents::ModelOptions& expected,
                           const std::string& checkpoint_path);

}  // namespace skillgrid::training
