#include "agents/host_linear.h"

#include <vector>

#include "skills/blas_runtime.h"
#include "skills/inventory.h"
#include "skills/layer_routing.h"
#include "skills/router.h"
#include "skills/skill_linear.h"

namespace skillgrid::agents {
namespace {

// y (m, n; row stride ldy) = x (m, k; row stride ldx) w^T + beta * y for w (n, k) contiguous and
// beta 0 or 1.
void GemmXWt(int64_t m, int64_t n, int64_t k, const float* x, int64_t ldx, const float* w, float beta, float* y,
             int64_t ldy) {
  if (skills::RowMajorGemm(false, true, m, n, k, x, ldx, w, k, beta, y, ldy)) return;
  // No BLAS loaded: the same product through ATen on views of the buffers.
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor xt = at::from_blob(const_cast<float*>(x), {m, k}, {ldx, 1}, opts);
  const at::Tensor wt = at::from_blob(const_cast<float*>(w), {n, k}, {k, 1}, opts);
  at::Tensor yt = at::from_blob(y, {m, n}, {ldy, 1}, opts);
  if (beta == 0.0f) {
    at::mm_out(yt, xt, wt.t());  // y may hold garbage (NaN * 0 is NaN): overwrite, do not scale
  } else {
    yt.addmm_(xt, wt.t());
  }
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

}  // namespace

bool IsCpuFloat(const at::Tensor& t) { return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat; }

bool HostLinear::Supports(RoutedLinearImpl& layer) {
  if (!IsCpuFloat(layer.weight()) || (layer.bias().defined() && !IsCpuFloat(layer.bias()))) return false;
  if (!layer.routed()) return true;
  const auto skill = layer.skill();
  const auto inventory = skill->skills();
  return inventory->is_low_rank() && skill->router()->n_splits() == 1 && IsCpuFloat(inventory->lora_a()) &&
         IsCpuFloat(inventory->lora_b());
}

HostLinear::HostLinear(RoutedLinearImpl& layer, const skills::TaskBatch& batch)
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

void HostLinear::Apply(const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, bool accumulate,
                       int64_t rows_per_item) const {
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
    const int64_t col = (mixture != nullptr ? mixture[r / rows_per_item] : 0) * rank_;
    const float* p = projected.data() + r * width + col;
    float* yr = y + r * ldy;
    for (int64_t k = 0; k < rank_; ++k) {
      const float pk = p[k];
      const float* bk = b + (col + k) * out_;
      for (int64_t j = 0; j < out_; ++j) yr[j] += pk * bk[j];
    }
  }
}

}  // namespace skillgrid::agents
