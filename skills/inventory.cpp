#include "skills/inventory.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>

#include "skills/blas_runtime.h"
#include "skills/layer_routing.h"

namespace skillgrid::skills {

std::string InventoryKindName(InventoryKind kind) {
  switch (kind) {
    case InventoryKind::kLowRank: return "lowrank";
    case InventoryKind::kDense: return "dense";
    case InventoryKind::kSparse: return "sparse";
  }
  return "unknown";
}

SkillInventoryOptions SkillInventoryOptions::LowRank(int64_t rank) { return SkillInventoryOptions().rank(rank); }
SkillInventoryOptions SkillInventoryOptions::Dense() { return SkillInventoryOptions().kind(InventoryKind::kDense); }
SkillInventoryOptions SkillInventoryOptions::Sparse(double density) {
  return SkillInventoryOptions().kind(InventoryKind::kSparse).density(density);
}

at::Tensor MixAlongInput(const at::Tensor& weights_any, const at::Tensor& params) {
  const auto weights = weights_any.to(params.scalar_type());
  const int64_t u = weights.size(0), h = weights.size(1), s = weights.size(2);
  const int64_t d = params.size(1), k = params.size(2);
  TORCH_CHECK(params.size(0) == s, "MixAlongInput: weights have ", s, " skills but params have ", params.size(0));
  TORCH_CHECK(d % h == 0, "MixAlongInput: ", h, " heads do not divide the input size ", d);
  if (h == 1) return at::mm(weights.view({u, s}), params.reshape({s, d * k})).view({u, d, k});
  // (S, h, d/h * k) -> per head (h, S, m); one bmm mixes every head's block at once.
  const auto blocks = params.reshape({s, h, (d / h) * k}).transpose(0, 1);
  const auto mixed = at::bmm(weights.transpose(0, 1), blocks);  // (h, U, m)
  return mixed.transpose(0, 1).reshape({u, d, k});
}

at::Tensor MixAlongOutput(const at::Tensor& weights_any, const at::Tensor& params) {
  const auto weights = weights_any.to(params.scalar_type());
  const int64_t u = weights.size(0), h = weights.size(1), s = weights.size(2);
  const int64_t k = params.size(1), d = params.size(2);
  if (params.size(0) == 1 && s > 1) return params.expand({u, k, d});  // a shared factor: every mixture is itself
  TORCH_CHECK(params.size(0) == s, "MixAlongOutput: weights have ", s, " skills but params have ", params.size(0));
  TORCH_CHECK(d % h == 0, "MixAlongOutput: ", h, " heads do not divide the output size ", d);
  if (h == 1) return at::mm(weights.view({u, s}), params.reshape({s, k * d})).view({u, k, d});
  const auto blocks = params.reshape({s, k, h, d / h}).permute({2, 0, 1, 3}).reshape({h, s, k * (d / h)});
  const auto mixed = at::bmm(weights.transpose(0, 1), blocks);  // (h, U, k * d/h)
  return mixed.view({h, u, k, d / h}).permute({1, 2, 0, 3}).reshape({u, k, d});
}

namespace {

// w (U, S) times scale as a contiguous host buffer (the scale rides on the tiny weights, not on
// the mixed factor).
template <typename T>
std::vector<T> ScaledWeights(const at::Tensor& w, double scale) {
  const at::Tensor wc = w.contiguous();
  const T* wp = wc.data_ptr<T>();
  std::vector<T> out(static_cast<size_t>(wc.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = wp[i] * static_cast<T>(scale);
  return out;
}

// Moves `count` blocks of `width` values between the mixture-major (U, rows, width) layout and
// the side-by-side (rows, U, width) one. A plain loop: the blocks are a few values long (the
// rank), where a memmove call or ATen's strided copy costs more than the copy.
template <typename T>
void Interleave(const T* src, int64_t u, int64_t rows, int64_t width, bool to_side_by_side, T* dst) {
  for (int64_t m = 0; m < u; ++m) {
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t mixture_major = (m * rows + i) * width, side_by_side = (i * u + m) * width;
      const T* a = src + (to_side_by_side ? mixture_major : side_by_side);
      T* b = dst + (to_side_by_side ? side_by_side : mixture_major);
      for (int64_t j = 0; j < width; ++j) b[j] = a[j];
    }
  }
}

// One factor of SideBySideMixFn: mixes w (U, S) with l (S, rows, width), times scale. With
// interleave the result is (rows, U * width), mixture m in columns m*width.. (how A is laid out);
// else (U * rows, width) (how B is). On CPU one BLAS product and a copy, no ATen op per step.
at::Tensor MixFactor(const at::Tensor& w, const at::Tensor& l, bool interleave, double scale) {
  const int64_t u = w.size(0), s = w.size(1), rows = l.size(1), width = l.size(2), cols = rows * width;
  if (detail::CpuFloatOrDouble({w, l}) && l.is_contiguous()) {
    const bool side_by_side = interleave && u > 1;
    at::Tensor mixed = at::empty({u, cols}, l.options());  // mixture-major
    at::Tensor out = side_by_side ? at::empty({rows, u * width}, l.options()) : mixed;
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES(l.scalar_type(), "MixFactor", [&] {
      const std::vector<scalar_t> ws = ScaledWeights<scalar_t>(w, scale);
      scalar_t* mp = mixed.data_ptr<scalar_t>();
      done = RowMajorGemm(false, false, u, cols, s, ws.data(), s, l.data_ptr<scalar_t>(), cols, scalar_t(0), mp, cols);
      if (done && side_by_side) Interleave(mp, u, rows, width, true, out.data_ptr<scalar_t>());
    });
    if (done) return interleave ? out.view({rows, u * width}) : out.view({u * rows, width});
  }
  at::Tensor mixed = at::mm(w, l.reshape({s, cols}));
  if (scale != 1.0) mixed.mul_(scale);
  if (!interleave) return mixed.view({u * rows, width});
  return mixed.view({u, rows, width}).transpose(0, 1).reshape({rows, u * width});
}

// Backward of MixFactor for its gradient d: g_w (U, S) = scale * d_m . l_s and g_l = scale * w^T d
// (each only when wanted).
std::pair<at::Tensor, at::Tensor> MixFactorBackward(const at::Tensor& d, const at::Tensor& w, const at::Tensor& l,
                                                    bool interleave, double scale, bool want_w, bool want_l) {
  const int64_t u = w.size(0), s = w.size(1), rows = l.size(1), width = l.size(2), cols = rows * width;
  const bool side_by_side = interleave && u > 1;
  at::Tensor g_w, g_l;
  if (detail::CpuFloatOrDouble({d, w, l}) && l.is_contiguous()) {
    // d as (U, rows * width), mixture-major like the forward's product.
    const at::Tensor dc = d.contiguous();
    at::Tensor d_mixed = dc;
    if (want_w) g_w = at::empty({u, s}, w.options());
    if (want_l) g_l = at::empty(l.sizes(), l.options());
    bool done = true;
    AT_DISPATCH_FLOATING_TYPES(l.scalar_type(), "MixFactorBackward", [&] {
      if (side_by_side) {
        d_mixed = at::empty({u, cols}, d.options());
        Interleave(dc.data_ptr<scalar_t>(), u, rows, width, false, d_mixed.data_ptr<scalar_t>());
      }
      const scalar_t* dp = d_mixed.data_ptr<scalar_t>();
      if (want_w) {
        scalar_t* gw = g_w.data_ptr<scalar_t>();
        done = RowMajorGemm(false, true, u, s, cols, dp, cols, l.data_ptr<scalar_t>(), cols, scalar_t(0), gw, s);
        for (int64_t i = 0; done && scale != 1.0 && i < u * s; ++i) gw[i] *= static_cast<scalar_t>(scale);
      }
      if (want_l && done) {
        const std::vector<scalar_t> ws = ScaledWeights<scalar_t>(w, scale);
        done = RowMajorGemm(true, false, s, cols, u, ws.data(), s, dp, cols, scalar_t(0), g_l.data_ptr<scalar_t>(),
                            cols);
      }
    });
    if (done) return {g_w, g_l};
  }
  at::Tensor d_mixed = side_by_side ? d.view({rows, u, width}).transpose(0, 1).reshape({u, cols}) : d.reshape({u, cols});
  if (scale != 1.0) d_mixed = d_mixed * scale;
  if (want_w) g_w = at::mm(d_mixed, l.reshape({s, cols}).t());
  if (want_l) g_l = at::mm(w.t(), d_mixed).view(l.sizes());
  return {g_w, g_l};
}

// Mixes A and B for every mixture and lays them side by side in one autograd node: a (in, U*r)
// = [A_1 .. A_U] with A_u = sum_s wa[u, s] A_s, and b (U*r, out) = scale * [B_1; ..; B_U]. Routed
// layers run this once per call; as a chain of mm/view/permute/mul nodes it cost about a dozen
// autograd nodes forward and backward per layer, more than the layer's own matmuls.
struct SideBySideMixFn : public torch::autograd::Function<SideBySideMixFn> {
  // wa, wb (U, S); lora_a (S, in, r); lora_b (S, r, out).
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& wa_in,
                                                const at::Tensor& wb_in, const at::Tensor& la_in,
                                                const at::Tensor& lb_in, double scale) {
    const at::Tensor wa = wa_in.contiguous(), wb = wb_in.contiguous(), la = la_in.contiguous(), lb = lb_in.contiguous();
    ctx->save_for_backward({wa, wb, la, lb});
    ctx->saved_data["scale"] = scale;
    // B as (S, 1, r*out): one "row" per mixture, stacked to (U, r*out) = (U*r, out).
    const at::Tensor b = MixFactor(wb, lb.view({lb.size(0), 1, -1}), /*interleave=*/false, scale);
    return {MixFactor(wa, la, /*interleave=*/true, 1.0), b.view({-1, lb.size(2)})};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &wa = saved[0], &wb = saved[1], &la = saved[2], &lb = saved[3];
    const double scale = ctx->saved_data["scale"].toDouble();
    at::Tensor g_wa, g_wb, g_a, g_b;
    if (grads[0].defined()) {
      std::tie(g_wa, g_a) = MixFactorBackward(grads[0], wa, la, /*interleave=*/true, 1.0, ctx->needs_input_grad(0),
                                              ctx->needs_input_grad(2));
    }
    if (grads[1].defined()) {
      std::tie(g_wb, g_b) = MixFactorBackward(grads[1], wb, lb.view({lb.size(0), 1, -1}), /*interleave=*/false, scale,
                                              ctx->needs_input_grad(1), ctx->needs_input_grad(3));
      if (g_b.defined()) g_b = g_b.view(lb.sizes());
    }
    return {g_wa, g_wb, g_a, g_b, at::Tensor()};
  }
};

}  // namespace

SkillInventoryImpl::SkillInventoryImpl(SkillInventoryOptions options_, int64_t n_skills, int64_t d_in, int64_t d_out,
                                       int64_t n_splits)
    : options(std::move(options_)), n_skills_(n_skills), d_in_(d_in), d_out_(d_out), n_splits_(n_splits) {
  reset();
}

void SkillInventoryImpl::reset() {
  TORCH_CHECK(n_skills_ >= 1, "SkillInventory: n_skills must be >= 1, got ", n_skills_);
  TORCH_CHECK(d_in_ >= 1 && d_out_ >= 1, "SkillInventory: sizes must be >= 1, got d_in=", d_in_, ", d_out=", d_out_);
  TORCH_CHECK(n_splits_ >= 1 && d_in_ % n_splits_ == 0 && d_out_ % n_splits_ == 0, "SkillInventory: n_splits=",
              n_splits_, " must divide both d_in=", d_in_, " and d_out=", d_out_);
  const double a_bound = 1.0 / std::sqrt(static_cast<double>(d_in_));  // kaiming_uniform(a=sqrt(5)) on fan-in d_in
  lora_a_ = lora_b_ = dense_delta_ = sparse_values_ = sparse_entries_ = sparse_skills_ = bias_delta_ =
      at::Tensor();
  switch (options.kind()) {
    case InventoryKind::kLowRank: {
      const int64_t r = options.rank();
      TORCH_CHECK(r >= 1, "SkillInventory: rank must be >= 1, got ", r);
      lora_a_ = register_parameter("lora_a", at::empty({n_skills_, d_in_, r}).uniform_(-a_bound, a_bound));
      const int64_t b_copies = options.share_b() ? 1 : n_skills_;
      auto b = at::zeros({b_copies, r, d_out_});
      if (!options.zero_init()) b.uniform_(-1.0 / std::sqrt(static_cast<double>(r)), 1.0 / std::sqrt(static_cast<double>(r)));
      lora_b_ = register_parameter("lora_b", b);
      break;
    }
    case InventoryKind::kDense: {
      auto delta = at::zeros({n_skills_, d_in_, d_out_});
      if (!options.zero_init()) delta.uniform_(-a_bound, a_bound);
      dense_delta_ = register_parameter("dense_delta", delta);
      break;
    }
    case InventoryKind::kSparse: {
      const double density = options.density();
      TORCH_CHECK(density > 0 && density <= 1, "SkillInventory: sparse density must be in (0, 1], got ", density);
      const int64_t per_skill = d_in_ * d_out_, total = n_skills_ * per_skill;
      const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::llround(density * static_cast<double>(total))));
      // Polytropon's released code draws the (entry, skill) pairs uniformly over the joint space, so
      // skills get unequal counts; the mask is fixed for the module's life (and saved with it).
      const auto picks = std::get<0>(at::randperm(total, at::TensorOptions().dtype(at::kLong)).narrow(0, 0, k).sort());
      sparse_skills_ = register_buffer("sparse_skills", picks.div(per_skill, "floor"));
      sparse_entries_ = register_buffer("sparse_entries", picks.remainder(per_skill));
      auto values = at::zeros({k});
      if (!options.zero_init()) values.uniform_(-a_bound, a_bound);
      sparse_values_ = register_parameter("sparse_values", values);
      break;
    }
  }
  if (options.bias_skills()) {
    TORCH_CHECK(options.kind() != InventoryKind::kLowRank, "SkillInventory: bias_skills applies to dense and sparse skills");
    bias_delta_ = register_parameter("bias_delta", at::zeros({n_skills_, d_out_}));
  }
}

void SkillInventoryImpl::pretty_print(std::ostream& stream) const {
  stream << "skillgrid::skills::SkillInventory(kind=" << InventoryKindName(options.kind()) << ", n_skills=" << n_skills_
         << ", d_in=" << d_in_ << ", d_out=" << d_out_;
  if (n_splits_ > 1) stream << ", n_splits=" << n_splits_;
  if (options.kind() == InventoryKind::kLowRank) stream << ", rank=" << options.rank();
  if (options.kind() == InventoryKind::kSparse) stream << ", density=" << options.density();
  stream << ")";
}

static void CheckWeights(const SkillWeights& weights, int64_t n_skills, int64_t n_splits) {
  TORCH_CHECK(weights.for_a.defined() && weights.for_a.dim() == 3 && weights.for_a.size(1) == n_splits &&
                  weights.for_a.size(2) == n_skills,
              "SkillInventory: router weights must be (U, ", n_splits, ", ", n_skills, "), got ",
              weights.for_a.defined() ? weights.for_a.sizes() : at::IntArrayRef{},
              " (router and inventory disagree on n_splits or n_skills)");
}

LowRankFactors SkillInventoryImpl::MixLowRank(const SkillWeights& weights_in) const {
  TORCH_CHECK(is_low_rank(), "SkillInventory: MixLowRank needs low-rank skills, kind is ", InventoryKindName(options.kind()));
  CheckWeights(weights_in, n_skills_, n_splits_);
  const SkillWeights weights = weights_in.To(lora_a_.device());
  const double scale = 1.0 / static_cast<double>(options.rank());
  return {MixAlongInput(weights.for_a, lora_a_), MixAlongOutput(weights.for_b, lora_b_) * scale};
}

SideBySideFactors SkillInventoryImpl::MixLowRankSideBySide(const SkillWeights& weights_in) const {
  TORCH_CHECK(is_low_rank(), "SkillInventory: MixLowRankSideBySide needs low-rank skills, kind is ",
              InventoryKindName(options.kind()));
  CheckWeights(weights_in, n_skills_, n_splits_);
  const SkillWeights weights = weights_in.To(lora_a_.device());
  const int64_t u = weights.for_a.size(0), r = options.rank();
  const auto dtype = lora_a_.scalar_type();
  const bool fusable = n_splits_ == 1 && lora_a_.size(0) == n_skills_ && lora_b_.size(0) == n_skills_ &&
                       weights.for_a.scalar_type() == dtype && weights.for_b.scalar_type() == dtype &&
                       lora_b_.scalar_type() == dtype;
  if (fusable) {
    const auto out = SideBySideMixFn::apply(weights.for_a.view({u, n_skills_}), weights.for_b.view({u, n_skills_}),
                                            lora_a_, lora_b_, 1.0 / static_cast<double>(r));
    return {out[0], out[1]};
  }
  const LowRankFactors f = MixLowRank(weights);
  if (u == 1) return {f.a[0], f.b[0]};
  return {f.a.permute({1, 0, 2}).reshape({d_in_, u * r}), f.b.reshape({u * r, d_out_})};
}

at::Tensor SkillInventoryImpl::MixDelta(const SkillWeights& weights_in) const {
  CheckWeights(weights_in, n_skills_, n_splits_);
  const at::Tensor& any_parameter = is_low_rank() ? lora_a_ : dense_delta_.defined() ? dense_delta_ : sparse_values_;
  const SkillWeights weights = weights_in.To(any_parameter.device());
  switch (options.kind()) {
    case InventoryKind::kLowRank: {
      const auto factors = MixLowRank(weights);
      return at::bmm(factors.a, factors.b);
    }
    case InventoryKind::kDense:
      return MixAlongInput(weights.for_a, dense_delta_);
    case InventoryKind::kSparse: {
      const int64_t u = weights.for_a.size(0);
      // The mask lives in buffers (restored by load; Module::to(dtype) may have cast them), so
      // each value's (head, skill) column is derived here rather than cached at construction.
      const auto entries = sparse_entries_.to(at::kLong), skills = sparse_skills_.to(at::kLong);
      const auto head_skill = at::div(entries, d_out_ * (d_in_ / n_splits_), "floor") * n_skills_ + skills;
      const auto per_value = weights.for_a.to(sparse_values_.scalar_type())
                                 .reshape({u, n_splits_ * n_skills_})
                                 .index_select(1, head_skill);
      return at::zeros({u, d_in_ * d_out_}, sparse_values_.options())
          .index_add(1, entries, per_value * sparse_values_)
          .view({u, d_in_, d_out_});
    }
  }
  return at::Tensor();
}

at::Tensor SkillInventoryImpl::MixBiasDelta(const SkillWeights& weights) const {
  if (!bias_delta_.defined()) return at::Tensor();
  CheckWeights(weights, n_skills_, n_splits_);
  return MixAlongOutput(weights.To(bias_delta_.device()).for_b, bias_delta_.unsqueeze(1)).squeeze(1);
}

}  // namespace skillgrid::skills
