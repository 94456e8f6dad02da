#include "skills/task_batch.h"

#include <algorithm>
#include <map>

#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

namespace skillgrid::skills {
namespace {

at::Tensor LongTensor(const std::vector<int64_t>& values, const at::Device& device) {
  return at::tensor(values, at::TensorOptions().dtype(at::kLong)).to(device);
}

// Row gathers with hand-written backwards. The autograd of index_select scatters with
// index_add, several times slower on CPU than a second gather; both maps here are injective
// on real rows, so the backward is a gather too.
struct PadRows : public torch::autograd::Function<PadRows> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& source,
                            const at::Tensor& positions) {
    ctx->saved_data["positions"] = positions;
    return x.index_select(0, source);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // Padding slots duplicate real rows but feed only dropped outputs, so their gradient is zero.
    const auto positions = ctx->saved_data["positions"].toTensor();
    return {grads[0].index_select(0, positions), at::Tensor(), at::Tensor()};
  }
};

struct UnpadRows : public torch::autograd::Function<UnpadRows> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& padded, const at::Tensor& positions,
                            const at::Tensor& source, const at::Tensor& padding_slots) {
    ctx->saved_data["source"] = source;
    ctx->saved_data["padding_slots"] = padding_slots;
    return padded.index_select(0, positions);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto source = ctx->saved_data["source"].toTensor();
    const auto padding_slots = ctx->saved_data["padding_slots"].toTensor();
    auto grad = grads[0].index_select(0, source);
    if (padding_slots.numel() > 0) grad.index_fill_(0, padding_slots, 0);
    return {grad, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

TaskBatch TaskBatch::FromTaskIds(const at::Tensor& task_ids) {
  TORCH_CHECK(task_ids.defined(), "TaskBatch: task_ids is undefined");
  TORCH_CHECK(task_ids.dim() == 1, "TaskBatch: task_ids must be 1-D (N), got shape ", task_ids.sizes());
  TORCH_CHECK(!at::isFloatingType(task_ids.scalar_type()) && task_ids.scalar_type() != at::kBool,
              "TaskBatch: task_ids must be an integer tensor, got ", task_ids.scalar_type());
  TaskBatch batch;
  batch.slot_mask_cache = std::make_shared<SlotMaskCache>();
  batch.task_ids = task_ids.to(at::kLong).contiguous();
  const auto device = batch.task_ids.device();
  const int64_t n = batch.task_ids.size(0);
  // Task ids are few and the batch small, so one host pass (a counting sort) builds every
  // index at once; it is far cheaper than a chain of sort/unique tensor ops.
  const auto ids_cpu = batch.task_ids.cpu();
  const int64_t* ids = ids_cpu.data_ptr<int64_t>();
  std::map<int64_t, int64_t> count_of_task;
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(ids[i] >= 0, "TaskBatch: task ids must be >= 0, got ", ids[i], " at row ", i);
    ++count_of_task[ids[i]];
  }
  std::map<int64_t, int64_t> slot_of_task, offset_of_task;
  int64_t offset = 0;
  for (const auto& [task, count] : count_of_task) {
    slot_of_task[task] = static_cast<int64_t>(batch.unique_task_list.size());
    offset_of_task[task] = offset;
    offset += count;
    batch.unique_task_list.push_back(task);
    batch.rows_per_task.push_back(count);
    batch.max_rows_per_task = std::max(batch.max_rows_per_task, count);
  }
  const int64_t n_slots = static_cast<int64_t>(batch.unique_task_list.size()) * batch.max_rows_per_task;
  std::vector<int64_t> slot(n), order(n), inverse(n), padded(n), source(n_slots, -1);
  std::vector<int64_t> seen_in_slot(batch.unique_task_list.size(), 0);
  bool grouped = true;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = slot_of_task[ids[i]];
    const int64_t rank = seen_in_slot[static_cast<size_t>(s)]++;
    const int64_t sorted_position = offset_of_task[ids[i]] + rank;
    slot[i] = s;
    inverse[i] = sorted_position;
    order[sorted_position] = i;
    padded[i] = s * batch.max_rows_per_task + rank;
    source[padded[i]] = i;
    grouped = grouped && sorted_position == i;
  }
  batch.rows_grouped = grouped;
  std::vector<int64_t> padding;
  for (int64_t j = 0; j < n_slots; ++j) {
    if (source[j] >= 0) continue;
    padding.push_back(j);
    source[j] = source[(j / batch.max_rows_per_task) * batch.max_rows_per_task];  // the task's first row
  }
  batch.padded_source = LongTensor(source, device);
  batch.padding_slots = LongTensor(padding, device);
  batch.padding_is_view =
      grouped && std::all_of(batch.rows_per_task.begin(), batch.rows_per_task.end(),
                             [&](int64_t c) { return c == batch.max_rows_per_task; });
  batch.unique_tasks = LongTensor(batch.unique_task_list, device);
  batch.slot_of_row = LongTensor(slot, device);
  batch.padded_position = LongTensor(padded, device);
  if (!grouped) {
    batch.order = LongTensor(order, device);
    batch.inverse_order = LongTensor(inverse, device);
  }
  return batch;
}

at::Tensor TaskBatch::GroupRows(const at::Tensor& x) const {
  TORCH_CHECK(x.dim() >= 1 && x.size(0) == num_rows(), "TaskBatch: input has shape ", x.sizes(), " but the batch has ",
              num_rows(), " task ids");
  return rows_grouped ? x : x.index_select(0, order);
}

at::Tensor TaskBatch::UngroupRows(const at::Tensor& grouped) const {
  return rows_grouped ? grouped : grouped.index_select(0, inverse_order);
}

at::Tensor TaskBatch::ToPadded(const at::Tensor& x) const {
  TORCH_CHECK(x.dim() >= 1 && x.size(0) == num_rows(), "TaskBatch: input has shape ", x.sizes(), " but the batch has ",
              num_rows(), " task ids");
  std::vector<int64_t> block_shape = x.sizes().vec();
  block_shape[0] = max_rows_per_task;
  block_shape.insert(block_shape.begin(), num_unique());
  if (padding_is_view) return x.reshape(block_shape);
  return PadRows::apply(x, padded_source, padded_position).view(block_shape);
}

at::Tensor TaskBatch::FromPadded(const at::Tensor& padded) const {
  const auto flat = padded.flatten(0, 1);
  return padding_is_view ? flat : UnpadRows::apply(flat, padded_position, padded_source, padding_slots);
}

at::Tensor TaskBatch::SlotMask(int64_t width, at::ScalarType dtype) const {
  auto build = [&] {
    // Column u * width + k belongs to slot u (a floor division: repeat_interleave costs ~15 ops).
    const auto slot_columns = at::div(at::arange(num_unique() * width, slot_of_row.options()), width, "floor");
    return slot_of_row.unsqueeze(1).eq(slot_columns.unsqueeze(0)).to(dtype);
  };
  if (!slot_mask_cache) return build();
  std::lock_guard<std::mutex> lock(slot_mask_cache->mutex);
  for (const auto& [w, t, mask] : slot_mask_cache->masks) {
    if (w == width && t == dtype) return mask;
  }
  at::Tensor mask;
  {
    // A normal tensor even when a rollout (inference mode) asks first: the cache outlives that
    // scope, and inference tensors cannot take part in autograd later.
    c10::InferenceMode not_inference(false);
    at::NoGradGuard no_grad;
    mask = build();
  }
  slot_mask_cache->masks.emplace_back(width, dtype, mask);
  return mask;
}

}  // namespace skillgrid::skills
