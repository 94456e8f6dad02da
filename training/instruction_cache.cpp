#include "training/instruction_cache.h"

#include <vector>

#include <ATen/ATen.h>

namespace skillgrid::training {

at::Tensor InstructionCache::Lookup(agents::ActorCriticImpl& model, const agents::Observation& host,
                                    const agents::Observation& obs) {
  const int64_t u = host.instr_tokens.size(0), len = host.instr_tokens.size(1);
  const int64_t* tok = host.instr_tokens.data_ptr<int64_t>();
  const int64_t* lens = host.instr_lengths.data_ptr<int64_t>();
  const int64_t* tasks = host.instr_tasks.data_ptr<int64_t>();
  std::vector<std::string> keys(static_cast<size_t>(u));
  std::vector<int64_t> missing;
  for (int64_t j = 0; j < u; ++j) {
    std::string& key = keys[static_cast<size_t>(j)];
    key.assign(reinterpret_cast<const char*>(&tasks[j]), sizeof(int64_t));
    key.append(reinterpret_cast<const char*>(tok + j * len), static_cast<size_t>(lens[j]) * sizeof(int64_t));
    if (cache_.count(key) == 0) missing.push_back(j);
  }
  if (!missing.empty()) {
    const at::Tensor idx = at::tensor(missing, at::kLong).to(obs.instr_tokens.device());
    agents::Observation sub;
    sub.instr_tokens = obs.instr_tokens.index_select(0, idx);
    sub.instr_lengths = obs.instr_lengths.index_select(0, idx);
    sub.instr_tasks = obs.instr_tasks.index_select(0, idx);
    const at::Tensor emb = model.EncodeInstructions(sub);
    for (size_t k = 0; k < missing.size(); ++k) {
      cache_[keys[static_cast<size_t>(missing[k])]] = emb[static_cast<int64_t>(k)];
    }
  }
  std::vector<at::Tensor> rows;
  rows.reserve(keys.size());
  for (const auto& key : keys) rows.push_back(cache_.at(key));
  return at::stack(rows);
}

}  // namespace skillgrid::training
