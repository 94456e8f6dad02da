#include "skills/skill_conv_embedding.h"

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>

#include "skills/amx_conv.h"
#include "skills/blas_runtime.h"
#include "skills/bf16.h"
#include "skills/layer_routing.h"
#include "skills/skill_linear.h"
#include "skills/winograd_conv.h"
#include "skills/winograd_conv_fp32.h"

namespace skillgrid::skills {
namespace {

// Largest N x H x W x C_in x k x k (an upper bound on the patch matrix, using the input's H x W)
// for which SkillConv2d runs a no-grad mixed batch as matmuls over patches. The small model's
// rollout needs at most 64 x 49 x 12 = 37,632; bow_endpool_res's 64 x 49 x 1,152 stays on oneDNN.
constexpr int64_t kMaxPatchEntries = 1 << 18;

// The operand layout and type of a convolution in `bf16`: oneDNN's AMX/AVX512-BF16 kernels want
// channels-last bfloat16 (measured: NCHW bf16 ran at a quarter of NHWC's speed forward).
at::Tensor ConvOperand(const at::Tensor& t, bool bf16) { return bf16 ? ChannelsLastBf16(t) : t; }

// Autograd's apply needs defined inputs: an absent bias travels as an empty tensor.
at::Tensor BiasOrEmpty(const at::Tensor& bias, const at::Tensor& like) {
  return bias.defined() ? bias : at::empty({0}, like.options());
}

// One convolution per task over rows already grouped in task blocks, writing into one output
// (one block when every row shares the kernel). Autograd over split + per-block conv + cat
// copies every activation and gradient an extra time (the split's backward alone cost more than
// a convolution); here each block's forward and backward write straight into their slice. With
// `bf16` the blocks run in bfloat16 (ConvPrecision::kBFloat16) and the rounded operands are
// what the backward keeps; the output is bfloat16 and channels-last, and the input's gradient
// has the input's type. 3x3 "same" convolutions in bf16 on CPUs with AVX512-BF16 but no AMX run
// as Winograd (winograd_conv.h; F(2x2) was already 1.4x oneDNN's forward and 2x its weight
// gradient for bow_endpool_res's 128-channel 7x7 blocks), every block's forward and input
// gradient in one call, like fp32 Winograd below. When fp32 blocks run as Winograd
// (winograd_conv_fp32.h) the operands, output and input gradient are channels-last, the layout
// its transforms read and write: then the ops between convolutions keep that layout, and
// neither pass converts a tensor (NCHW here cost four copies per block and ~20 % of an AVX2
// bow_endpool_res update). fp32 Winograd takes every block or none, as one call whose blocks
// share a parallel loop: a rollout step's ~8 rows per task were one chunk (one thread) each.
struct TaskBlockConv2d : public torch::autograd::Function<TaskBlockConv2d> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in,
                            const at::Tensor& kernels_in, const at::Tensor& biases_in,
                            std::vector<int64_t> rows_per_task, int64_t stride, int64_t padding, bool bf16) {
    const bool same_3x3 = kernels_in.size(3) == 3 && kernels_in.size(4) == 3 && stride == 1 && padding == 1;
    const bool winograd_fp32 = !bf16 && same_3x3 && WinogradConv3x3Fp32Preferred(x_in);
    const bool channels_last = bf16 || winograd_fp32;
    const at::Tensor x = winograd_fp32 ? x_in.contiguous(at::MemoryFormat::ChannelsLast) : ConvOperand(x_in, bf16);
    const at::Tensor kernels = bf16 ? kernels_in.to(at::kBFloat16) : kernels_in;  // (K, C_out, C_in, k, k)
    // (An absent bias arrives as an empty tensor, see BiasOrEmpty.)
    const at::Tensor biases = biases_in.numel() == 0 ? at::Tensor() : bf16 ? biases_in.to(at::kBFloat16) : biases_in;
    if (winograd_fp32) {
      const at::Tensor y = WinogradConv3x3Fp32Blocks(x, kernels, biases, rows_per_task, /*flip_transpose=*/false);
      return SaveAndReturn(ctx, x_in, x, kernels, rows_per_task, stride, padding, biases.defined(), bf16,
                           winograd_fp32, y);
    }
    if (bf16 && same_3x3 && WinogradConv3x3Supports(x, kernels.size(1))) {
      // Winograd transforms the fp32 kernels and rounds the results once.
      const at::Tensor y = WinogradConv3x3Blocks(x, kernels_in, biases, rows_per_task, /*flip_transpose=*/false);
      return SaveAndReturn(ctx, x_in, x, kernels, rows_per_task, stride, padding, biases.defined(), bf16,
                           channels_last, y);
    }
    at::Tensor y;  // the blocks' outputs are copied into their rows
    int64_t offset = 0;
    for (size_t u = 0; u < rows_per_task.size(); ++u) {
      const auto i = static_cast<int64_t>(u);
      const int64_t n = rows_per_task[u];
      const at::Tensor xi = x.narrow(0, offset, n);
      const at::Tensor bias = biases.defined() ? biases[i] : at::Tensor();
      const at::Tensor out = at::conv2d(xi, kernels[i], bias, {stride, stride}, {padding, padding});
      if (!y.defined()) {
        if (rows_per_task.size() == 1) {
          return SaveAndReturn(ctx, x_in, x, kernels, rows_per_task, stride, padding, biases.defined(), bf16,
                               channels_last, out);
        }
        y = at::empty({x.size(0), out.size(1), out.size(2), out.size(3)},
                      out.options().memory_format(channels_last ? at::MemoryFormat::ChannelsLast
                                                                : at::MemoryFormat::Contiguous));
      }
      y.narrow(0, offset, n).copy_(out);
      offset += n;
    }
    return SaveAndReturn(ctx, x_in, x, kernels, rows_per_task, stride, padding, biases.defined(), bf16, channels_last,
                         y);
  }

  // Keeps what backward needs (the operands as the convolutions saw them) and returns y.
  static at::Tensor SaveAndReturn(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& x,
                                  const at::Tensor& kernels, const std::vector<int64_t>& rows_per_task, int64_t stride,
                                  int64_t padding, bool has_bias, bool bf16, bool channels_last, const at::Tensor& y) {
    ctx->save_for_backward({x, kernels});
    ctx->saved_data["rows"] = c10::IValue(rows_per_task);
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["has_bias"] = has_bias;
    ctx->saved_data["bf16"] = bf16;
    ctx->saved_data["channels_last"] = channels_last;
    ctx->saved_data["input_bf16"] = x_in.scalar_type() == at::kBFloat16;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& kernels = saved[1];
    const auto rows = ctx->saved_data["rows"].toIntVector();
    const int64_t stride = ctx->saved_data["stride"].toInt(), padding = ctx->saved_data["padding"].toInt();
    const bool has_bias = ctx->saved_data["has_bias"].toBool(), bf16 = ctx->saved_data["bf16"].toBool();
    const bool channels_last = ctx->saved_data["channels_last"].toBool();
    const at::Tensor grad_y = bf16            ? ConvOperand(grads[0], true)
                              : channels_last ? grads[0].contiguous(at::MemoryFormat::ChannelsLast)
                                              : grads[0];
    const auto fp32 = x.options().dtype(at::kFloat);
    const auto grad_x_options = ctx->saved_data["input_bf16"].toBool() ? x.options() : fp32;
    at::Tensor grad_x = channels_last
                            ? at::empty(x.sizes(), grad_x_options.memory_format(at::MemoryFormat::ChannelsLast))
                            : at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor grad_k = at::empty(kernels.sizes(), bf16 ? fp32 : kernels.options());
    at::Tensor grad_b = has_bias ? at::empty({kernels.size(0), kernels.size(1)}, grad_k.options()) : at::Tensor();
    const std::vector<int64_t> bias_sizes = {kernels.size(1)};
    // A 3x3 "same" convolution's input gradient is the forward convolution of dy with the kernel
    // flipped in space and transposed in channels, (K, C_in, C_out, k, k). In bf16 oneDNN's
    // forward ran about twice as fast as its backward-data for these shapes, so the backward
    // calls the forward (CPU only: not measured against cuDNN).
    const bool same_3x3 = kernels.size(3) == 3 && kernels.size(4) == 3 && stride == 1 && padding == 1;
    const bool flipped = bf16 && same_3x3 && x.device().is_cpu();
    if (!bf16 && channels_last) {
      // The forward ran as fp32 Winograd (its only channels-last fp32 case): both gradients too.
      WinogradConv3x3Fp32Blocks(grad_y, kernels, at::Tensor(), rows, /*flip_transpose=*/true, grad_x);
      int64_t offset = 0;
      for (size_t u = 0; u < rows.size(); ++u) {
        const auto i = static_cast<int64_t>(u);
        const int64_t n = rows[u];
        if (n == 0) {  // a block without rows contributes nothing
          grad_k[i].zero_();
          if (has_bias) grad_b[i].zero_();
          continue;
        }
        WinogradConv3x3Fp32WeightGrad(x.narrow(0, offset, n), grad_y.narrow(0, offset, n), grad_k[i],
                                      has_bias ? grad_b[i] : at::Tensor());
        offset += n;
      }
      return {grad_x, grad_k, grad_b, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    // Winograd input gradients: every block in one call, straight into grad_x when it is bf16.
    const bool winograd_x = flipped && WinogradConv3x3Supports(grad_y, x.size(1));
    if (winograd_x) {
      if (grad_x.scalar_type() == at::kBFloat16) {
        WinogradConv3x3Blocks(grad_y, kernels, at::Tensor(), rows, /*flip_transpose=*/true, grad_x);
      } else {
        grad_x.copy_(WinogradConv3x3Blocks(grad_y, kernels, at::Tensor(), rows, /*flip_transpose=*/true));
      }
    }
    at::Tensor flipped_kernels;  // built on first use: not when every block's input gradient is Winograd
    int64_t offset = 0;
    for (size_t u = 0; u < rows.size(); ++u) {
      const auto i = static_cast<int64_t>(u);
      const int64_t n = rows[u];
      const at::Tensor gy = grad_y.narrow(0, offset, n);
      const at::Tensor xi = x.narrow(0, offset, n);
      // oneDNN's bf16 weight gradient ran at a fifth of its forward; AMX tiles do it directly.
      const bool amx = bf16 && same_3x3 && Conv3x3WeightGradAmxSupports(xi, gy);
      const bool winograd_w = flipped && WinogradConv3x3Supports(xi, gy.size(1));
      const bool own_w = amx || winograd_w;
      at::Tensor gx, gw, gb;
      if (!flipped || !own_w) {
        std::tie(gx, gw, gb) = at::convolution_backward(
            bf16 ? gy : gy.contiguous(), xi, kernels[i],
            has_bias ? at::OptionalIntArrayRef(bias_sizes) : at::OptionalIntArrayRef(), {stride, stride},
            {padding, padding}, {1, 1}, /*transposed=*/false, {0, 0}, /*groups=*/1,
            {!flipped, !own_w, has_bias && !own_w});
      }
      if (flipped && !winograd_x) {
        if (!flipped_kernels.defined()) flipped_kernels = kernels.transpose(1, 2).flip({3, 4}).contiguous();
        gx = at::conv2d(gy, flipped_kernels[i], at::Tensor(), {1, 1}, {1, 1});
      }
      if (!winograd_x) grad_x.narrow(0, offset, n).copy_(gx);
      if (amx) {
        Conv3x3WeightGradAmx(xi, gy, grad_k[i], has_bias ? grad_b[i] : at::Tensor());
      } else if (winograd_w) {
        WinogradConv3x3WeightGrad(xi, gy, grad_k[i], has_bias ? grad_b[i] : at::Tensor());
      } else {
        grad_k[i].copy_(gw);
        if (has_bias) grad_b[i].copy_(gb);
      }
      offset += n;
    }
    return {grad_x, grad_k, grad_b, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Per-task kernels W + (A_u B_u)^T from side-by-side low-rank factors, as one autograd node:
// base (out, in, k, k); a (P, U*r) and b (U*r, out) with P = in*k*k; returns (U, out, P).
// (The composite bmm/transpose/reshape/add chain cost several nodes per layer and call; on CPU
// the per-task products go straight to BLAS, as ATen's small batched matmuls loop in ops.)
struct LowRankKernelsFn : public torch::autograd::Function<LowRankKernelsFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& base_in,
                            const at::Tensor& a_in, const at::Tensor& b_in, int64_t u) {
    const at::Tensor base = base_in.contiguous(), a = a_in.contiguous(), b = b_in.contiguous();
    const int64_t out = base.size(0), p = a.size(0), r = a.size(1) / u;
    ctx->save_for_backward({a, b});
    ctx->saved_data["u"] = u;
    ctx->saved_data["base_sizes"] = c10::IValue(base.sizes().vec());
    if (detail::CpuFloatOrDouble({base, a, b})) {
      at::Tensor kernels = at::empty({u, out, p}, base.options());
      bool done = true;
      AT_DISPATCH_FLOATING_TYPES(base.scalar_type(), "LowRankKernels", [&] {
        const scalar_t* w0 = base.data_ptr<scalar_t>();
        for (int64_t m = 0; m < u; ++m) std::copy(w0, w0 + out * p, kernels.data_ptr<scalar_t>() + m * out * p);
        for (int64_t m = 0; m < u && done; ++m) {
          // K_m (out, P) += B_m^T (out, r) A_m^T (r, P).
          done = skills::RowMajorGemm(true, true, out, p, r, b.data_ptr<scalar_t>() + m * r * out,
                                      out, a.data_ptr<scalar_t>() + m * r, u * r, scalar_t(1),
                                      kernels.data_ptr<scalar_t>() + m * out * p, p);
        }
      });
      if (done) return kernels;
    }
    const at::Tensor a_u = a.view({p, u, r}).permute({1, 2, 0});  // (U, r, P)
    const at::Tensor b_u = b.view({u, r, out}).transpose(1, 2);   // (U, out, r)
    return at::baddbmm(base.reshape({1, out, p}).expand({u, out, p}), b_u, a_u);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &a = saved[0], &b = saved[1];
    const int64_t u = ctx->saved_data["u"].toInt();
    const int64_t out = b.size(1), p = a.size(0), r = a.size(1) / u;
    const at::Tensor dk = grads[0].contiguous();  // (U, out, P)
    at::Tensor d_base, d_a, d_b;
    if (ctx->needs_input_grad(0))
      d_base = dk.sum(0).view(ctx->saved_data["base_sizes"].toIntVector());
    const bool want_a = ctx->needs_input_grad(1), want_b = ctx->needs_input_grad(2);
    if (detail::CpuFloatOrDouble({dk, a, b}) && (want_a || want_b)) {
      d_a = at::empty({p, u * r}, a.options());
      d_b = at::empty({u * r, out}, b.options());
      bool done = true;
      AT_DISPATCH_FLOATING_TYPES(dk.scalar_type(), "LowRankKernelsBackward", [&] {
        const scalar_t* dkp = dk.data_ptr<scalar_t>();
        for (int64_t m = 0; m < u && done; ++m) {
          // d A_m (P, r) = dK_m^T B_m^T; d B_m (r, out) = A_m^T dK_m^T.
          done = skills::RowMajorGemm(true, true, p, r, out, dkp + m * out * p, p,
                                      b.data_ptr<scalar_t>() + m * r * out, out, scalar_t(0),
                                      d_a.data_ptr<scalar_t>() + m * r, u * r) &&
                 skills::RowMajorGemm(true, true, r, out, p, a.data_ptr<scalar_t>() + m * r, u * r,
                                      dkp + m * out * p, p, scalar_t(0),
                                      d_b.data_ptr<scalar_t>() + m * r * out, out);
        }
      });
      if (done)
        return {d_base, want_a ? d_a : at::Tensor(), want_b ? d_b : at::Tensor(), at::Tensor()};
    }
    d_a = d_b = at::Tensor();
    if (want_a) {
      // d a_u (P, r) = dK_u^T B_u^T, laid back side by side.
      const at::Tensor b_u = b.view({u, r, out});
      d_a = at::bmm(dk.transpose(1, 2), b_u.transpose(1, 2)).permute({1, 0, 2}).reshape({p, u * r});
    }
    if (want_b) {
      // d b_u (r, out) = A_u^T dK_u^T.
      const at::Tensor a_u = a.view({p, u, r}).permute({1, 2, 0});  // (U, r, P)
      d_b = at::bmm(a_u, dk.transpose(1, 2)).reshape({u * r, out});
    }
    return {d_base, d_a, d_b, at::Tensor()};
  }
};

}  // namespace

const char* ConvPrecisionName(ConvPrecision precision) {
  return precision == ConvPrecision::kBFloat16 ? "bf16" : "fp32";
}

ConvPrecision ParseConvPrecision(const std::string& name) {
  if (name == "fp32") return ConvPrecision::kFloat32;
  if (name == "bf16") return ConvPrecision::kBFloat16;
  throw std::invalid_argument("unknown precision '" + name + "' (valid: fp32, bf16)");
}

at::Tensor Conv2dInPrecision(const at::Tensor& x, const at::Tensor& kernel, const at::Tensor& bias, int64_t stride,
                             int64_t padding, ConvPrecision precision) {
  const bool fp32 = precision == ConvPrecision::kFloat32;
  // fp32 goes to ATen unless it is a 3x3 "same" convolution the fp32 Winograd kernels take.
  if (fp32 && !(kernel.dim() == 4 && kernel.size(2) == 3 && kernel.size(3) == 3 && stride == 1 && padding == 1 &&
                WinogradConv3x3Fp32Preferred(x))) {
    return at::conv2d(x, kernel, bias, {stride, stride}, {padding, padding});
  }
  TORCH_CHECK(kernel.dim() == 4, "Conv2dInPrecision: kernel must be (C_out, C_in, k, k), got ", kernel.sizes());
  return TaskBlockConv2d::apply(x, kernel.unsqueeze(0), BiasOrEmpty(bias.defined() ? bias.unsqueeze(0) : bias, kernel),
                                std::vector<int64_t>{x.size(0)}, stride, padding, /*bf16=*/!fp32);
}

SkillConv2dOptions::SkillConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

SkillConv2dImpl::SkillConv2dImpl(SkillConv2dOptions options_) : options(std::move(options_)) { reset(); }

void SkillConv2dImpl::reset() {
  const int64_t in = options.in_channels(), out = options.out_channels(), k = options.kernel_size();
  TORCH_CHECK(in >= 1 && out >= 1 && k >= 1, "SkillConv2d: in_channels=", in, ", out_channels=", out,
              ", kernel_size=", k, " must all be >= 1");
  base_ = register_module("base", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k)
                                                        .stride(options.stride())
                                                        .padding(options.padding())
                                                        .bias(options.bias())));
  router_ = options.router() ? options.router() : register_module("router", Router(options.routing()));
  const int64_t h = router_->n_splits();
  // Splitting the flattened (C_in, k, k) fan-in into h blocks equals splitting input channels.
  TORCH_CHECK(in % h == 0 && out % h == 0, "SkillConv2d: n_splits=", h, " must divide in_channels=", in,
              " and out_channels=", out);
  skills_ = register_module("skills", SkillInventory(options.skills(), router_->n_skills(), in * k * k, out, h));
}

void SkillConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "skillgrid::skills::SkillConv2d(" << options.in_channels() << ", " << options.out_channels()
         << ", kernel_size=" << options.kernel_size() << ", stride=" << options.stride()
         << ", padding=" << options.padding() << ", router=" << RouterKindName(router_->kind())
         << ", skills=" << InventoryKindName(skills_->options.kind()) << ")";
}

std::pair<at::Tensor, at::Tensor> SkillConv2dImpl::TaskKernels(const SkillWeights& weights) const {
  const int64_t in = options.in_channels(), out = options.out_channels(), k = options.kernel_size();
  const int64_t u = weights.for_a.size(0);
  at::Tensor kernels;
  if (skills_->is_low_rank()) {
    const SideBySideFactors factors = skills_->MixLowRankSideBySide(weights);
    kernels = LowRankKernelsFn::apply(base_->weight, factors.a, factors.b, u).view({u, out, in, k, k});
  } else {
    const auto delta = skills_->MixDelta(weights);  // (U, in*k*k, out)
    kernels = base_->weight.unsqueeze(0) + delta.transpose(1, 2).reshape({u, out, in, k, k});
  }
  at::Tensor biases = base_->bias.defined() ? base_->bias.unsqueeze(0).expand({u, out}) : at::Tensor();
  const auto bias_delta = skills_->MixBiasDelta(weights);
  if (bias_delta.defined()) biases = biases.defined() ? biases + bias_delta : bias_delta;
  return {kernels, biases};
}

at::Tensor SkillConv2dImpl::forward(const at::Tensor& x, const TaskBatch& batch) {
  detail::CheckRows("SkillConv2d", x, batch);
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.in_channels(), "SkillConv2d: input must be (N, ",
              options.in_channels(), ", H, W), got ", x.sizes());
  bool task_independent = false;
  const auto weights = detail::RouteBatch(*router_, batch, &task_independent);
  const bool mixed = !task_independent && batch.num_unique() > 1;
  // Without autograd (rollouts, evaluation) a small mixed batch has a few rows per task, and one
  // oneDNN call per task costs more than the whole layer as three matmuls over its patches
  // (measured: ~25 % of a small-model rollout). Large patch matrices (bow_endpool_res's 3x3x128
  // kernels: 3.6M entries for 64 rows) are faster per task on oneDNN, as is anything with autograd.
  const int64_t k = options.kernel_size();
  const int64_t patch_entries = x.size(0) * x.size(2) * x.size(3) * options.in_channels() * k * k;
  const bool bf16 = options.precision() == ConvPrecision::kBFloat16;
  const bool no_grad_low_rank_mix =
      mixed && !at::GradMode::is_enabled() && skills_->is_low_rank() && router_->n_splits() == 1;
  if (no_grad_low_rank_mix && !bf16 && patch_entries <= kMaxPatchEntries) return ForwardPatches(x, batch, weights);
  if (no_grad_low_rank_mix && !bf16 && k == 3 && options.stride() == 1 && options.padding() == 1 &&
      WinogradConv3x3Fp32Preferred(x)) {
    const at::Tensor y = ForwardBaseAndLowRankWinogradFp32(x, batch, weights);
    if (y.defined()) return y;
  }
  if (no_grad_low_rank_mix && bf16) {
    const at::Tensor y = ForwardBaseAndLowRankBf16(x, batch, weights);
    if (y.defined()) return y;
  }
  const auto [kernels, biases] = TaskKernels(weights);
  if (!mixed) {
    return Conv2dInPrecision(x, kernels[0], biases.defined() ? biases[0] : at::Tensor(), options.stride(),
                             options.padding(), options.precision());
  }
  // Convolutions are costly per row, so a loop of one convolution per task adds little.
  const at::Tensor grouped = batch.GroupRows(x);
  const at::Tensor y =
      TaskBlockConv2d::apply(grouped, kernels, BiasOrEmpty(biases.defined() ? biases.contiguous() : biases, kernels),
                             batch.rows_per_task, options.stride(), options.padding(), bf16);
  return batch.UngroupRows(y);
}

at::Tensor SkillConv2dImpl::ForwardPatches(const at::Tensor& x, const TaskBatch& batch,
                                           const SkillWeights& weights) const {
  const int64_t k = options.kernel_size(), stride = options.stride(), padding = options.padding();
  const int64_t out = options.out_channels(), n = x.size(0);
  const int64_t ho = (x.size(2) + 2 * padding - k) / stride + 1, wo = (x.size(3) + 2 * padding - k) / stride + 1;
  // Patches (N, L, C_in*k*k) in the (C_in, k, k) order of the kernel's matrix view.
  // (unfold views plus one copy: ATen's im2col loops per row, and batched matmuls over a
  // transposed view fall back to one small matmul per row.)
  const at::Tensor padded = padding > 0 ? at::constant_pad_nd(x, {padding, padding, padding, padding}) : x;
  const at::Tensor patches =
      padded.unfold(2, k, stride).unfold(3, k, stride).permute({0, 2, 3, 1, 4, 5}).reshape({n, ho * wo, -1});
  const auto prepared = PreparedSkillLinear::FromLowRank(base_->weight.view({out, -1}), base_->bias,
                                                         skills_->MixLowRank(weights), batch, /*task_independent=*/false);
  // (N, L, C_out) viewed as (N, C_out, H', W') with channels-last strides: no copy.
  return prepared.Apply(patches).transpose(1, 2).view({n, out, ho, wo});
}

std::pair<at::Tensor, at::Tensor> SkillConv2dImpl::BaseAndFactorKernels(const at::Tensor& a_kernels,
                                                                       int64_t pad) const {
  const at::Tensor zeros = at::zeros({pad, a_kernels.size(1), a_kernels.size(2), a_kernels.size(3)}, a_kernels.options());
  const at::Tensor kernels = at::cat({base_->weight, a_kernels, zeros});
  const at::Tensor bias =
      base_->bias.defined() ? at::cat({base_->bias, at::zeros({a_kernels.size(0) + pad}, base_->bias.options())})
                            : at::Tensor();
  return {kernels, bias};
}

at::Tensor SkillConv2dImpl::ForwardBaseAndLowRankWinogradFp32(const at::Tensor& x, const TaskBatch& batch,
                                                              const SkillWeights& weights) const {
  if (skills_->MixBiasDelta(weights).defined()) return {};
  const int64_t in = options.in_channels(), out = options.out_channels();
  const SideBySideFactors factors = skills_->MixLowRankSideBySide(weights);  // a (P, U*r), b (U*r, out)
  const int64_t ur = factors.a.size(1), r = ur / batch.num_unique();
  const auto [kernels, bias] = BaseAndFactorKernels(factors.a.t().reshape({ur, in, 3, 3}), /*pad=*/0);
  const at::Tensor both = WinogradConv3x3Fp32(x, kernels, bias, /*flip_transpose=*/false);
  return AddTaskLowRank(both, out, batch.slot_of_row, r, factors.b);
}

at::Tensor SkillConv2dImpl::ForwardBaseAndLowRankBf16(const at::Tensor& x, const TaskBatch& batch,
                                                      const SkillWeights& weights) const {
  if (skills_->MixBiasDelta(weights).defined()) return {};
  const int64_t in = options.in_channels(), out = options.out_channels(), k = options.kernel_size();
  const SideBySideFactors factors = skills_->MixLowRankSideBySide(weights);  // a (P, U*r), b (U*r, out)
  const int64_t ur = factors.a.size(1), r = ur / batch.num_unique();
  const at::Tensor xb = ConvOperand(x, true);
  const std::vector<int64_t> stride{options.stride(), options.stride()}, padding{options.padding(), options.padding()};
  // The shared kernel over every row, and every task's r input-side factors as one more conv.
  const at::Tensor a_kernels = factors.a.t().reshape({ur, in, k, k});
  const bool same_3x3 = k == 3 && options.stride() == 1 && options.padding() == 1;
  if (same_3x3 && WinogradConv3x3Supports(xb, out)) {
    // Winograd: both kernels as one, so the input is transformed once (output channels padded
    // with zero kernels to the multiple of 32 the kernels need); then one pass adds each row's
    // own r channels through its task's factors (Supports guarantees out's multiple of 16).
    const auto [kernels, bias] = BaseAndFactorKernels(a_kernels, /*pad=*/(32 - ur % 32) % 32);
    const at::Tensor both = WinogradConv3x3(xb, kernels, bias, /*flip_transpose=*/false);
    return AddTaskLowRank(both, out, batch.slot_of_row, r, factors.b);
  }
  const at::Tensor base = at::conv2d(xb, ConvOperand(base_->weight, true),  // (N, out, H', W')
                                     base_->bias.defined() ? base_->bias.to(at::kBFloat16) : at::Tensor(), stride,
                                     padding);
  const at::Tensor z = at::conv2d(xb, ConvOperand(a_kernels, true), {}, stride, padding);  // (N, U*r, H', W')
  // Each row keeps its own task's r channels; then (N H' W', U*r) x (U*r, out) adds A_t B_t.
  const at::Tensor slots = batch.slot_of_row.to(x.device());
  const at::Tensor keep = (at::arange(ur, slots.options()).div(r, "floor").unsqueeze(0) == slots.unsqueeze(1))
                              .to(at::kBFloat16)
                              .view({x.size(0), ur, 1, 1});
  const at::Tensor rows = (z * keep).permute({0, 2, 3, 1}).reshape({-1, ur}).to(at::kFloat);
  const at::Tensor low_rank = at::mm(rows, factors.b);  // (N H' W', out), channels-last order
  const at::Tensor y = base.permute({0, 2, 3, 1}).reshape({-1, out}).to(at::kFloat).add_(low_rank);
  return y.to(at::kBFloat16).view({x.size(0), base.size(2), base.size(3), out}).permute({0, 3, 1, 2});
}

std::pair<at::Tensor, at::Tensor> SkillConv2dImpl::BatchKernels(const TaskBatch& batch) {
  TORCH_CHECK(batch.num_rows() > 0, "SkillConv2d: empty batch");
  bool task_independent = false;
  const auto weights = detail::RouteBatch(*router_, batch, &task_independent);
  const auto [kernels, biases] = TaskKernels(weights);
  if (kernels.size(0) == 1 || (!task_independent && batch.num_unique() > 1)) return {kernels, biases};
  return {kernels.narrow(0, 0, 1), biases.defined() ? biases.narrow(0, 0, 1) : at::Tensor()};
}

std::pair<at::Tensor, at::Tensor> SkillConv2dImpl::EffectiveWeights(int64_t task) const {
  const auto [kernels, biases] = TaskKernels(detail::EvalWeightsForTask(*router_, task));
  return {kernels[0], biases.defined() ? biases[0] : at::Tensor()};
}

torch::nn::Conv2d SkillConv2dImpl::ExportTask(int64_t task) const {
  torch::NoGradGuard no_grad;
  const auto [kernel, bias] = EffectiveWeights(task);
  torch::nn::Conv2d plain(torch::nn::Conv2dOptions(options.in_channels(), options.out_channels(), options.kernel_size())
                              .stride(options.stride())
                              .padding(options.padding())
                              .bias(bias.defined()));
  plain->to(kernel.device());  // the export lives where the layer does
  plain->weight.copy_(kernel);
  if (bias.defined()) plain->bias.copy_(bias);
  return plain;
}

SkillEmbeddingOptions::SkillEmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
    : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}

SkillEmbeddingImpl::SkillEmbeddingImpl(SkillEmbeddingOptions options_) : options(std::move(options_)) { reset(); }

void SkillEmbeddingImpl::reset() {
  const int64_t rows = options.num_embeddings(), dim = options.embedding_dim();
  TORCH_CHECK(rows >= 1 && dim >= 1, "SkillEmbedding: num_embeddings=", rows, " and embedding_dim=", dim, " must be >= 1");
  base_ = register_module("base", torch::nn::Embedding(rows, dim));
  router_ = options.router() ? options.router() : register_module("router", Router(options.routing()));
  const int64_t h = router_->n_splits();
  TORCH_CHECK(rows % h == 0 && dim % h == 0, "SkillEmbedding: n_splits=", h, " must divide num_embeddings=", rows,
              " and embedding_dim=", dim);
  skills_ = register_module("skills", SkillInventory(options.skills(), router_->n_skills(), rows, dim, h));
}

void SkillEmbeddingImpl::pretty_print(std::ostream& stream) const {
  stream << "skillgrid::skills::SkillEmbedding(" << options.num_embeddings() << ", " << options.embedding_dim()
         << ", router=" << RouterKindName(router_->kind()) << ", skills=" << InventoryKindName(skills_->options.kind())
         << ")";
}

at::Tensor SkillEmbeddingImpl::forward(const at::Tensor& indices, const TaskBatch& batch) {
  detail::CheckRows("SkillEmbedding", indices, batch);
  TORCH_CHECK(indices.scalar_type() == at::kLong, "SkillEmbedding: indices must be int64, got ", indices.scalar_type());
  const int64_t rows = options.num_embeddings();
  if (indices.numel() > 0) {
    const int64_t lo = indices.min().item<int64_t>(), hi = indices.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < rows, "SkillEmbedding: index ", (lo < 0 ? lo : hi), " is out of range for ", rows,
                " embeddings (valid 0..", rows - 1, ")");
  }
  bool task_independent = false;
  const auto weights = detail::RouteBatch(*router_, batch, &task_independent);
  const auto tables = base_->weight.unsqueeze(0) + skills_->MixDelta(weights);  // (U, rows, dim)
  if (task_independent || batch.num_unique() == 1) return at::embedding(tables[0], indices);
  // Stack the task tables and offset each row's indices into its own task's table.
  std::vector<int64_t> slot_shape(static_cast<size_t>(indices.dim()), 1);
  slot_shape[0] = indices.size(0);
  const auto offsets = (batch.slot_of_row * rows).view(slot_shape);
  return at::embedding(tables.reshape({-1, options.embedding_dim()}), indices + offsets);
}

at::Tensor SkillEmbeddingImpl::EffectiveTable(int64_t task) const {
  return base_->weight + skills_->MixDelta(detail::EvalWeightsForTask(*router_, task))[0];
}

torch::nn::Embedding SkillEmbeddingImpl::ExportTask(int64_t task) const {
  torch::NoGradGuard no_grad;
  torch::nn::Embedding plain(options.num_embeddings(), options.embedding_dim());
  const at::Tensor table = EffectiveTable(task);
  plain->to(table.device());  // the export lives where the layer does
  plain->weight.copy_(table);
  return plain;
}

}  // namespace skillgrid::skills
