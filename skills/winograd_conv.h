// Winograd F(2x2, 3x3) kernels for bf16 3x3 "same" convolutions on CPUs with AVX512-BF16 but no
// AMX. bow_endpool_res's update is six 128->128 3x3 convolutions on 7x7 maps; computing them in
// the Winograd domain needs 16 multiplies per 2x2 output tile instead of 36 (1.72x fewer on 7x7
// maps, whose 2x2 tiles cover 8x8). Transforms run in fp32, the 16 per-position products in bf16
// with fp32 accumulation (vdpbf16ps), as oneDNN's direct bf16 convolution does.
#pragma once

#include <ATen/core/Tensor.h>

namespace skillgrid::skills {

/// Whether this build and CPU can run the Winograd kernels (x86-64 GCC build; AVX512F, BW, VL
/// and BF16 on the CPU) and this CPU has no AMX, whose direct kernels are faster.
/// SKILLGRID_NO_WINOGRAD=1 in the environment turns them off (oneDNN's direct kernels then run).
bool WinogradConvPreferred();

/// Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16, or AMX unless SKILLGRID_NO_AMX
/// is set). Without it oneDNN emulates bf16 convolutions, several times slower than fp32.
bool CpuHasNativeBf16();

/// Whether WinogradConv3x3 handles input x for a kernel with `out_channels` outputs: Winograd
/// preferred; x 4-D bfloat16 on CPU with at least one row; C_in a multiple of 16, out_channels of 32.
bool WinogradConv3x3Supports(const at::Tensor& x, int64_t out_channels);

/// y = conv(x, w) + b for a 3x3, stride-1, padding-1 convolution. x (N, C_in, H, W) bfloat16 (any
/// memory format); weight (C_out, C_in, 3, 3) fp32 or bf16; bias (C_out) or undefined. With
/// `flip_transpose` the kernel used is weight transposed in channels and flipped in space,
/// (C_in', C_out', 3, 3) -> (C_out', C_in', 3, 3): y is then the input gradient of the
/// convolution by `weight` for output gradient x. Returns (N, C_out, H, W) channels-last bf16.
at::Tensor WinogradConv3x3(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool flip_transpose);

/// Weight and bias gradients of y = conv(x, w) + b (3x3, stride 1, padding 1) from x (N, C_in,
/// H, W) and dy (N, C_out, H, W), both bfloat16: writes grad_weight (C_out, C_in, 3, 3) and
/// grad_bias (C_out) if defined, both contiguous fp32. Sums run in a fixed order: the bits do
/// not depend on the thread count.
void WinogradConv3x3WeightGrad(const at::Tensor& x, const at::Tensor& dy, at::Tensor grad_weight,
                               at::Tensor grad_bias);

}  // namespace skillgrid::skills
