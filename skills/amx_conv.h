// Intel AMX kernels for the gradients of bf16 convolutions: oneDNN's bf16 weight gradient ran at
// a fifth of its forward speed and dominated mixed-precision training of bow_endpool_res.
#pragma once

#include <ATen/core/Tensor.h>

namespace skillgrid::skills {

/// Whether this CPU has AMX-BF16 and the OS grants this process the tile state (asked once).
bool AmxBf16Available();

/// Whether Conv3x3WeightGradAmx handles these operands: AMX available; x (N, C_in, H, W) and dy
/// (N, C_out, H, W) bfloat16 on CPU; C_in and C_out multiples of 32.
bool Conv3x3WeightGradAmxSupports(const at::Tensor& x, const at::Tensor& dy);

/// Weight and bias gradients of a 3x3, stride-1, padding-1 convolution y = conv(x, w) + b from
/// its input x and output gradient dy (both (N, C, H, W) bfloat16, any memory format), with fp32
/// accumulation: writes grad_weight (C_out, C_in, 3, 3) and grad_bias (C_out) (if defined), both
/// fp32. The sum over rows runs in a fixed order, so results do not depend on the thread count.
void Conv3x3WeightGradAmx(const at::Tensor& x, const at::Tensor& dy, at::Tensor grad_weight, at::Tensor grad_bias);

}  // namespace skillgrid::skills
