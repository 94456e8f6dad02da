// A batch of agent observations as tensors, with the instructions deduplicated: each distinct
// (task, mission) pair is encoded once per batch and its embedding gathered for its rows.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace skillgrid::agents {

/// Observations of B rows (envs or stored frames) ready for the network.
struct Observation {
  /// (B, 7, 7, 3) uint8 egocentric views in Minigrid's [x][y][channel] order.
  at::Tensor images;
  /// (B) int64 task id of every row.
  at::Tensor task_ids;
  /// (U, L) int64 tokens of the distinct instructions, padded with 0 to the longest.
  at::Tensor instr_tokens;
  /// (U) int64 token count of each distinct instruction (>= 1).
  at::Tensor instr_lengths;
  /// (U) int64 task id of each distinct instruction.
  at::Tensor instr_tasks;
  /// (B) int64 index of every row's instruction in instr_tokens.
  at::Tensor instr_index;

  /// Number of rows B.
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  /// The same batch with every tensor on `device`.
  Observation To(const at::Device& device) const;
  /// Rows `rows` ((R) int64, on this batch's device) of this batch, with only the distinct
  /// instructions they use (in their order here) and padding trimmed to the longest of those.
  Observation SelectRows(const at::Tensor& rows) const;
};

/// Builds an Observation from host data: images (B, 7, 7, 3) uint8, tokens (B, W) int32 padded
/// with 0, lengths (B) int32, tasks (B) integral. Instructions are deduplicated per
/// (task, tokens) pair.
Observation MakeObservation(const at::Tensor& images, const at::Tensor& tokens, const at::Tensor& lengths,
                            const at::Tensor& tasks);

}  // namespace skillgrid::agents
