// A Linear layer (plain or low-rank skill-routed with one head) with its routing drawn for one
// batch, run on raw host buffers: the inference-time form behind ActorCriticImpl's fused Act and
// the instruction encoder's host path, where each ATen op cost more than its arithmetic.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

#include "agents/layers.h"
#include "skills/task_batch.h"

namespace skillgrid::agents {

/// Whether `t` is a defined fp32 CPU tensor.
bool IsCpuFloat(const at::Tensor& t);

/// A RoutedLinear with one routing draw resolved into host buffers (no autograd).
class HostLinear {
 public:
  /// Whether `layer` has this form with fp32 CPU parameters (plain, or low-rank skills with one
  /// routing head). Check every layer of a pass before drawing any routing, so a fallback to the
  /// op-by-op path leaves the random stream untouched.
  static bool Supports(RoutedLinearImpl& layer);

  /// Draws `layer`'s routing for `batch` (as its forward would) and mixes every mixture's factors.
  HostLinear(RoutedLinearImpl& layer, const skills::TaskBatch& batch);

  /// y (n, out; row stride ldy) = x (n, in; row stride ldx) through the layer, added to y when
  /// `accumulate`. Row r belongs to the batch's row r / rows_per_item (a sequence's steps share
  /// their sequence's task).
  void Apply(const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, bool accumulate,
             int64_t rows_per_item = 1) const;

 private:
  at::Tensor weight_, bias_;  // (out, in), (out) or undefined
  at::Tensor a_, b_;          // mixed factors side by side (in, M * r), (M * r, out); undefined when plain
  at::Tensor mixture_;        // (N) mixture of each batch row; undefined: mixture 0 for every row
  int64_t in_ = 0, out_ = 0, rank_ = 0;
};

}  // namespace skillgrid::agents
