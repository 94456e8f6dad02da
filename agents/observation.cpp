#include "agents/observation.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include <c10/util/Exception.h>

namespace skillgrid::agents {

Observation Observation::To(const at::Device& device) const {
  if (images.device() == device) return *this;
  Observation o;
  o.images = images.to(device);
  o.task_ids = task_ids.to(device);
  o.instr_tokens = instr_tokens.to(device);
  o.instr_lengths = instr_lengths.to(device);
  o.instr_tasks = instr_tasks.to(device);
  o.instr_index = instr_index.to(device);
  return o;
}

Observation Observation::SelectRows(const at::Tensor& rows) const {
  Observation o;
  o.images = images.index_select(0, rows);
  o.task_ids = task_ids.index_select(0, rows);
  // Only the instructions these rows use (ascending), trimmed to the longest of them, so the
  // encoder runs no idle rows or padding steps.
  const auto [used, inverse, counts] =
      at::_unique2(instr_index.index_select(0, rows), /*sorted=*/true, /*return_inverse=*/true);
  o.instr_index = inverse.view({-1});
  o.instr_lengths = instr_lengths.index_select(0, used);
  o.instr_tasks = instr_tasks.index_select(0, used);
  const int64_t longest = used.numel() > 0 ? o.instr_lengths.max().item<int64_t>() : 0;
  o.instr_tokens = instr_tokens.index_select(0, used).narrow(1, 0, std::min(longest, instr_tokens.size(1)));
  return o;
}

Observation MakeObservation(const at::Tensor& images, const at::Tensor& tokens, const at::Tensor& lengths,
                            const at::Tensor& tasks) {
  TORCH_CHECK(images.dim() == 4 && images.size(3) == 3 && images.scalar_type() == at::kByte,
              "MakeObservation: images must be (B, V, V, 3) uint8, got ", images.sizes());
  const int64_t b = images.size(0);
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(0) == b && tokens.scalar_type() == at::kInt,
              "MakeObservation: tokens must be (B, W) int32");
  TORCH_CHECK(lengths.numel() == b && lengths.scalar_type() == at::kInt, "MakeObservation: lengths must be (B) int32");
  TORCH_CHECK(tasks.numel() == b, "MakeObservation: tasks must have B entries");
  const at::Tensor tok = tokens.cpu().contiguous();
  const at::Tensor len = lengths.cpu().contiguous();
  const at::Tensor task = tasks.cpu().to(at::kLong).contiguous();
  const int32_t* tp = tok.data_ptr<int32_t>();
  const int32_t* lp = len.data_ptr<int32_t>();
  const int64_t* kp = task.data_ptr<int64_t>();
  const int64_t width = tok.size(1);

  std::unordered_map<std::string, int64_t> seen;
  seen.reserve(static_cast<size_t>(b));
  std::vector<int64_t> index(static_cast<size_t>(b));
  std::vector<int64_t> first_row;  // a representative row of every distinct instruction
  int64_t max_len = 1;
  std::string key;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t n = std::clamp<int64_t>(lp[i], 1, width);
    key.assign(reinterpret_cast<const char*>(&kp[i]), sizeof(int64_t));
    key.append(reinterpret_cast<const char*>(tp + i * width), static_cast<size_t>(n) * sizeof(int32_t));
    auto [it, inserted] = seen.emplace(key, static_cast<int64_t>(first_row.size()));
    if (inserted) {
      first_row.push_back(i);
      max_len = std::max(max_len, n);
    }
    index[static_cast<size_t>(i)] = it->second;
  }
  const int64_t u = static_cast<int64_t>(first_row.size());
  Observation o;
  o.images = images.contiguous();
  o.task_ids = task;
  o.instr_tokens = at::zeros({u, max_len}, at::kLong);
  o.instr_lengths = at::empty({u}, at::kLong);
  o.instr_tasks = at::empty({u}, at::kLong);
  int64_t* ot = o.instr_tokens.data_ptr<int64_t>();
  int64_t* ol = o.instr_lengths.data_ptr<int64_t>();
  int64_t* ok = o.instr_tasks.data_ptr<int64_t>();
  for (int64_t j = 0; j < u; ++j) {
    const int64_t row = first_row[static_cast<size_t>(j)];
    const int64_t n = std::clamp<int64_t>(lp[row], 1, width);
    for (int64_t t = 0; t < n; ++t) ot[j * max_len + t] = tp[row * width + t];
    ol[j] = n;
    ok[j] = kp[row];
  }
  o.instr_index = at::from_blob(index.data(), {b}, at::kLong).clone();
  return o;
}

}  // namespace skillgrid::agents
