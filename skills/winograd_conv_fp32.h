// Winograd F(4x4, 3x3) for fp32 3x3 "same" convolutions, on CPUs without bf16 hardware.
// bow_endpool_res's update is six 128->128 3x3 convolutions on 7x7 maps; in the Winograd
// domain each is 36 independent products (one per position of a 6x6 tile), 0.33 of a direct
// convolution's multiplies on 7x7 maps (whose 4x4 output tiles cover 8x8), where oneDNN's direct
// fp32 kernels on an AVX2 CPU reached about half of the peak. The products run in an AVX2/FMA
// micro-kernel of our own (6 x 16 blocks, U packed once per call) when the vectorised channel
// count is a multiple of 8, else as OpenBLAS sgemm, which repacked U for every chunk; the own
// kernel made bow_endpool_res's update ~20 % faster on the AVX2 EPYC. The transforms are portable
// C++ over channels-last rows, vectorised over channels. F(4x4) replaced F(2x2) (0.58 of the
// multiplies) after measuring 25 % less time per pass; its rounding error, ~2e-6 of the
// output's scale, is about three times F(2x2)'s.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace skillgrid::skills {

/// Whether routed 3x3 convolutions in fp32 run through these kernels: on x86-64 CPUs without
/// AVX-512 or from AMD (where they were measured faster than oneDNN's direct kernels) with a
/// BLAS loaded.
/// SKILLGRID_WINOGRAD_FP32=1 turns them on anywhere (to measure), =0 or SKILLGRID_NO_WINOGRAD=1
/// off.
bool WinogradFp32Preferred();

/// Overrides WinogradFp32Preferred() while it lives (not nested, not thread-safe against
/// running convolutions): lets a test or benchmark run both paths in one process.
class ScopedWinogradFp32Preference {
 public:
  /// Makes WinogradFp32Preferred() return `preferred` until destruction.
  explicit ScopedWinogradFp32Preference(bool preferred);
  ~ScopedWinogradFp32Preference();
  ScopedWinogradFp32Preference(const ScopedWinogradFp32Preference&) = delete;
  ScopedWinogradFp32Preference& operator=(const ScopedWinogradFp32Preference&) = delete;
};

/// Whether a routed fp32 3x3 "same" convolution of x should run here: WinogradFp32Preferred(),
/// x supported, and at least 64 tiles (16 rows of 7x7 maps) in the whole batch (all task
/// blocks together, see WinogradConv3x3Fp32Blocks): below that the kernel transform and
/// per-call costs made it slower than oneDNN (measured on the AVX2 EPYC).
bool WinogradConv3x3Fp32Preferred(const at::Tensor& x);

/// Whether WinogradConv3x3Fp32 handles input x: 4-D fp32 on CPU with at least one row and
/// non-empty maps and channels.
bool WinogradConv3x3Fp32Supports(const at::Tensor& x);

/// y = conv(x, w) + b for a 3x3, stride-1, padding-1 convolution. x (N, C_in, H, W) fp32 (any
/// strides); weight (C_out, C_in, 3, 3); bias (C_out) or undefined. With `flip_transpose` the
/// kernel used is weight transposed in channels and flipped in space, so y is the input gradient
/// of the convolution by `weight` for output gradient x. Returns (N, C_out, H, W) channels-last:
/// written into `out` when it is given (fp32, that shape, channels-last contiguous, e.g. one task
/// block of a larger output), else into a new tensor. Results do not depend on the thread count.
at::Tensor WinogradConv3x3Fp32(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                               bool flip_transpose, at::Tensor out = at::Tensor());

/// WinogradConv3x3Fp32 for rows grouped in blocks, each with its own kernel: rows [o_k, o_k +
/// rows_per_block[k]) of x (o_k the rows before block k) are convolved with kernels[k] (kernels
/// (K, C_out, C_in, 3, 3), or (K, C_in', C_out', 3, 3) with `flip_transpose`) plus biases[k]
/// (biases (K, C_out) or undefined) into the same rows of the result. All blocks' chunks share
/// one parallel loop, so blocks too small to split (a rollout step's few rows per task) still
/// use every thread. Same results as one WinogradConv3x3Fp32 call per block.
at::Tensor WinogradConv3x3Fp32Blocks(const at::Tensor& x, const at::Tensor& kernels, const at::Tensor& biases,
                                     const std::vector<int64_t>& rows_per_block, bool flip_transpose,
                                     at::Tensor out = at::Tensor());

/// Weight and bias gradients of y = conv(x, w) + b (3x3, stride 1, padding 1) from x (N, C_in,
/// H, W) and dy (N, C_out, H, W), fp32: writes grad_weight (C_out, C_in, 3, 3) and grad_bias
/// (C_out) if defined. Sums run in a fixed order: the bits do not depend on the thread count.
void WinogradConv3x3Fp32WeightGrad(const at::Tensor& x, const at::Tensor& dy, at::Tensor grad_weight,
                                   at::Tensor grad_bias);

}  // namespace skillgrid::skills
