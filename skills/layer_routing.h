// Internal helpers shared by the skill-routed layers: routing a batch and per-task row blocks.
#pragma once

#include <functional>
#include <initializer_list>

#include <ATen/ATen.h>

#include "skills/router.h"
#include "skills/task_batch.h"

namespace skillgrid::skills::detail {

/// Router weights for the batch. When the router ignores the task (mu, AdaMix) the weights are
/// collapsed to one row and *task_independent is set, so the layer runs one mixture for all rows.
SkillWeights RouteBatch(RouterImpl& router, const TaskBatch& batch, bool* task_independent);

/// Router eval weights (1, h, S) for one task, for merging and export.
SkillWeights EvalWeightsForTask(const RouterImpl& router, int64_t task);

/// Whether the hand-written CPU paths (raw buffers, direct BLAS calls) take these tensors: all on
/// the CPU, all float or all double.
bool CpuFloatOrDouble(std::initializer_list<at::Tensor> tensors);

/// Checks the batch's row count against an input tensor's dim 0.
void CheckRows(const char* layer, const at::Tensor& x, const TaskBatch& batch);

}  // namespace skillgrid::skills::detail
