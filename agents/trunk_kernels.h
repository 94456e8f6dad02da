// Fused CPU kernels of bow_endpool_res's image trunk in mixed precision (ConvPrecision::kBFloat16):
// the bag-of-words embedding, batch norm + FiLM + ReLU (+ residual), and the final max-pool.
// Between the bf16 convolutions the activations are channels-last bfloat16; these ops read and
// write them in one or two passes each with fp32 arithmetic, where ATen's generic ops (fp32 or
// bf16) made several passes per layer and cost more than the convolutions themselves.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/batchnorm.h>

namespace skillgrid::agents {

/// The bag-of-words image embedding: indices (N, H, W, 3) int64 (each channel already offset into
/// its own third of the table) and table (V, C) fp32 -> the sum of the three rows at each cell as
/// a channels-last bfloat16 (N, C, H, W) tensor. Backward scatters into an fp32 table gradient.
at::Tensor BowEmbeddingBf16(const at::Tensor& indices, const at::Tensor& table);

/// relu(bn(x * film_scale + film_shift)) + residual over channels-last bfloat16 x (N, C, H, W),
/// in one op with the semantics of torch's BatchNorm2d (batch statistics and a running-stats
/// update in training mode, running statistics in eval mode). film_scale and film_shift (N, C)
/// fp32 and residual (like x) are optional (undefined). Returns channels-last bfloat16.
at::Tensor BatchNormReluBf16(const at::Tensor& x, torch::nn::BatchNorm2dImpl& bn, const at::Tensor& film_scale = {},
                             const at::Tensor& film_shift = {}, const at::Tensor& residual = {});

/// relu of the maximum over every cell: x (N, C, H, W) channels-last bfloat16 -> (N, C) fp32; the
/// gradient goes to the first maximal cell (as max_pool2d over the whole map).
at::Tensor GlobalMaxReluBf16(const at::Tensor& x);

}  // namespace skillgrid::agents
