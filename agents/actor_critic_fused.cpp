// Act's fused host path. A rollout step runs the memory cell and both heads on 64 rows: about
// 40 ATen ops whose dispatch and autograd-free bookkeeping cost several times their arithmetic.
// Here every routed Linear draws its routing once (in ActComposite's order, so the random
// stream is the same) as a HostLinear: one BLAS product plus a per-row low-rank term.
#include <cstring>
#include <vector>

#include <ATen/ATen.h>

#include "agents/actor_critic.h"
#include "agents/fast_math.h"
#include "agents/host_linear.h"
#include "agents/recurrent_kernels.h"

namespace skillgrid::agents {

bool ActorCriticImpl::ActIsFused(const at::Tensor& memory) {
  if (at::GradMode::is_enabled() || !IsCpuFloat(memory) || memory.dim() != 2) return false;
  for (RoutedLinearImpl* layer : {memory_->input_map().get(), memory_->hidden_map().get(), actor1_.get(),
                                  actor2_.get(), critic1_.get(), critic2_.get()}) {
    if (!HostLinear::Supports(*layer)) return false;
  }
  return true;
}

PolicyOutput ActorCriticImpl::ActFused(const Observation& obs, const at::Tensor& memory, const skills::TaskBatch& batch,
                                       const at::Tensor& instr_unique) {
  TORCH_CHECK(memory.size(0) == batch.num_rows() && memory.size(1) == memory_size(), "Act: memory has shape ",
              memory.sizes(), " but the batch has ", batch.num_rows(), " rows of memory size ", memory_size());
  const Encoded enc = Encode(obs, batch, instr_unique);
  // Routing draws in ActComposite's order: memory input, memory hidden, actor, critic.
  const HostLinear ih(*memory_->input_map(), batch), hh(*memory_->hidden_map(), batch);
  const HostLinear actor1(*actor1_, batch), actor2(*actor2_, batch);
  const HostLinear critic1(*critic1_, batch), critic2(*critic2_, batch);

  const int64_t n = batch.num_rows(), hid = options.memory_dim(), head = options.head_dim();
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor features = enc.features.to(at::kFloat).contiguous();
  const at::Tensor state = memory.contiguous();
  at::Tensor gates = at::empty({n, 4 * hid}, opts);
  ih.Apply(features.data_ptr<float>(), features.size(1), n, gates.data_ptr<float>(), 4 * hid, false);
  hh.Apply(state.data_ptr<float>(), 2 * hid, n, gates.data_ptr<float>(), 4 * hid, true);
  const at::Tensor new_memory = LstmPointwise(gates, state.narrow(1, hid, hid));

  // The heads read [h', head_extra]: copy both into one row-major buffer.
  const int64_t extra = enc.head_extra.defined() ? enc.head_extra.size(1) : 0;
  const int64_t emb_dim = hid + extra;
  at::Tensor emb = at::empty({n, emb_dim}, opts);
  {
    const at::Tensor extra_rows = extra > 0 ? enc.head_extra.to(at::kFloat).contiguous() : at::Tensor();
    const float* h = new_memory.data_ptr<float>();
    const float* x = extra > 0 ? extra_rows.data_ptr<float>() : nullptr;
    float* e = emb.data_ptr<float>();
    for (int64_t r = 0; r < n; ++r) {
      std::memcpy(e + r * emb_dim, h + r * 2 * hid, sizeof(float) * static_cast<size_t>(hid));
      if (extra > 0) std::memcpy(e + r * emb_dim + hid, x + r * extra, sizeof(float) * static_cast<size_t>(extra));
    }
  }
  // Actor and critic hidden layers side by side, one tanh over both.
  at::Tensor hidden = at::empty({n, 2 * head}, opts);
  actor1.Apply(emb.data_ptr<float>(), emb_dim, n, hidden.data_ptr<float>(), 2 * head, false);
  critic1.Apply(emb.data_ptr<float>(), emb_dim, n, hidden.data_ptr<float>() + head, 2 * head, false);
  FastTanh(hidden.data_ptr<float>(), hidden.data_ptr<float>(), hidden.numel());
  at::Tensor logits = at::empty({n, kNumActions}, opts);
  at::Tensor values = at::empty({n, 1}, opts);
  actor2.Apply(hidden.data_ptr<float>(), 2 * head, n, logits.data_ptr<float>(), kNumActions, false);
  critic2.Apply(hidden.data_ptr<float>() + head, 2 * head, n, values.data_ptr<float>(), 1, false);

  PolicyOutput out;
  out.log_probs = at::log_softmax(logits, 1);
  out.values = values.squeeze(1);
  out.memory = new_memory;
  return out;
}

}  // namespace skillgrid::agents
