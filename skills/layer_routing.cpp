#include "skills/layer_routing.h"

#include <c10/util/Exception.h>

namespace skillgrid::skills::detail {

SkillWeights RouteBatch(RouterImpl& router, const TaskBatch& batch, bool* task_independent) {
  SkillWeights weights = router.forward(batch);
  *task_independent = router.kind() == RouterKind::kMu || router.kind() == RouterKind::kAdaMix;
  if (*task_independent && weights.for_a.size(0) > 1) {
    weights.for_a = weights.for_a.narrow(0, 0, 1);
    weights.for_b = weights.for_b.narrow(0, 0, 1);
  }
  return weights;
}

SkillWeights EvalWeightsForTask(const RouterImpl& router, int64_t task) {
  TORCH_CHECK(task >= 0 && task < router.n_tasks(), "export: task id ", task, " is out of range for a router over ",
              router.n_tasks(), " tasks (valid ids 0..", router.n_tasks() - 1, ")");
  const auto w = router.EvalWeights().narrow(0, task, 1);
  return {w, w};
}

bool CpuFloatOrDouble(std::initializer_list<at::Tensor> tensors) {
  const auto dtype = tensors.begin()->scalar_type();
  if (dtype != at::kFloat && dtype != at::kDouble) return false;
  for (const auto& t : tensors) {
    if (!t.device().is_cpu() || t.scalar_type() != dtype) return false;
  }
  return true;
}

void CheckRows(const char* layer, const at::Tensor& x, const TaskBatch& batch) {
  TORCH_CHECK(x.dim() >= 1 && x.size(0) == batch.num_rows(), layer, ": input has shape ", x.sizes(), " but the TaskBatch has ",
              batch.num_rows(), " rows");
  TORCH_CHECK(batch.num_rows() > 0, layer, ": empty batch");
}

}  // namespace skillgrid::skills::detail
