#include "skills/winograd_conv_fp32.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "skills/blas_runtime.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SKILLGRID_OWN_PRODUCTS 1
#endif

namespace skillgrid::skills {
namespace {

// Winograd F(4x4, 3x3): each 4x4 output tile comes from a 6x6 input patch through 36
// independent products, one per position of the 6x6 transformed tile (Lavin and Gray's
// interpolation points 0, 1, -1, 2, -2 and infinity).
constexpr int kTile = 4;                         // output tile side
constexpr int kPatch = kTile + 2;                // input patch side
constexpr int kPositions = kPatch * kPatch;      // products per tile
// Tiles per chunk: the unit of work and of the scratch buffers (36 x 128 x 36 floats = 648 KB
// per operand with 128 channels). 36 = nine 7x7 maps = six whole micro-tile rows of the own
// products; it ran ~9 % faster than 32, 16, 24, 48 or 64 there (README). Fixed, so the weight
// gradient's sums do not follow the thread count.
constexpr int64_t kTilesPerChunk = 36;
// Fewest tiles for which routed convolutions take these kernels (WinogradConv3x3Fp32Preferred).
constexpr int64_t kMinTiles = 64;
// Chunk groups whose weight-gradient partial sums are added in order at the end.
constexpr int64_t kMaxGroups = 4;
// The own products' micro-tiles: six rows (12 accumulators with two vectors), fewer at the edge,
// by a panel of two vectors of 8 columns; an edge panel may have one.
constexpr int64_t kTileRows = 6;
constexpr int64_t kPanelWidth = 16;

// The transforms' loops run over channels, 8 at a time in GCC vector types (a scalar tail for the
// rest); each is compiled twice, for AVX2 and for the baseline, and picked on first call.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SKILLGRID_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SKILLGRID_AVX2_CLONES
#endif
#pragma GCC diagnostic ignored "-Wpsabi"  // F8 by value: every helper is inlined, no ABI crosses
typedef float F8 __attribute__((vector_size(32)));
inline F8 Load(const float* p, F8) {
  F8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline float Load(const float* p, float) { return *p; }
inline void Store(float* p, F8 v) { std::memcpy(p, &v, sizeof(v)); }
inline void Store(float* p, float v) { *p = v; }
constexpr int64_t kLanes = sizeof(F8) / sizeof(float);

// Tile geometry: 4x4 output tiles over an H x W map, chunked by whole samples.
struct Geometry {
  int64_t n, in, out, h, w;
  int64_t tiles_h() const { return (h + kTile - 1) / kTile; }
  int64_t tiles_w() const { return (w + kTile - 1) / kTile; }
  int64_t tiles_per_sample() const { return tiles_h() * tiles_w(); }
  int64_t samples_per_chunk() const { return std::max<int64_t>(1, kTilesPerChunk / tiles_per_sample()); }
  int64_t chunks() const { return (n + samples_per_chunk() - 1) / samples_per_chunk(); }
  // The first sample of chunk c, and one past its last.
  int64_t chunk_begin(int64_t c) const { return c * samples_per_chunk(); }
  int64_t chunk_end(int64_t c) const { return std::min(n, chunk_begin(c) + samples_per_chunk()); }
};

// Scratch kept per thread between calls: U (either layout), V, M (or E) and the gradient sums, several
// MB each with 128 channels, allocated afresh on every call cost page faults and the kernel's
// page zeroing (~6 % of bow_endpool_res's update on the AVX2 EPYC). Buffers only grow: with 128
// channels the calling thread holds 2.4 MB of U per block and 9.4 MB of sums, each worker 1.3 MB.
enum class Scratch { kKernels, kTiles, kProducts, kSums, kCount };

// This thread's buffer `slot`, at least `floats` long; contents undefined.
float* ScratchBuffer(Scratch slot, int64_t floats) {
  struct Buffer {
    std::unique_ptr<float[]> data;
    int64_t capacity = 0;
  };
  thread_local Buffer buffers[static_cast<int>(Scratch::kCount)];
  Buffer& b = buffers[static_cast<int>(slot)];
  if (b.capacity < floats) {
    b.data.reset(new float[static_cast<size_t>(floats)]);
    b.capacity = floats;
  }
  return b.data.get();
}

// The five one-dimensional transforms; each 2-D transform applies one along columns, then rows.

// G g: the kernel's three taps to six, G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
// 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
template <typename T>
inline __attribute__((always_inline)) void KernelLine(const T g[3], T u[6]) {
  const T outer = g[0] + g[2], mid = (1.0f / 24) * g[0] + (1.0f / 6) * g[2], odd = (1.0f / 12) * g[1];
  u[0] = 0.25f * g[0];
  u[1] = (-1.0f / 6) * (outer + g[1]);
  u[2] = (-1.0f / 6) * (outer - g[1]);
  u[3] = mid + odd;
  u[4] = mid - odd;
  u[5] = g[2];
}

// G^T du: six kernel-domain values back to three taps (the weight gradient's last step).
template <typename T>
inline __attribute__((always_inline)) void KernelGradLine(const T u[6], T g[3]) {
  const T s12 = u[1] + u[2], s34 = u[3] + u[4];
  g[0] = 0.25f * u[0] - (1.0f / 6) * s12 + (1.0f / 24) * s34;
  g[1] = (1.0f / 6) * (u[2] - u[1]) + (1.0f / 12) * (u[3] - u[4]);
  g[2] = (1.0f / 6) * (s34 - s12) + u[5];
}

// B^T d: six input cells to six, B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
// 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
template <typename T>
inline __attribute__((always_inline)) void InputLine(const T d[6], T o[6]) {
  const T a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1], c = d[4] - d[2], e = 2.0f * (d[3] - d[1]);
  o[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  o[1] = a + b;
  o[2] = a - b;
  o[3] = c + e;
  o[4] = c - e;
  o[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// A^T m: six products to four outputs, A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
// 0 1 -1 8 -8 1].
template <typename T>
inline __attribute__((always_inline)) void OutputLine(const T m[6], T y[4]) {
  const T a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
  y[0] = m[0] + a + c;
  y[1] = b + 2.0f * d;
  y[2] = a + 4.0f * c;
  y[3] = b + 8.0f * d + m[5];
}

// A dy: four output-gradient cells to six (the transpose of OutputLine).
template <typename T>
inline __attribute__((always_inline)) void OutputGradLine(const T d[4], T e[6]) {
  const T even1 = d[0] + d[2], odd1 = d[1] + d[3], even2 = d[0] + 4.0f * d[2], odd2 = 2.0f * d[1] + 8.0f * d[3];
  e[0] = d[0];
  e[1] = even1 + odd1;
  e[2] = even1 - odd1;
  e[3] = even2 + odd2;
  e[4] = even2 - odd2;
  e[5] = d[3];
}

// L x L^T for a one-dimensional transform L (`line`, kIn values to kOut): `line` on each column of
// the kIn x kIn input, whose cell (a, b) is load(a, b), then on each row of the result, whose
// cell (a, b) goes to store(a, b, value). Loads and stores go straight to memory: staging whole
// tiles in arrays made the input transform take ~1.7x as long (AVX2 EPYC profile).
template <int kIn, int kOut, typename T, typename LoadCell, typename Line, typename StoreCell>
inline __attribute__((always_inline)) void TwoPass(LoadCell load, Line line, StoreCell store) {
  T t[kOut][kIn];  // L x
#pragma GCC unroll 6
  for (int b = 0; b < kIn; ++b) {
    T column[kIn], out[kOut];
#pragma GCC unroll 6
    for (int a = 0; a < kIn; ++a) column[a] = load(a, b);
    line(column, out);
#pragma GCC unroll 6
    for (int a = 0; a < kOut; ++a) t[a][b] = out[a];
  }
#pragma GCC unroll 6
  for (int a = 0; a < kOut; ++a) {
    T row[kOut];
    line(t[a], row);
#pragma GCC unroll 6
    for (int b = 0; b < kOut; ++b) store(a, b, row[b]);
  }
}

// (G g G^T) of the kernels at input channels i..: g[k * in + i] is tap k (row-major 3x3) of
// input channel i; writes u[p * ps + i].
template <typename T>
inline __attribute__((always_inline)) void KernelChannels(const float* g, int64_t in, int64_t i, float* u,
                                                          int64_t ps) {
  TwoPass<3, kPatch, T>([&](int a, int b) { return Load(g + (a * 3 + b) * in + i, T()); },
                        [](const T* x, T* y) { KernelLine(x, y); },
                        [&](int a, int b, T v) { Store(u + (a * kPatch + b) * ps + i, v); });
}

// G^T dU G of the kernels at input channels i.. from their 36 positions u[p * ps + i]; writes
// tap k of input channel i to dw[k * in + i].
template <typename T>
inline __attribute__((always_inline)) void KernelGradChannels(const float* u, int64_t ps, int64_t in, int64_t i,
                                                              float* dw) {
  TwoPass<kPatch, 3, T>([&](int a, int b) { return Load(u + (a * kPatch + b) * ps + i, T()); },
                        [](const T* x, T* y) { KernelGradLine(x, y); },
                        [&](int a, int b, T v) { Store(dw + (a * 3 + b) * in + i, v); });
}

// U (36, C_out, C_in) of output channels [o0, o1) from taps (C_out, 9, C_in).
SKILLGRID_AVX2_CLONES void KernelTransform(const float* taps, int64_t out, int64_t in, int64_t o0, int64_t o1,
                                           float* u) {
  for (int64_t o = o0; o < o1; ++o) {
    int64_t i = 0;
    for (; i + kLanes <= in; i += kLanes) KernelChannels<F8>(taps + o * 9 * in, in, i, u + o * in, out * in);
    for (; i < in; ++i) KernelChannels<float>(taps + o * 9 * in, in, i, u + o * in, out * in);
  }
}

// U of input channels [i0, i1) straight into the own products' panels (KernelsTransform), from
// taps (C_in, 9, C_out): vectorised over output channels, so each position's 8 values are contiguous
// in their panel. C_out must be a multiple of 8 (as UseOwnProducts requires).
SKILLGRID_AVX2_CLONES void KernelPanelsTransform(const float* taps, int64_t out, int64_t in, int64_t i0, int64_t i1,
                                                 float* panels) {
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t o = 0; o + kLanes <= out; o += kLanes) {
      const int64_t o0 = o / kPanelWidth * kPanelWidth, width = std::min(kPanelWidth, out - o0);
      float* dst = panels + o0 * in + i * width + (o - o0);
      TwoPass<3, kPatch, F8>([&](int a, int b) { return Load(taps + (i * 9 + a * 3 + b) * out + o, F8()); },
                             [](const F8* x, F8* y) { KernelLine(x, y); },
                             [&](int a, int b, F8 v) { Store(dst + (a * kPatch + b) * out * in, v); });
    }
  }
}

// The inverse direction for the weight gradient: taps (C_out, 9, C_in) of output channels
// [o0, o1) from dU (36, C_out, C_in).
SKILLGRID_AVX2_CLONES void KernelGradTransform(const float* du, int64_t out, int64_t in, int64_t o0, int64_t o1,
                                               float* taps) {
  for (int64_t o = o0; o < o1; ++o) {
    int64_t i = 0;
    for (; i + kLanes <= in; i += kLanes) KernelGradChannels<F8>(du + o * in, out * in, in, i, taps + o * 9 * in);
    for (; i < in; ++i) KernelGradChannels<float>(du + o * in, out * in, in, i, taps + o * 9 * in);
  }
}

// Taps of kernels (K, C_out, C_in, 3, 3), or with `flip` of kernels (K, C_in', C_out', 3, 3) used
// transposed in channels and rotated by 180 degrees, laid out for the kernel transforms: (K, C_out,
// 3, 3, C_in) for KernelTransform (`inner_out` false), (K, C_in, 3, 3, C_out) for
// KernelPanelsTransform.
at::Tensor KernelTaps(const at::Tensor& kernels, bool flip, bool inner_out) {
  // Dimensions 1 and 2 as (output, input) channels of the kernel used.
  const at::Tensor used = flip ? kernels.flip({3, 4}).transpose(1, 2) : kernels;
  return (inner_out ? used.permute({0, 2, 3, 4, 1}) : used.permute({0, 1, 3, 4, 2})).contiguous();
}

// U of every block's kernel into u (K blocks of 36 x C_out x C_in): (36, C_out, C_in) per block for
// the BLAS products, or the own products' panels (KernelPanelsTransform) with `panels`.
void KernelsTransform(const at::Tensor& kernels, bool flip, bool panels, int64_t out, int64_t in, float* u) {
  const at::Tensor taps = KernelTaps(kernels, flip, panels);
  const float* tp = taps.data_ptr<float>();
  const int64_t blocks = kernels.size(0), per_block = kPositions * out * in;
  const int64_t rows = panels ? in : out;  // the channels the work splits over
  at::parallel_for(0, blocks * rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin / rows; k * rows < end; ++k) {
      const int64_t r0 = std::max(begin, k * rows) - k * rows, r1 = std::min(end, (k + 1) * rows) - k * rows;
      const float* block_taps = tp + k * 9 * out * in;
      if (panels) {
        KernelPanelsTransform(block_taps, out, in, r0, r1, u + k * per_block);
      } else {
        KernelTransform(block_taps, out, in, r0, r1, u + k * per_block);
      }
    }
  });
}

// One tile's B^T d B at channels c.. (one lane type's width) from its 36 input cells into V.
template <typename T>
inline __attribute__((always_inline)) void InputTileChannels(const float* const d[kPatch][kPatch], int64_t c,
                                                             float* o, int64_t ps) {
  TwoPass<kPatch, kPatch, T>([&](int a, int b) { return Load(d[a][b] + c, T()); },
                             [](const T* x, T* y) { InputLine(x, y); },
                             [&](int a, int b, T v) { Store(o + (a * kPatch + b) * ps + c, v); });
}

// One tile's A^T m A plus bias at output channels o.. into its 16 output cells.
template <typename T>
inline __attribute__((always_inline)) void OutputTileChannels(const float* q, int64_t ps, const float* bias,
                                                              int64_t o, float* const dst[kTile][kTile]) {
  const T bv = Load(bias + o, T());
  TwoPass<kPatch, kTile, T>([&](int a, int b) { return Load(q + (a * kPatch + b) * ps + o, T()); },
                            [](const T* x, T* y) { OutputLine(x, y); },
                            [&](int i, int j, T v) { Store(dst[i][j] + o, v + bv); });
}

// One output-gradient tile's A dy A^T at channels o.. from its 16 cells into E.
template <typename T>
inline __attribute__((always_inline)) void OutputGradTileChannels(const float* const d[kTile][kTile], int64_t o,
                                                                  float* q, int64_t ps) {
  TwoPass<kTile, kPatch, T>([&](int i, int j) { return Load(d[i][j] + o, T()); },
                            [](const T* x, T* y) { OutputGradLine(x, y); },
                            [&](int a, int b, T v) { Store(q + (a * kPatch + b) * ps + o, v); });
}

// V (36, T, C) of the chunk's samples [s0, s1) of x (N, H, W, C channels-last): B^T d B of each
// tile's 6x6 input patch (rows 4r-1..4r+4, zero outside the map). Channels are contiguous in
// both x and V; `zeros` holds C zeros for cells outside the map.
SKILLGRID_AVX2_CLONES void InputTransform(const float* x, const Geometry& g, int64_t channels, int64_t s0, int64_t s1,
                                          float* v, const float* zeros) {
  const int64_t t_chunk = (s1 - s0) * g.tiles_per_sample();
  const int64_t ps = t_chunk * channels;  // position stride
  for (int64_t s = s0; s < s1; ++s) {
    const float* xs = x + s * g.h * g.w * channels;
    for (int64_t tr = 0; tr < g.tiles_h(); ++tr) {
      for (int64_t tc = 0; tc < g.tiles_w(); ++tc) {
        const float* d[kPatch][kPatch];
        for (int a = 0; a < kPatch; ++a) {
          const int64_t r = kTile * tr - 1 + a;
          for (int b = 0; b < kPatch; ++b) {
            const int64_t c = kTile * tc - 1 + b;
            d[a][b] = (r >= 0 && r < g.h && c >= 0 && c < g.w) ? xs + (r * g.w + c) * channels : zeros;
          }
        }
        const int64_t t = (s - s0) * g.tiles_per_sample() + tr * g.tiles_w() + tc;
        float* o = v + t * channels;
        int64_t c = 0;
        for (; c + kLanes <= channels; c += kLanes) InputTileChannels<F8>(d, c, o, ps);
        for (; c < channels; ++c) InputTileChannels<float>(d, c, o, ps);
      }
    }
  }
}

// y (N, H, W, C_out channels-last) for samples [s0, s1) from M (36, T, C_out): A^T m A of each
// tile plus the bias; outputs past the map go to `spill` (C_out floats) and are dropped.
SKILLGRID_AVX2_CLONES void OutputTransform(const float* m, const Geometry& g, const float* bias, const float* zeros,
                                           int64_t s0, int64_t s1, float* spill, float* y) {
  const int64_t t_chunk = (s1 - s0) * g.tiles_per_sample();
  const int64_t ps = t_chunk * g.out;
  const float* b = bias != nullptr ? bias : zeros;
  for (int64_t s = s0; s < s1; ++s) {
    float* ys = y + s * g.h * g.w * g.out;
    for (int64_t tr = 0; tr < g.tiles_h(); ++tr) {
      for (int64_t tc = 0; tc < g.tiles_w(); ++tc) {
        const int64_t t = (s - s0) * g.tiles_per_sample() + tr * g.tiles_w() + tc;
        const float* q = m + t * g.out;
        float* dst[kTile][kTile];
        for (int i = 0; i < kTile; ++i) {
          for (int j = 0; j < kTile; ++j) {
            const int64_t r = kTile * tr + i, c = kTile * tc + j;
            dst[i][j] = (r < g.h && c < g.w) ? ys + (r * g.w + c) * g.out : spill;
          }
        }
        int64_t o = 0;
        for (; o + kLanes <= g.out; o += kLanes) OutputTileChannels<F8>(q, ps, b, o, dst);
        for (; o < g.out; ++o) OutputTileChannels<float>(q, ps, b, o, dst);
      }
    }
  }
}

// E (36, T, C_out) for samples [s0, s1) of dy (N, H, W, C_out channels-last): A dy A^T of each
// 4x4 output tile (zero past the map), the factor the weight gradient multiplies V by at each
// position.
SKILLGRID_AVX2_CLONES void OutputGradTransform(const float* dy, const Geometry& g, const float* zeros, int64_t s0,
                                               int64_t s1, float* e) {
  const int64_t t_chunk = (s1 - s0) * g.tiles_per_sample();
  const int64_t ps = t_chunk * g.out;
  for (int64_t s = s0; s < s1; ++s) {
    const float* dys = dy + s * g.h * g.w * g.out;
    for (int64_t tr = 0; tr < g.tiles_h(); ++tr) {
      for (int64_t tc = 0; tc < g.tiles_w(); ++tc) {
        const float* d[kTile][kTile];
        for (int i = 0; i < kTile; ++i) {
          for (int j = 0; j < kTile; ++j) {
            const int64_t r = kTile * tr + i, c = kTile * tc + j;
            d[i][j] = (r < g.h && c < g.w) ? dys + (r * g.w + c) * g.out : zeros;
          }
        }
        const int64_t t = (s - s0) * g.tiles_per_sample() + tr * g.tiles_w() + tc;
        float* q = e + t * g.out;
        int64_t o = 0;
        for (; o + kLanes <= g.out; o += kLanes) OutputGradTileChannels<F8>(d, o, q, ps);
        for (; o < g.out; ++o) OutputGradTileChannels<float>(d, o, q, ps);
      }
    }
  }
}

#if SKILLGRID_OWN_PRODUCTS
// The 36 products per chunk run in an AVX2/FMA micro-kernel of our own rather than OpenBLAS:
// its sgemm repacked U (2.4 MB for 128 channels) for every 32-tile chunk and zeroed C before
// each beta-0 product, ~14 % of bow_endpool_res's update on the AVX2 EPYC. Here U is packed once
// per convolution (KernelsTransformToPanels) and V and E are read where the transforms wrote them.
#define SKILLGRID_AVX2_FMA __attribute__((target("avx2,fma")))

// Rows x (8 * kVecs) block of C (+)= A B over k: A(r, k) = a[r * a_row + k * a_k], B's row k at
// b + k * b_k, C's row r at c + r * c_row. kRows * kVecs accumulators stay in registers (at most
// 12 of AVX2's 16), the rest hold B's row and A's broadcast value.
template <int kRows, int kVecs>
SKILLGRID_AVX2_FMA inline __attribute__((always_inline)) void MicroTile(int64_t k_count, const float* a, int64_t a_row,
                                                                       int64_t a_k, const float* b, int64_t b_k,
                                                                       float* c, int64_t c_row, bool accumulate) {
  __m256 acc[kRows][kVecs];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 2
    for (int j = 0; j < kVecs; ++j) acc[r][j] = accumulate ? _mm256_loadu_ps(c + r * c_row + 8 * j) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < k_count; ++k) {
    __m256 row[kVecs];
#pragma GCC unroll 2
    for (int j = 0; j < kVecs; ++j) row[j] = _mm256_loadu_ps(b + 8 * j);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m256 value = _mm256_broadcast_ss(a + r * a_row);
#pragma GCC unroll 2
      for (int j = 0; j < kVecs; ++j) acc[r][j] = _mm256_fmadd_ps(value, row[j], acc[r][j]);
    }
    a += a_k;
    b += b_k;
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 2
    for (int j = 0; j < kVecs; ++j) _mm256_storeu_ps(c + r * c_row + 8 * j, acc[r][j]);
  }
}

// MicroTile for 1..6 rows and 8 or 16 columns.
SKILLGRID_AVX2_FMA void MicroTileAnySize(int64_t rows, int64_t width, int64_t k_count, const float* a, int64_t a_row,
                                         int64_t a_k, const float* b, int64_t b_k, float* c, int64_t c_row,
                                         bool accumulate) {
#define SKILLGRID_TILE_CASE(R)                                                    \
  case R:                                                                         \
    if (width == 16)                                                              \
      MicroTile<R, 2>(k_count, a, a_row, a_k, b, b_k, c, c_row, accumulate);      \
    else                                                                          \
      MicroTile<R, 1>(k_count, a, a_row, a_k, b, b_k, c, c_row, accumulate);      \
    break;
  switch (rows) {
    SKILLGRID_TILE_CASE(1)
    SKILLGRID_TILE_CASE(2)
    SKILLGRID_TILE_CASE(3)
    SKILLGRID_TILE_CASE(4)
    SKILLGRID_TILE_CASE(5)
    SKILLGRID_TILE_CASE(6)
    default:
      break;
  }
#undef SKILLGRID_TILE_CASE
}

// M_p (t, out) = V_p (t, in) U_p^T at every position, U in KernelsTransformToPanels' layout.
SKILLGRID_AVX2_FMA void OwnForwardProducts(const float* v, const float* panels, int64_t t, int64_t in, int64_t out,
                                           float* m) {
  for (int p = 0; p < kPositions; ++p) {
    const float* vp = v + p * t * in;
    float* mp = m + p * t * out;
    for (int64_t o0 = 0; o0 < out; o0 += kPanelWidth) {
      const int64_t width = std::min(kPanelWidth, out - o0);
      const float* panel = panels + (p * out + o0) * in;  // B (in, width): row k holds U_p[o0.., k]
      for (int64_t r0 = 0; r0 < t; r0 += kTileRows) {
        MicroTileAnySize(std::min(kTileRows, t - r0), width, in, vp + r0 * in, in, 1, panel, width, mp + r0 * out + o0,
                         out, false);
      }
    }
  }
}

// dU_p (out, in) (+)= E_p^T (out, t) V_p (t, in) at every position: sums over the chunk's tiles.
SKILLGRID_AVX2_FMA void OwnWeightGradProducts(const float* e, const float* v, int64_t t, int64_t in, int64_t out,
                                              bool accumulate, float* du) {
  for (int p = 0; p < kPositions; ++p) {
    const float* ep = e + p * t * out;
    const float* vp = v + p * t * in;
    float* dup = du + p * out * in;
    for (int64_t i0 = 0; i0 < in; i0 += kPanelWidth) {
      const int64_t width = std::min(kPanelWidth, in - i0);
      for (int64_t o0 = 0; o0 < out; o0 += kTileRows) {
        MicroTileAnySize(std::min(kTileRows, out - o0), width, t, ep + o0, 1, out, vp + i0, in, dup + o0 * in + i0, in,
                         accumulate);
      }
    }
  }
}

// Whether this CPU runs the own products (AVX2 and FMA).
bool OwnProductsSupported() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return supported;
}

// Whether the products of a convolution whose vectors run over `width` channels (C_out forward,
// C_in for the weight gradient) use the own kernel: AVX2/FMA and whole vectors of 8.
bool UseOwnProducts(int64_t width) { return width % 8 == 0 && OwnProductsSupported(); }

#else
// Elsewhere every product runs in the BLAS; these are never called.
bool UseOwnProducts(int64_t) { return false; }
void OwnForwardProducts(const float*, const float*, int64_t, int64_t, int64_t, float*) {
  TORCH_CHECK(false, "WinogradConv3x3Fp32: no own products on this CPU");
}
void OwnWeightGradProducts(const float*, const float*, int64_t, int64_t, int64_t, bool, float*) {
  TORCH_CHECK(false, "WinogradConv3x3Fp32WeightGrad: no own products on this CPU");
}
#endif

void CheckGemm(bool ok) {
  TORCH_CHECK(ok, "WinogradConv3x3Fp32: no BLAS library is loaded (check WinogradFp32Preferred first)");
}

// -1: no override; else the value ScopedWinogradFp32Preference set.
std::atomic<int> preference_override{-1};

}  // namespace

ScopedWinogradFp32Preference::ScopedWinogradFp32Preference(bool preferred) { preference_override = preferred ? 1 : 0; }

ScopedWinogradFp32Preference::~ScopedWinogradFp32Preference() { preference_override = -1; }

bool WinogradFp32Preferred() {
  const int forced = preference_override.load();
  if (forced >= 0) return forced == 1;
  static const bool preferred = [] {
    const char* force = std::getenv("SKILLGRID_WINOGRAD_FP32");
    const char* off = std::getenv("SKILLGRID_NO_WINOGRAD");
    if (force != nullptr && std::string(force) == "0") return false;
    if (off != nullptr && std::string(off) == "1") return false;
    float probe = 0.0f;
    const bool blas = RowMajorGemm(false, false, 1, 1, 1, &probe, 1, &probe, 1, 0.0f, &probe, 1);
    if (!blas) return false;
    if (force != nullptr && std::string(force) == "1") return true;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    // AMD's AVX-512 (Zen 4) runs 512-bit FMAs as two 256-bit halves, so oneDNN's direct kernels
    // gain nothing there over these AVX2 ones: 189-203 frames/s for bow_endpool_res against
    // 133 with oneDNN (2026-12-04). Intel's two 512-bit FMA units keep oneDNN.
    return !__builtin_cpu_supports("avx512f") || __builtin_cpu_is("amd");
#else
    return false;
#endif
  }();
  return preferred;
}

bool WinogradConv3x3Fp32Supports(const at::Tensor& x) {
  return x.defined() && x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == at::kFloat && x.size(0) > 0 &&
         x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0;
}

bool WinogradConv3x3Fp32Preferred(const at::Tensor& x) {
  if (!WinogradConv3x3Fp32Supports(x) || !WinogradFp32Preferred()) return false;
  const Geometry g{x.size(0), x.size(1), x.size(1), x.size(2), x.size(3)};
  return g.n * g.tiles_per_sample() >= kMinTiles;
}

at::Tensor WinogradConv3x3Fp32(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                               bool flip_transpose, at::Tensor out) {
  TORCH_CHECK(WinogradConv3x3Fp32Supports(x), "WinogradConv3x3Fp32: x must be 4-D non-empty fp32 on CPU, got ",
              x.sizes(), " ", x.scalar_type(), " on ", x.device());
  TORCH_CHECK(weight.dim() == 4, "WinogradConv3x3Fp32: weight ", weight.sizes(), " must be 4-D");
  return WinogradConv3x3Fp32Blocks(x, weight.unsqueeze(0), bias.defined() ? bias.reshape({1, -1}) : bias, {x.size(0)},
                                   flip_transpose, out);
}

at::Tensor WinogradConv3x3Fp32Blocks(const at::Tensor& x_in, const at::Tensor& kernels, const at::Tensor& biases,
                                     const std::vector<int64_t>& rows_per_block, bool flip_transpose, at::Tensor y) {
  TORCH_CHECK(WinogradConv3x3Fp32Supports(x_in), "WinogradConv3x3Fp32: x must be 4-D non-empty fp32 on CPU, got ",
              x_in.sizes(), " ", x_in.scalar_type(), " on ", x_in.device());
  TORCH_CHECK(kernels.dim() == 5 && kernels.size(3) == 3 && kernels.size(4) == 3 &&
                  kernels.scalar_type() == at::kFloat &&
                  (flip_transpose ? kernels.size(1) : kernels.size(2)) == x_in.size(1) &&
                  kernels.size(0) == static_cast<int64_t>(rows_per_block.size()),
              "WinogradConv3x3Fp32: kernels ", kernels.sizes(), " (", kernels.scalar_type(), ", flip_transpose ",
              flip_transpose, ") do not fit input ", x_in.sizes(), " in ", rows_per_block.size(), " blocks");
  const int64_t blocks = kernels.size(0);
  const int64_t out = flip_transpose ? kernels.size(2) : kernels.size(1);
  const int64_t in = x_in.size(1);
  TORCH_CHECK(!biases.defined() || (biases.numel() == blocks * out && biases.scalar_type() == at::kFloat),
              "WinogradConv3x3Fp32: bias ", biases.sizes(), " for ", blocks, " blocks of ", out, " output channels");
  int64_t total_rows = 0;
  for (const int64_t n : rows_per_block) {
    TORCH_CHECK(n >= 0, "WinogradConv3x3Fp32: negative block of ", n, " rows");
    total_rows += n;
  }
  TORCH_CHECK(total_rows == x_in.size(0), "WinogradConv3x3Fp32: blocks of ", total_rows, " rows for x ", x_in.sizes());
  const at::Tensor x = x_in.contiguous(at::MemoryFormat::ChannelsLast);
  const Geometry g{x.size(0), in, out, x.size(2), x.size(3)};
  if (y.defined()) {
    TORCH_CHECK(y.sizes() == at::IntArrayRef({g.n, out, g.h, g.w}) && y.scalar_type() == at::kFloat &&
                    y.device().is_cpu() && y.is_contiguous(at::MemoryFormat::ChannelsLast),
                "WinogradConv3x3Fp32: out ", y.sizes(), " (", y.scalar_type(), ", strides ", y.strides(),
                ") must be fp32 channels-last [", g.n, ", ", out, ", ", g.h, ", ", g.w, "] on CPU");
  } else {
    y = at::empty({g.n, out, g.h, g.w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  }
  const bool own = UseOwnProducts(out);
  // Every block's U, in the layout its products read.
  const int64_t per_block = kPositions * out * in;
  float* u = ScratchBuffer(Scratch::kKernels, blocks * per_block);
  KernelsTransform(kernels.contiguous(), flip_transpose, own, out, in, u);
  const std::vector<float> zeros(static_cast<size_t>(std::max(in, out)), 0.0f);
  const at::Tensor b = biases.defined() ? biases.reshape({blocks, out}).contiguous() : at::Tensor();
  // Work items: each block's chunks (samples [s0, s1) of x), all in one parallel loop.
  struct Item {
    int64_t block, s0, s1;
  };
  std::vector<Item> items;
  int64_t offset = 0;
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t end = offset + rows_per_block[static_cast<size_t>(k)];
    for (int64_t s0 = offset; s0 < end; s0 += g.samples_per_chunk()) {
      items.push_back({k, s0, std::min(end, s0 + g.samples_per_chunk())});
    }
    offset = end;
  }
  const float* xp = x.data_ptr<float>();
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t most_tiles = g.samples_per_chunk() * g.tiles_per_sample();
  at::parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t begin, int64_t end) {
    float* v = ScratchBuffer(Scratch::kTiles, kPositions * in * most_tiles);
    float* m = ScratchBuffer(Scratch::kProducts, kPositions * out * most_tiles);
    std::vector<float> spill(static_cast<size_t>(out));
    for (int64_t i = begin; i < end; ++i) {
      const Item& item = items[static_cast<size_t>(i)];
      const int64_t t = (item.s1 - item.s0) * g.tiles_per_sample();
      const float* uk = u + item.block * per_block;
      InputTransform(xp, g, in, item.s0, item.s1, v, zeros.data());
      if (own) {
        OwnForwardProducts(v, uk, t, in, out, m);
      } else {
        for (int p = 0; p < kPositions; ++p) {
          // M_p (T, out) = V_p (T, in) U_p^T (in, out)
          CheckGemm(RowMajorGemm(false, true, t, out, in, v + p * t * in, in, uk + p * out * in, in, 0.0f,
                                 m + p * t * out, out));
        }
      }
      OutputTransform(m, g, bp != nullptr ? bp + item.block * out : nullptr, zeros.data(), item.s0, item.s1,
                      spill.data(), yp);
    }
  });
  return y;
}

void WinogradConv3x3Fp32WeightGrad(const at::Tensor& x_in, const at::Tensor& dy_in, at::Tensor grad_weight,
                                   at::Tensor grad_bias) {
  TORCH_CHECK(WinogradConv3x3Fp32Supports(x_in) && WinogradConv3x3Fp32Supports(dy_in) &&
                  x_in.size(0) == dy_in.size(0) && x_in.size(2) == dy_in.size(2) && x_in.size(3) == dy_in.size(3),
              "WinogradConv3x3Fp32WeightGrad: x ", x_in.sizes(), " and dy ", dy_in.sizes(),
              " must be fp32 on CPU with the same N, H, W");
  const at::Tensor x = x_in.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor dy = dy_in.contiguous(at::MemoryFormat::ChannelsLast);
  const Geometry g{x.size(0), x.size(1), dy.size(1), x.size(2), x.size(3)};
  TORCH_CHECK(grad_weight.sizes() == at::IntArrayRef({g.out, g.in, 3, 3}) && grad_weight.scalar_type() == at::kFloat,
              "WinogradConv3x3Fp32WeightGrad: grad_weight ", grad_weight.sizes(), ", expected [", g.out, ", ", g.in,
              ", 3, 3] fp32");
  const int64_t chunks = g.chunks(), groups = std::min(chunks, kMaxGroups);
  const int64_t uk = kPositions * g.out * g.in;
  // Not zeroed: each group's first product overwrites its sums (beta 0), in the group's thread.
  float* partial = ScratchBuffer(Scratch::kSums, groups * uk);
  const float* xp = x.data_ptr<float>();
  const float* dyp = dy.data_ptr<float>();
  const std::vector<float> zeros(static_cast<size_t>(std::max(g.in, g.out)), 0.0f);
  const bool own = UseOwnProducts(g.in);
  const int64_t most_tiles = g.samples_per_chunk() * g.tiles_per_sample();
  at::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
    float* v = ScratchBuffer(Scratch::kTiles, kPositions * g.in * most_tiles);
    float* e = ScratchBuffer(Scratch::kProducts, kPositions * g.out * most_tiles);
    for (int64_t grp = begin; grp < end; ++grp) {
      float* du = partial + grp * uk;
      const int64_t first = grp * chunks / groups;
      for (int64_t chunk = first; chunk < (grp + 1) * chunks / groups; ++chunk) {
        const int64_t s0 = g.chunk_begin(chunk), s1 = g.chunk_end(chunk);
        const int64_t t = (s1 - s0) * g.tiles_per_sample();
        InputTransform(xp, g, g.in, s0, s1, v, zeros.data());
        OutputGradTransform(dyp, g, zeros.data(), s0, s1, e);
        if (own) {
          OwnWeightGradProducts(e, v, t, g.in, g.out, chunk != first, du);
          continue;
        }
        for (int p = 0; p < kPositions; ++p) {
          // dU_p (out, in) += E_p^T (out, T) V_p (T, in)
          CheckGemm(RowMajorGemm(true, false, g.out, g.in, t, e + p * t * g.out, g.out, v + p * t * g.in, g.in,
                                 chunk == first ? 0.0f : 1.0f, du + p * g.out * g.in, g.in));
        }
      }
    }
  });
  at::Tensor taps = at::empty({g.out, 3, 3, g.in}, x.options().memory_format(at::MemoryFormat::Contiguous));
  float* tp = taps.data_ptr<float>();
  // The groups' sums are added into the first in group order (the same for any thread count),
  // by output channel so that each thread's share feeds its own transform.
  at::parallel_for(0, g.out, 16, [&](int64_t o0, int64_t o1) {
    for (int64_t grp = 1; grp < groups; ++grp) {
      for (int p = 0; p < kPositions; ++p) {
        float* sum = partial + (p * g.out + o0) * g.in;
        const float* add = sum + grp * uk;
        for (int64_t k = 0; k < (o1 - o0) * g.in; ++k) sum[k] += add[k];
      }
    }
    KernelGradTransform(partial, g.out, g.in, o0, o1, tp);
  });
  grad_weight.copy_(taps.permute({0, 3, 1, 2}));
  if (grad_bias.defined()) {
    TORCH_CHECK(grad_bias.numel() == g.out, "WinogradConv3x3Fp32WeightGrad: grad_bias ", grad_bias.sizes(), " for ",
                g.out, " channels");
    std::vector<float> sums(static_cast<size_t>(g.out), 0.0f);
    const int64_t cells = g.n * g.h * g.w;
    // Each channel sums its cells in order, so the bits do not follow the split.
    at::parallel_for(0, g.out, 16, [&](int64_t o0, int64_t o1) {
      for (int64_t k = 0; k < cells; ++k) {
        const float* d = dyp + k * g.out;
        for (int64_t o = o0; o < o1; ++o) sums[static_cast<size_t>(o)] += d[o];
      }
    });
    grad_bias.copy_(at::from_blob(sums.data(), {g.out}, at::kFloat).view(grad_bias.sizes()));
  }
}

}  // namespace skillgrid::skills
