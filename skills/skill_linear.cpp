#include "skills/skill_linear.h"

#include <algorithm>
#include <ostream>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>

#include "skills/blas_runtime.h"
#include "skills/layer_routing.h"

namespace skillgrid::skills {
namespace {

// Rows [begin, end) of a batch that all read the same slot of the side-by-side factors: columns
// [col, col + width) of A and the same rows of B.
struct SlotRun {
  int64_t begin, end, col;
};

// Below this many rows per run on average, the per-run products cost more in BLAS calls than
// the dense masked products waste in multiplying zeros.
constexpr int64_t kMinRowsPerRun = 8;

// The row runs of a slot mask (N, K): each row holds ones on one block [u * w, (u + 1) * w) for a
// common width w and zeros elsewhere. Returns false (runs untouched) for any other mask, or when
// the runs are too short to pay off.
template <typename T>
bool FindSlotRuns(const T* mask, int64_t n, int64_t k, std::vector<SlotRun>* runs, int64_t* width) {
  int64_t w = 0;
  for (int64_t j = 0; j < k && mask[j] != T(0); ++j) ++w;
  if (w == 0 || k % w != 0) return false;
  std::vector<SlotRun> found;
  for (int64_t r = 0; r < n; ++r) {
    const T* row = mask + r * k;
    int64_t col = -1;
    for (int64_t c = 0; c < k; c += w) {
      if (row[c] != T(0)) {
        if (col >= 0) return false;
        col = c;
      }
    }
    if (col < 0) return false;
    for (int64_t j = 0; j < k; ++j) {
      if (row[j] != ((j >= col && j < col + w) ? T(1) : T(0))) return false;
    }
    if (found.empty() || found.back().col != col) {
      if (static_cast<int64_t>(found.size() + 1) * kMinRowsPerRun > n) return false;
      found.push_back({r, r + 1, col});
    } else {
      found.back().end = r + 1;
    }
  }
  *runs = std::move(found);
  *width = w;
  return true;
}

// The low-rank term run by run: with rows grouped by task (as the trainer's minibatches are),
// each row needs only its own task's w columns of A, not all K = U * w of the masked form.
// All on raw buffers with unit column stride; a and b contiguous (in, K) and (K, out).
template <typename T>
struct RunProducts {
  const std::vector<SlotRun>& runs;
  int64_t w, k, in, out;

  // projected (N, w) = each run's x A_u; y (N, out) += projected B_u. Returns false, y untouched,
  // when no BLAS is loaded.
  bool Forward(const T* x, int64_t ldx, const T* a, const T* b, T* projected, T* y) const {
    for (const auto& run : runs) {
      const int64_t len = run.end - run.begin;
      T* p = projected + run.begin * w;
      if (!RowMajorGemm(false, false, len, w, in, x + run.begin * ldx, ldx, a + run.col, k, T(0), p, w)) return false;
      RowMajorGemm(false, false, len, out, w, p, w, b + run.col * out, out, T(1), y + run.begin * out, out);
    }
    return true;
  }

  // d_projected (N, w) = dy B_u^T per run, and dx (N, in) += d_projected A_u^T when dx is given.
  void InputGrad(const T* dy, const T* a, const T* b, T* d_projected, T* dx) const {
    for (const auto& run : runs) {
      const int64_t len = run.end - run.begin;
      T* q = d_projected + run.begin * w;
      RowMajorGemm(false, true, len, w, out, dy + run.begin * out, out, b + run.col * out, out, T(0), q, w);
      if (dx != nullptr) RowMajorGemm(false, true, len, in, w, q, w, a + run.col, k, T(1), dx + run.begin * in, in);
    }
  }

  // da (in, K) += x_u^T d_projected_u and db (K, out) += projected_u^T dy_u, either may be null.
  void ParameterGrads(const T* x, int64_t ldx, const T* dy, const T* projected, const T* d_projected, T* da,
                      T* db) const {
    for (const auto& run : runs) {
      const int64_t len = run.end - run.begin;
      if (da != nullptr) {
        RowMajorGemm(true, false, in, w, len, x + run.begin * ldx, ldx, d_projected + run.begin * w, w, T(1),
                     da + run.col, k);
      }
      if (db != nullptr) {
        RowMajorGemm(true, false, w, out, len, projected + run.begin * w, w, dy + run.begin * out, out, T(1),
                     db + run.col * out, out);
      }
    }
  }
};

// y = x W^T + b + ((x A) * mask) B as one autograd node, for x (N, in). Every routed linear
// runs this on each call; as linear + matmul + mul + addmm + views it cost about ten autograd
// nodes forward and backward, which on CPU took longer than the matmuls themselves. When the
// mask's rows come in long one-task runs, the low-rank term runs per run (RunProducts) and
// `projected` keeps only each row's own w columns.
struct LowRankLinearFn : public torch::autograd::Function<LowRankLinearFn> {
  // weight (out, in); bias (out); a (in, K); b (K, out); mask (N, K). An absent bias or mask
  // arrives as an empty tensor (custom functions take no undefined inputs).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& a_in, const at::Tensor& b_in,
                            const at::Tensor& mask) {
    at::Tensor y = bias.numel() > 0 ? at::addmm(bias, x, weight.t()) : at::mm(x, weight.t());
    std::vector<SlotRun> runs;
    int64_t w = 0;
    const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
    const bool by_runs = mask.numel() > 0 && detail::CpuFloatOrDouble({x, a, b, mask, y}) && mask.is_contiguous() &&
                         x.stride(1) == 1 && x.size(0) > 0 && y.is_contiguous();
    bool done = false;
    at::Tensor projected;
    if (by_runs) {
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "LowRankLinearRuns", [&] {
        if (!FindSlotRuns(mask.data_ptr<scalar_t>(), mask.size(0), mask.size(1), &runs, &w)) return;
        projected = at::empty({x.size(0), w}, x.options());
        const RunProducts<scalar_t> products{runs, w, a.size(1), x.size(1), y.size(1)};
        done = products.Forward(x.data_ptr<scalar_t>(), x.stride(0), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                                projected.data_ptr<scalar_t>(), y.data_ptr<scalar_t>());
      });
    }
    if (!done) {
      projected = at::mm(x, a);  // (N, K)
      if (mask.numel() > 0) projected.mul_(mask);
      y.addmm_(projected, b);
    }
    ctx->save_for_backward({x, weight, a, b, mask, projected});
    ctx->saved_data["has_bias"] = bias.numel() > 0;
    if (done) {
      std::vector<int64_t> flat;
      for (const auto& run : runs) flat.insert(flat.end(), {run.begin, run.end, run.col});
      ctx->saved_data["runs"] = flat;
      ctx->saved_data["run_width"] = w;
    }
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &a = saved[2], &b = saved[3], &mask = saved[4],
                     &projected = saved[5];
    const at::Tensor dy = ctx->saved_data.count("runs") > 0 ? grads[0].contiguous() : grads[0];
    at::Tensor dx, dw, db, da, dbb;
    const bool need_dp = ctx->needs_input_grad(0) || ctx->needs_input_grad(3);
    if (ctx->needs_input_grad(1)) dw = at::mm(dy.t(), x);
    if (ctx->needs_input_grad(2) && ctx->saved_data["has_bias"].toBool()) db = dy.sum(0);
    if (ctx->saved_data.count("runs") > 0) {
      const auto flat = ctx->saved_data["runs"].toIntVector();
      std::vector<SlotRun> runs;
      for (size_t i = 0; i + 2 < flat.size(); i += 3) runs.push_back({flat[i], flat[i + 1], flat[i + 2]});
      const int64_t w = ctx->saved_data["run_width"].toInt();
      if (ctx->needs_input_grad(0)) dx = at::mm(dy, weight);
      if (ctx->needs_input_grad(3)) da = at::zeros_like(a);
      if (ctx->needs_input_grad(4)) dbb = at::zeros_like(b);
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "LowRankLinearRunsBackward", [&] {
        const RunProducts<scalar_t> products{runs, w, a.size(1), x.size(1), dy.size(1)};
        at::Tensor dp;
        if (need_dp) {
          dp = at::empty({x.size(0), w}, x.options());
          products.InputGrad(dy.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                             dp.data_ptr<scalar_t>(), dx.defined() ? dx.data_ptr<scalar_t>() : nullptr);
        }
        products.ParameterGrads(x.data_ptr<scalar_t>(), x.stride(0), dy.data_ptr<scalar_t>(),
                                projected.data_ptr<scalar_t>(), dp.defined() ? dp.data_ptr<scalar_t>() : nullptr,
                                da.defined() ? da.data_ptr<scalar_t>() : nullptr,
                                dbb.defined() ? dbb.data_ptr<scalar_t>() : nullptr);
      });
      return {dx, dw, db, da, dbb, at::Tensor()};
    }
    // d(projected), masked like the forward; needed for dx and dA.
    at::Tensor dp;
    if (need_dp) {
      dp = at::mm(dy, b.t());
      if (mask.numel() > 0) dp.mul_(mask);
    }
    if (ctx->needs_input_grad(0)) dx = at::mm(dy, weight).addmm_(dp, a.t());
    if (ctx->needs_input_grad(3)) da = at::mm(x.t(), dp);
    if (ctx->needs_input_grad(4)) dbb = at::mm(projected.t(), dy);
    return {dx, dw, db, da, dbb, at::Tensor()};
  }
};

}  // namespace

SkillLinearOptions::SkillLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

SkillLinearImpl::SkillLinearImpl(SkillLinearOptions options_) : options(std::move(options_)) { reset(); }

SkillLinearImpl::SkillLinearImpl(int64_t in_features, int64_t out_features, int64_t n_tasks, int64_t n_skills, int64_t rank)
    : SkillLinearImpl(SkillLinearOptions(in_features, out_features)
                          .routing(RouterOptions::Poly(n_tasks, n_skills))
                          .skills(SkillInventoryOptions::LowRank(rank))) {}

void SkillLinearImpl::reset() {
  const int64_t in = options.in_features(), out = options.out_features();
  TORCH_CHECK(in >= 1 && out >= 1, "SkillLinear: sizes must be >= 1, got in_features=", in, ", out_features=", out);
  base_ = register_module("base", torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(options.bias())));
  if (options.freeze_base()) {
    for (auto& p : base_->parameters()) p.set_requires_grad(false);
  }
  if (options.router()) {
    router_ = options.router();
  } else {
    router_ = register_module("router", Router(options.routing()));
  }
  const int64_t h = router_->n_splits();
  TORCH_CHECK(in % h == 0 && out % h == 0, "SkillLinear: n_splits=", h, " must divide in_features=", in,
              " and out_features=", out);
  skills_ = register_module("skills", SkillInventory(options.skills(), router_->n_skills(), in, out, h));
  merged_weight_ = merged_bias_ = at::Tensor();
  merged_versions_.clear();
}

void SkillLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "skillgrid::skills::SkillLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features() << ", router=" << RouterKindName(router_->kind())
         << ", skills=" << InventoryKindName(skills_->options.kind()) << ")";
}

void SkillLinearImpl::train(bool on) {
  torch::nn::Module::train(on);
  merged_weight_ = merged_bias_ = at::Tensor();
  merged_versions_.clear();
}

std::vector<int64_t> SkillLinearImpl::ParameterVersions() const {
  std::vector<int64_t> versions;
  for (const auto& p : base_->parameters()) versions.push_back(static_cast<int64_t>(p._version()));
  for (const auto& p : skills_->parameters()) versions.push_back(static_cast<int64_t>(p._version()));
  return versions;
}

at::Tensor SkillLinearImpl::forward(const at::Tensor& x, const at::Tensor& task_ids) {
  return forward(x, TaskBatch::FromTaskIds(task_ids));
}

at::Tensor SkillLinearImpl::forward(const at::Tensor& x, const TaskBatch& batch) {
  detail::CheckRows("SkillLinear", x, batch);
  TORCH_CHECK(x.dim() >= 2 && x.size(-1) == options.in_features(), "SkillLinear: input has shape ", x.sizes(),
              " but in_features=", options.in_features());
  const bool cacheable = router_->kind() == RouterKind::kAdaMix && !is_training() && !at::GradMode::is_enabled();
  if (cacheable) {
    router_->forward(batch);  // still validates the task ids
    if (!merged_weight_.defined() || merged_versions_ != ParameterVersions()) {
      std::tie(merged_weight_, merged_bias_) = EffectiveWeights(0);
      merged_versions_ = ParameterVersions();
    }
    return at::linear(x, merged_weight_, merged_bias_);
  }
  bool task_independent = false;
  const auto weights = detail::RouteBatch(*router_, batch, &task_independent);
  return ForwardRouted(x, batch, weights, task_independent);
}

at::Tensor SkillLinearImpl::ForwardRouted(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights,
                                          bool task_independent) {
  if (!skills_->is_low_rank()) return ForwardMerged(x, batch, weights, task_independent);
  const bool mixed = !task_independent && batch.num_unique() > 1;
  switch (options.low_rank_strategy()) {
    case LowRankStrategy::kMerged: return ForwardMerged(x, batch, weights, task_independent);
    case LowRankStrategy::kFactored: return ForwardFactored(x, batch, weights, task_independent);
    case LowRankStrategy::kMasked:
      TORCH_CHECK(router_->n_splits() == 1, "SkillLinear: the masked strategy needs one routing head, got n_splits=",
                  router_->n_splits());
      return mixed ? ForwardMasked(x, batch, weights) : ForwardFactored(x, batch, weights, task_independent);
    case LowRankStrategy::kAuto: break;
  }
  // Per-op overhead, not FLOPs, bounds these small layers on CPU: the masked form runs the
  // whole mixed batch in a fixed handful of ops, where the others loop over tasks.
  if (router_->n_splits() == 1 && mixed) return ForwardMasked(x, batch, weights);
  // Merging costs d_in*d_out*r per task; the factored delta costs rows*(d_in+d_out)*r per task,
  // in skinny matmuls that run several times slower per FLOP. Merge once a task has enough rows.
  const int64_t in = options.in_features(), out = options.out_features();
  const int64_t rows_per_mixture = task_independent ? batch.num_rows() : batch.max_rows_per_task;
  const bool merge = 2 * rows_per_mixture * (in + out) >= in * out;
  return merge ? ForwardMerged(x, batch, weights, task_independent)
               : ForwardFactored(x, batch, weights, task_independent);
}

std::pair<at::Tensor, at::Tensor> SkillLinearImpl::TaskWeightsAndBiases(const SkillWeights& weights) const {
  const int64_t out = options.out_features(), in = options.in_features();
  at::Tensor task_weights;
  if (skills_->is_low_rank()) {
    // (A_t B_t)^T / r = B_t^T A_t^T / r, laid out (U, out, in) like the base weight; the 1/r
    // scale rides on baddbmm's alpha instead of costing an op of its own.
    const SkillWeights on_device = weights.To(skills_->lora_a().device());
    const auto mixed_a = MixAlongInput(on_device.for_a, skills_->lora_a());
    const auto mixed_b = MixAlongOutput(on_device.for_b, skills_->lora_b());
    task_weights = at::baddbmm(base_->weight.unsqueeze(0).expand({mixed_a.size(0), out, in}), mixed_b.transpose(1, 2),
                               mixed_a.transpose(1, 2), /*beta=*/1.0,
                               /*alpha=*/1.0 / static_cast<double>(skills_->options.rank()));
  } else {
    task_weights = base_->weight.unsqueeze(0) + skills_->MixDelta(weights).transpose(1, 2);
  }
  at::Tensor task_bias = base_->bias.defined() ? base_->bias.unsqueeze(0) : at::Tensor();
  const auto bias_delta = skills_->MixBiasDelta(weights);
  if (bias_delta.defined()) task_bias = task_bias.defined() ? task_bias + bias_delta : bias_delta;
  if (task_bias.defined()) task_bias = task_bias.expand({task_weights.size(0), out});
  return {task_weights, task_bias};
}

at::Tensor SkillLinearImpl::ForwardMerged(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights,
                                          bool task_independent) {
  const auto [task_weights, task_bias] = TaskWeightsAndBiases(weights);
  if (task_independent || batch.num_unique() == 1)
    return at::linear(x, task_weights[0], task_bias.defined() ? task_bias[0] : at::Tensor());
  // One batched matmul over zero-padded task blocks instead of a loop of per-task matmuls:
  // a constant number of ops whatever the number of tasks.
  const int64_t u = batch.num_unique(), in = options.in_features(), out = options.out_features();
  const auto padded = batch.ToPadded(x);                     // (U, n_max, ..., in)
  const auto rows = padded.reshape({u, -1, in});             // (U, n_max * ..., in)
  const auto weights_t = task_weights.transpose(1, 2);       // (U, in, out)
  const auto y = task_bias.defined() ? at::baddbmm(task_bias.unsqueeze(1), rows, weights_t) : at::bmm(rows, weights_t);
  std::vector<int64_t> padded_out = padded.sizes().vec();
  padded_out.back() = out;
  return batch.FromPadded(y.view(padded_out));
}

at::Tensor SkillLinearImpl::ForwardFactored(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights,
                                            bool task_independent) {
  const auto factors = skills_->MixLowRank(weights);
  const auto base_out = base_(x);
  if (task_independent || batch.num_unique() == 1) return base_out + x.matmul(factors.a[0]).matmul(factors.b[0]);
  const int64_t u = batch.num_unique(), in = options.in_features(), out = options.out_features();
  const auto padded = batch.ToPadded(x);
  const auto delta = at::bmm(at::bmm(padded.reshape({u, -1, in}), factors.a), factors.b);
  std::vector<int64_t> padded_out = padded.sizes().vec();
  padded_out.back() = out;
  return base_out + batch.FromPadded(delta.view(padded_out));
}

PreparedSkillLinear SkillLinearImpl::Prepare(const TaskBatch& batch) {
  const bool cacheable = router_->kind() == RouterKind::kAdaMix && !is_training() && !at::GradMode::is_enabled();
  if (cacheable) {  // forward() serves the cached merged weights
    PreparedSkillLinear p;
    p.layer_ = this;
    p.batch_ = batch;
    return p;
  }
  bool task_independent = false;
  const auto weights = detail::RouteBatch(*router_, batch, &task_independent);
  if (!skills_->is_low_rank() || router_->n_splits() != 1) {
    // No matmul form: Apply re-runs the layer, but with this one routing draw.
    PreparedSkillLinear p;
    p.layer_ = this;
    p.batch_ = batch;
    p.weights_ = weights;
    p.task_independent_ = task_independent;
    return p;
  }
  return PrepareLowRank(batch, weights, task_independent);
}

PreparedSkillLinear SkillLinearImpl::PrepareLowRank(const TaskBatch& batch, const SkillWeights& weights,
                                                    bool task_independent) const {
  PreparedSkillLinear p;
  p.weight_ = base_->weight;
  p.bias_ = base_->bias;
  const SideBySideFactors factors = skills_->MixLowRankSideBySide(weights);  // scale included
  p.a_ = factors.a;
  p.b_ = factors.b;
  if (!task_independent && batch.num_unique() > 1) {
    const int64_t rank = skills_->options.rank();
    TORCH_CHECK(p.a_.size(1) == batch.num_unique() * rank, "SkillLinear: routing gave ", p.a_.size(1) / rank,
                " mixtures for a batch of ", batch.num_unique(), " tasks");
    p.mask_ = batch.SlotMask(rank, p.a_.scalar_type());
  }
  return p;
}

PreparedSkillLinear PreparedSkillLinear::FromLowRank(const at::Tensor& weight, const at::Tensor& bias,
                                                     const LowRankFactors& factors, const TaskBatch& batch,
                                                     bool task_independent) {
  PreparedSkillLinear p;
  p.weight_ = weight;
  p.bias_ = bias;
  if (task_independent || batch.num_unique() == 1) {
    p.a_ = factors.a[0];
    p.b_ = factors.b[0];
    return p;
  }
  // Every task's factors side by side, and mask[n, u*r + k] = 1 when row n belongs to the u-th
  // distinct task: the projection on other tasks' factors is zeroed before B, so row n gets
  // exactly x A_t B_t.
  const int64_t u = factors.a.size(0), in = factors.a.size(1), r = factors.a.size(2), out = factors.b.size(2);
  p.a_ = factors.a.permute({1, 0, 2}).reshape({in, u * r});
  p.b_ = factors.b.reshape({u * r, out});
  p.mask_ = batch.SlotMask(r, p.a_.scalar_type());
  return p;
}

at::Tensor PreparedSkillLinear::Apply(const at::Tensor& x) const {
  if (layer_ != nullptr) {
    return weights_.for_a.defined() ? layer_->ForwardRouted(x, batch_, weights_, task_independent_)
                                    : layer_->forward(x, batch_);
  }
  TORCH_CHECK(x.dim() >= 1 && (!mask_.defined() || x.size(0) == mask_.size(0)), "PreparedSkillLinear: input has shape ",
              x.sizes(), " but the prepared batch has ", mask_.defined() ? mask_.size(0) : -1, " rows");
  if (x.dim() >= 2 && x.scalar_type() == weight_.scalar_type() && a_.scalar_type() == weight_.scalar_type()) {
    const at::Tensor none = at::empty({0}, weight_.options());
    const at::Tensor bias = bias_.defined() ? bias_ : none;
    if (x.dim() == 2) return LowRankLinearFn::apply(x, weight_, bias, a_, b_, mask_.defined() ? mask_ : none);
    // (N, ..., in) as N * L rows; each row of the mask repeats over its L inner rows.
    const int64_t n = x.size(0), in = x.size(-1), inner = x.numel() / std::max<int64_t>(n * in, 1);
    const at::Tensor mask =
        mask_.defined() ? mask_.unsqueeze(1).expand({n, inner, mask_.size(1)}).reshape({n * inner, mask_.size(1)}) : none;
    std::vector<int64_t> out_shape = x.sizes().vec();
    out_shape.back() = weight_.size(0);
    return LowRankLinearFn::apply(x.reshape({-1, in}), weight_, bias, a_, b_, mask).view(out_shape);
  }
  const auto base_out = at::linear(x, weight_, bias_);
  if (!mask_.defined()) return base_out + x.matmul(a_).matmul(b_);
  const int64_t out = weight_.size(0), ur = a_.size(1);
  at::Tensor mask = mask_;
  if (x.dim() > 2) {
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape.front() = x.size(0);
    shape.back() = ur;
    mask = mask.view(shape);
  }
  return at::addmm(base_out.reshape({-1, out}), (x.matmul(a_) * mask).reshape({-1, ur}), b_).view(base_out.sizes());
}

at::Tensor SkillLinearImpl::ForwardMasked(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights) {
  return PrepareLowRank(batch, weights, /*task_independent=*/false).Apply(x);
}

std::pair<at::Tensor, at::Tensor> SkillLinearImpl::EffectiveWeights(int64_t task) const {
  const auto [weights, biases] = TaskWeightsAndBiases(detail::EvalWeightsForTask(*router_, task));
  return {weights[0], biases.defined() ? biases[0] : at::Tensor()};
}

torch::nn::Linear SkillLinearImpl::ExportTask(int64_t task) const {
  torch::NoGradGuard no_grad;
  const auto [weight, bias] = EffectiveWeights(task);
  const bool has_bias = bias.defined();
  torch::nn::Linear plain(torch::nn::LinearOptions(options.in_features(), options.out_features()).bias(has_bias));
  plain->to(weight.device());  // the export lives where the layer does
  plain->weight.copy_(weight);
  if (has_bias) plain->bias.copy_(bias);
  return plain;
}

}  // namespace skillgrid::skills
