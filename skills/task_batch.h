// TaskBatch: the per-batch grouping of rows by task id that every skill-routed layer shares.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>

namespace skillgrid::skills {

/// Rows of a batch grouped by task id. Build it once per network forward and pass it to every
/// skill-routed layer: routing depends only on the task, so layers mix skills once per distinct
/// task (U of them) and run each task's rows as one contiguous block.
struct TaskBatch {
  /// Groups the rows of `task_ids` (shape (N), integral, values >= 0) by task.
  static TaskBatch FromTaskIds(const at::Tensor& task_ids);

  /// The (N) int64 task id of every row, as given.
  at::Tensor task_ids;
  /// The (U) distinct task ids present, ascending.
  at::Tensor unique_tasks;
  /// unique_tasks as host integers, for loops and range checks without device syncs.
  std::vector<int64_t> unique_task_list;
  /// Number of rows of each distinct task, in unique_tasks order (sums to N).
  std::vector<int64_t> rows_per_task;
  /// (N) int64: the index into unique_tasks of every row.
  at::Tensor slot_of_row;
  /// (N) int64 permutation that sorts rows by task (stable); undefined when rows_grouped.
  at::Tensor order;
  /// (N) int64 inverse of `order`: sorted position of every original row; undefined when rows_grouped.
  at::Tensor inverse_order;
  /// True when rows already come in ascending task blocks, so no permutation is needed.
  bool rows_grouped = true;
  /// Largest number of rows of one task (the padded block length).
  int64_t max_rows_per_task = 0;
  /// (N) int64: position of every row in the padded (U x max_rows_per_task) task-block layout
  /// used for batched matmuls: slot * max_rows_per_task + rank of the row within its task.
  at::Tensor padded_position;
  /// (U * max_rows_per_task) int64: the row each padded slot reads; padding slots read a real
  /// row of the same task, so no zero row is needed.
  at::Tensor padded_source;
  /// int64 indices of the padding slots in the padded layout (may be empty).
  at::Tensor padding_slots;
  /// True when rows are grouped and every task has the same number of rows, so the padded
  /// layout is a plain view of the input.
  bool padding_is_view = true;

  /// Number of rows N.
  int64_t num_rows() const { return task_ids.defined() ? task_ids.size(0) : 0; }
  /// Number of distinct tasks U.
  int64_t num_unique() const { return static_cast<int64_t>(unique_task_list.size()); }
  /// Largest task id present (-1 for an empty batch).
  int64_t max_task() const { return unique_task_list.empty() ? -1 : unique_task_list.back(); }

  /// Reorders the rows of `x` (dim 0 of size N) into task blocks.
  at::Tensor GroupRows(const at::Tensor& x) const;
  /// Inverse of GroupRows: puts task-block rows back in the caller's row order.
  at::Tensor UngroupRows(const at::Tensor& grouped) const;
  /// Gathers rows of `x` (N, ...) into padded task blocks (U, max_rows_per_task, ...) for
  /// batched matmuls. Padding slots hold copies of a real row of their task; their results must
  /// only reach the output through FromPadded, which drops them (the backward relies on it and
  /// ignores their gradient).
  at::Tensor ToPadded(const at::Tensor& x) const;
  /// Inverse of ToPadded: (U, max_rows_per_task, ...) -> (N, ...) in the caller's row order;
  /// padding slots are dropped (and get zero gradient).
  at::Tensor FromPadded(const at::Tensor& padded) const;

  /// The (N, U * width) 0/1 mask of `dtype` whose columns [u * width, (u + 1) * width) are 1 on
  /// the rows of the u-th distinct task (the masked low-rank form). Built once per (width, dtype)
  /// and shared by copies of the batch, so every routed layer and step reuses it; do not write
  /// into it.
  at::Tensor SlotMask(int64_t width, at::ScalarType dtype) const;

  /// SlotMask's cache, shared by copies of the batch (the batch's fields must not change after
  /// FromTaskIds). Null in a default-constructed batch: masks are then rebuilt at every call.
  struct SlotMaskCache {
    std::mutex mutex;                                                  ///< guards `masks`
    std::vector<std::tuple<int64_t, at::ScalarType, at::Tensor>> masks;  ///< (width, dtype, mask)
  };
  /// See SlotMaskCache.
  std::shared_ptr<SlotMaskCache> slot_mask_cache;
};

}  // namespace skillgrid::skills
