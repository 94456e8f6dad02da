// Act's fused host path. A rollout step runs the memory cell and both heads on 64 rows: about
// 40 ATen ops whose dispatch and autograd-free bookkeeping cost several times their arithmetic.
// Here every routed Linear draws its routing once (in ActComposite's order, so the random
// stream is the same), mixes its task factors once, and then runs as one BLAS product plus a
// per-row low-rank loop on raw buffers.
#include <cstring>
#include <vector>

#include <ATen/ATen.h>

#include "agents/actor_critic.h"
#include "agents/fast_math.h"
#include "agents/recurrent_kernels.h"
#include "skills/blas_runtime.h"
#include "skills/inventory.h"
#include "skills/layer_routing.h"
#include "skills/router.h"
#include "skills/skill_linear.h"

namespace skillgrid::agents {
namespace {

bool IsCpuFloat(const at::Tensor& t) { return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat; }

// y (m, n; row stride ldy) = x (m, k; row stride ldx) w^T + beta * y for w (n, k) contiguous.
void GemmXWt(int64_t m, int64_t n, int64_t k, const float* x, int64_t ldx, const float* w, float beta, float* y,
             int64_t ldy) {
  if (skills::RowMajorGemm(false, true, m, n, k, x, ldx, w, k, beta, y, ldy)) return;
  // No BLAS loaded: the same product through ATen on views of the buffers.
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor xt = at::from_blob(const_cast<float*>(x), {m, k}, {ldx, 1}, opts);
  const at::Tensor wt = at::from_blob(const_cast<float*>(w), {n, k}, {k, 1}, opts);
  at::Tensor yt = at::from_blob(y, {m, n}, {ldy, 1}, opts);
  yt.mul_(beta).addmm_(xt, wt.t());
}

// y (m, n; row stride ldy) = x (m, k; row stride ldx) b for b (k, n) contiguous.
void GemmXB(int64_t m, int64_t n, int64_t k, const float* x, int64_t ldx, const float* b, float* y, int64_t ldy) {
  if (skills::RowMajorGemm(false, false, m, n, k, x, ldx, b, n, 0.0f, y, ldy)) return;
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor xt = at::from_blob(const_cast<float*>(x), {m, k}, {ldx, 1}, opts);
  const at::Tensor bt = at::from_blob(const_cast<float*>(b), {k, n}, {n, 1}, opts);
  at::Tensor yt = at::from_blob(y, {m, n}, {ldy, 1}, opts);
  at::mm_out(yt, xt, bt);
}

// A Linear layer (plain or low-rank skill-routed with one head) with its routing drawn for one
// batch, ready to run on host buffers.
class HostLinear {
 public:
  // Whether `layer` has this form with fp32 CPU parameters; checked for every layer before any
  // draw, so a fallback to the composite path leaves the random stream untouched.
  static bool Supports(RoutedLinearImpl& layer) {
    if (!IsCpuFloat(layer.weight()) || (layer.bias().defined() && !IsCpuFloat(layer.bias()))) return false;
    if (!layer.routed()) return true;
    const auto skill = layer.skill();
    const auto inventory = skill->skills();
    return inventory->is_low_rank() && skill->router()->n_splits() == 1 && IsCpuFloat(inventory->lora_a()) &&
           IsCpuFloat(inventory->lora_b());
  }

  // Draws `layer`'s routing for `batch` (as its forward would) and mixes each task's factors.
  HostLinear(RoutedLinearImpl& layer, const skills::TaskBatch& batch)
      : weight_(layer.weight().contiguous()), bias_(layer.bias()) {
    out_ = weight_.size(0);
    in_ = weight_.size(1);
    if (bias_.defined()) bias_ = bias_.contiguous();
    if (!layer.routed()) return;
    const auto skill = layer.skill();
    bool task_independent = false;
    const skills::SkillWeights weights = skills::detail::RouteBatch(*skill->router(), batch, &task_independent);
    // Every mixture's factors side by side: a (in, M * r), b (M * r, out) with 1/r folded in.
    const skills::SideBySideFactors factors = skill->skills()->MixLowRankSideBySide(weights);
    a_ = factors.a.contiguous();
    b_ = factors.b.contiguous();
    rank_ = skill->skills()->options.rank();
    if (!task_independent && a_.size(1) > rank_) mixture_ = batch.slot_of_row.to(at::kLong).contiguous();
  }

  // y (n, out; row stride ldy) = x (n, in; row stride ldx) through the layer, plus y when
  // `accumulate`.
  void Apply(const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, bool accumulate) const {
    GemmXWt(n, out_, in_, x, ldx, weight_.data_ptr<float>(), accumulate ? 1.0f : 0.0f, y, ldy);
    if (bias_.defined()) {
      const float* bias = bias_.data_ptr<float>();
      for (int64_t r = 0; r < n; ++r) {
        float* yr = y + r * ldy;
        for (int64_t j = 0; j < out_; ++j) yr[j] += bias[j];
      }
    }
    if (rank_ == 0) return;
    // x A for every mixture in one product (M * r columns; BLAS beats a loop over r = 8 even
    // with the unused mixtures), then each row's own r values through its B.
    const int64_t width = a_.size(1);
    std::vector<float> projected(static_cast<size_t>(n * width));
    GemmXB(n, width, in_, x, ldx, a_.data_ptr<float>(), projected.data(), width);
    const float* b = b_.data_ptr<float>();
    const int64_t* mixture = mixture_.defined() ? mixture_.data_ptr<int64_t>() : nullptr;
    for (int64_t r = 0; r < n; ++r) {
      const int64_t col = (mixture != nullptr ? mixture[r] : 0) * rank_;
      const float* p = projected.data() + r * width + col;
      float* yr = y + r * ldy;
      for (int64_t k = 0; k < rank_; ++k) {
        const float pk = p[k];
        const float* bk = b + (col + k) * out_;
        for (int64_t j = 0; j < out_; ++j) yr[j] += pk * bk[j];
      }
    }
  }

 private:
  at::Tensor weight_, bias_;  // (out, in), (out) or undefined
  at::Tensor a_, b_;          // mixed factors side by side (in, M * r), (M * r, out); undefined when plain
  at::Tensor mixture_;        // (N) mixture of each row; undefined: mixture 0 for every row
  int64_t in_ = 0, out_ = 0, rank_ = 0;
};

}  // namespace

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
    float* e = emb.data_ptr<float>();
    for (int64_t r = 0; r < n; ++r) {
      std::memcpy(e + r * emb_dim, h + r * 2 * hid, sizeof(float) * static_cast<size_t>(hid));
      if (extra > 0) {
        std::memcpy(e + r * emb_dim + hid, extra_rows.data_ptr<float>() + r * extra, sizeof(float) * static_cast<size_t>(extra));
      }
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
