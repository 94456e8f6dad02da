// Winograd kernels for bf16 3x3 "same" convolutions on CPUs with AVX512-BF16 but no AMX.
// bow_endpool_res's update is six 128->128 3x3 convolutions on 7x7 maps. In the Winograd domain
// an MH x MW output tile needs (MH + 2)(MW + 2) multiplies per channel pair where a direct
// convolution needs 9 MH MW: on 7x7 maps F(2x2) does 0.58 of the direct multiplies, F(2x4) 0.44
// and F(4x4) 0.33. Transforms run in fp32, the per-position products in bf16 with fp32
// accumulation (vdpbf16ps), as oneDNN's direct bf16 convolution does. Rounding the transformed
// operands to bf16 costs precision that grows with the tile (WinogradTile).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace skillgrid::skills {

/// Output tile of the bf16 Winograd kernels. Relative error norm of one 128-channel 7x7
/// convolution against fp32 (ReLU'd inputs): direct bf16 ~0.24 %, 2x2 ~0.37 %, 2x4 ~0.72 %,
/// 4x4 ~1.4 %; larger tiles do fewer multiplies (see above).
enum class WinogradTile { k2x2, k2x4, k4x4 };

/// The tile used unless SKILLGRID_WINOGRAD_TILE (2x2 | 2x4 | 4x4) says otherwise.
constexpr WinogradTile kDefaultWinogradTile = WinogradTile::k4x4;

/// The tile the kernels use now: a ScopedWinogradBf16Tile's, else SKILLGRID_WINOGRAD_TILE's
/// (read once; an invalid value throws c10::Error naming it), else kDefaultWinogradTile.
WinogradTile WinogradBf16Tile();

/// Output rows and columns (MH, MW) of a tile.
std::pair<int64_t, int64_t> WinogradTileSize(WinogradTile tile);

/// "2x2", "2x4" or "4x4".
const char* WinogradTileName(WinogradTile tile);

/// The tile a name ("2x2", "2x4", "4x4") denotes, or nullopt.
std::optional<WinogradTile> ParseWinogradTile(const std::string& text);

/// Overrides WinogradBf16Tile() while it lives (restores the previous override on destruction;
/// not thread-safe against running convolutions): lets tests and benchmarks compare tiles.
class ScopedWinogradBf16Tile {
 public:
  /// Makes WinogradBf16Tile() return `tile` until destruction.
  explicit ScopedWinogradBf16Tile(WinogradTile tile);
  ~ScopedWinogradBf16Tile();
  ScopedWinogradBf16Tile(const ScopedWinogradBf16Tile&) = delete;
  ScopedWinogradBf16Tile& operator=(const ScopedWinogradBf16Tile&) = delete;

 private:
  int previous_;
};

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

/// WinogradConv3x3 for rows grouped in blocks, each with its own kernel: rows [o_k, o_k +
/// rows_per_block[k]) of x (o_k the rows before block k) are convolved with kernels[k] (kernels
/// (K, C_out, C_in, 3, 3), or (K, C_in', C_out', 3, 3) with `flip_transpose`) plus biases[k]
/// (biases (K, C_out) or undefined). All blocks' chunks share one parallel loop, so a rollout
/// step's few rows per task still use every thread. Writes into `out` when given (bf16,
/// channels-last contiguous, the result's shape), else returns a new tensor.
at::Tensor WinogradConv3x3Blocks(const at::Tensor& x, const at::Tensor& kernels, const at::Tensor& biases,
                                 const std::vector<int64_t>& rows_per_block, bool flip_transpose,
                                 at::Tensor out = at::Tensor());

/// The low-rank epilogue of a routed convolution run as one Winograd call over the shared kernel
/// and every task's input-side factors: `both` (N, out + U r + pad, H, W) channels-last holds the
/// base output in its first `out` channels and then r channels per task slot; row n adds its
/// own slot's: y[n] = both[n, :out] + sum over k < r of both[n, out + s r + k] b[s r + k] with
/// s = slots[n], b (U r, out) fp32. Returns y (N, out, H, W) channels-last in both's type: bf16
/// (needs WinogradConvPreferred() and `out` a multiple of 16) or fp32. Rows split over threads;
/// every sum runs in a fixed order.
at::Tensor AddTaskLowRank(const at::Tensor& both, int64_t out, const at::Tensor& slots, int64_t r, const at::Tensor& b);

/// Weight and bias gradients of y = conv(x, w) + b (3x3, stride 1, padding 1) from x (N, C_in,
/// H, W) and dy (N, C_out, H, W), both bfloat16: writes grad_weight (C_out, C_in, 3, 3) and
/// grad_bias (C_out) if defined, both contiguous fp32. Sums run in a fixed order: the bits do
/// not depend on the thread count.
void WinogradConv3x3WeightGrad(const at::Tensor& x, const at::Tensor& dy, at::Tensor grad_weight,
                               at::Tensor grad_bias);

}  // namespace skillgrid::skills
