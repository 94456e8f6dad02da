#include "skills/winograd_conv.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "skills/amx_conv.h"
#include "skills/bf16.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <cpuid.h>
#include <immintrin.h>
#define SKILLGRID_HAVE_WINOGRAD_CODE 1
#define SKILLGRID_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))
#endif

namespace skillgrid::skills {
namespace {

// Which Winograd tile the bf16 kernels use; see WinogradTile in the header.
std::atomic<int> g_tile_override{-1};  // -1: none; else a WinogradTile

// Tile geometry of one convolution: MH x MW output tiles, each read from an (MH + 2) x (MW + 2)
// input patch; tiles are numbered sample-major, then by row, then by column.
struct Geometry {
  int64_t n, in, out, h, w;
  int64_t mh, mw;  // output rows and columns per tile
  int64_t tiles_w() const { return (w + mw - 1) / mw; }
  int64_t tiles_per_sample() const { return (h + mh - 1) / mh * tiles_w(); }
  int64_t tiles() const { return n * tiles_per_sample(); }
  /// Tile t's sample and its tile row and column in that sample's map.
  struct Tile {
    int64_t sample, row, col;
  };
  Tile TileAt(int64_t t) const {
    const int64_t in_sample = t % tiles_per_sample();
    return {t / tiles_per_sample(), in_sample / tiles_w(), in_sample % tiles_w()};
  }
};

#ifdef SKILLGRID_HAVE_WINOGRAD_CODE

bool QueryAvx512Bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  const bool bf16 = (eax >> 5) & 1u;
  return bf16 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

// 16 bfloat16 values widened to fp32 (exact). (The all-lanes maskz forms: GCC 12 warns that the
// unmasked ones' internal _mm512_undefined_epi32 "may be used uninitialized".)
SKILLGRID_AVX512BF16 inline __m512 LoadBf16(const uint16_t* p) {
  const __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __mmask16 all = 0xFFFF;
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(all, _mm512_maskz_cvtepu16_epi32(all, half), 16));
}

// 16 fp32 values rounded to bfloat16 (nearest even) and stored.
SKILLGRID_AVX512BF16 inline void StoreBf16(uint16_t* p, __m512 v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
}

// Stores `even` and `odd` rounded to bfloat16 as 16 pairs (even_i, odd_i): the pair layout the
// K dimension of vdpbf16ps wants.
SKILLGRID_AVX512BF16 inline void StorePairsBf16(uint16_t* p, __m512 even, __m512 odd) {
  alignas(64) static const uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i halves = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(odd, even));  // even in 0-15, odd in 16-31
  _mm512_storeu_si512(p, _mm512_permutexvar_epi16(_mm512_load_si512(kInterleave), halves));
}

// The 1-D Winograd F(m, 3) for m = 2 and 4 (points 0, 1, -1, and 2, -2 for m = 4, and infinity):
// the m outputs of a 3-tap correlation over m + 2 inputs d are A^T [(G g) . (B^T d)].
template <int M>
struct F3;
template <>
struct F3<2> {
  static constexpr int kN = 4;
  static constexpr float kBT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float kG[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
  static constexpr float kAT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};
template <>
struct F3<4> {
  static constexpr int kN = 6;
  static constexpr float kBT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                      {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float kG[6][3] = {{1.0f / 4, 0, 0},
                                     {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                     {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                     {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                     {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                     {0, 0, 1}};
  static constexpr float kAT[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// Sum over a < K of c[a c_stride] x[a x_stride]. The coefficients come from the tables above
// and every loop over them is unrolled, so the zero terms and the multiplies by +-1 fold away:
// what remains is the adds and FMAs a hand-written transform has.
template <int K>
SKILLGRID_AVX512BF16 inline __m512 Combine(const float* c, int c_stride, const __m512* x, int x_stride) {
  __m512 acc = _mm512_setzero_ps();
  bool first = true;
#pragma GCC unroll 8
  for (int a = 0; a < K; ++a) {
    const float k = c[a * c_stride];
    if (k == 0.0f) continue;
    const __m512 v = x[a * x_stride];
    if (first) {
      acc = k == 1.0f ? v : _mm512_mul_ps(_mm512_set1_ps(k), v);
    } else if (k == 1.0f) {
      acc = _mm512_add_ps(acc, v);
    } else if (k == -1.0f) {
      acc = _mm512_sub_ps(acc, v);
    } else {
      acc = _mm512_fmadd_ps(_mm512_set1_ps(k), v, acc);
    }
    first = false;
  }
  return acc;
}

// The 2-D tile F(MH x MW, 3 x 3): rows transformed by F3<MH>, columns by F3<MW>; position (i, j)
// of its NH x NW Winograd domain is index i NW + j.
template <int MH, int MW>
struct Tile2d {
  using Rows = F3<MH>;
  using Cols = F3<MW>;
  static constexpr int kNH = Rows::kN, kNW = Cols::kN, kPositions = kNH * kNW;
  /// Tiles per forward chunk. Each U_p block is read once per chunk and used by all its tiles;
  /// the chunk's V (bf16, ~450 KB for 4x4 tiles of 128 channels) and one 32-channel slice of
  /// its products M stay in a 1 MB L2.
  static constexpr int64_t kChunkTiles = 48;
};

// Rows [row_begin, row_end) of V = B^T d B of the input patch of `tile` of x (N, H, W, C_in
// channels-last) at channels c..c+15, zero outside the map (the other rows of v are left as
// they were: the weight gradient's threads each need only their rows).
template <int MH, int MW>
SKILLGRID_AVX512BF16 inline void InputTileTransform(const uint16_t* x, const Geometry& g, Geometry::Tile tile,
                                                    int64_t c, __m512* v, int row_begin = 0,
                                                    int row_end = F3<MH>::kN) {
  using T = Tile2d<MH, MW>;
  constexpr int NH = T::kNH, NW = T::kNW;
  const uint16_t* xs = x + tile.sample * g.h * g.w * g.in;
  __m512 d[NH * NW];
#pragma GCC unroll 8
  for (int a = 0; a < NH; ++a) {
    const int64_t r = MH * tile.row - 1 + a;
#pragma GCC unroll 8
    for (int b = 0; b < NW; ++b) {
      const int64_t col = MW * tile.col - 1 + b;
      d[a * NW + b] = (r >= 0 && r < g.h && col >= 0 && col < g.w) ? LoadBf16(xs + (r * g.w + col) * g.in + c)
                                                                    : _mm512_setzero_ps();
    }
  }
  __m512 t[NH * NW];  // B^T d
#pragma GCC unroll 8
  for (int i = 0; i < NH; ++i) {
    if (i < row_begin || i >= row_end) continue;  // (the coefficients stay compile-time constants)
#pragma GCC unroll 8
    for (int b = 0; b < NW; ++b) t[i * NW + b] = Combine<NH>(&T::Rows::kBT[i][0], 1, &d[b], NW);
#pragma GCC unroll 8
    for (int j = 0; j < NW; ++j) v[i * NW + j] = Combine<NW>(&T::Cols::kBT[j][0], 1, &t[i * NW], 1);
  }
}

// Rows [row_begin, row_end) of E = A dy A^T of the MH x MW output-gradient `tile` of dy (N, H,
// W, C_out) at channels c..c+15 (zero outside the map): the factor the weight gradient
// multiplies V by at each position.
template <int MH, int MW>
SKILLGRID_AVX512BF16 inline void OutputGradTileTransform(const uint16_t* dy, const Geometry& g, Geometry::Tile tile,
                                                         int64_t c, __m512* e, int row_begin, int row_end) {
  using T = Tile2d<MH, MW>;
  constexpr int NH = T::kNH, NW = T::kNW;
  const uint16_t* dys = dy + tile.sample * g.h * g.w * g.out;
  __m512 y[MH * MW];
#pragma GCC unroll 4
  for (int a = 0; a < MH; ++a) {
    const int64_t r = MH * tile.row + a;
#pragma GCC unroll 4
    for (int b = 0; b < MW; ++b) {
      const int64_t col = MW * tile.col + b;
      y[a * MW + b] = (r < g.h && col < g.w) ? LoadBf16(dys + (r * g.w + col) * g.out + c) : _mm512_setzero_ps();
    }
  }
  __m512 t[MH * NW];  // dy A_W^T
#pragma GCC unroll 4
  for (int a = 0; a < MH; ++a) {
#pragma GCC unroll 8
    for (int j = 0; j < NW; ++j) t[a * NW + j] = Combine<MW>(&T::Cols::kAT[0][j], NW, &y[a * MW], 1);
  }
#pragma GCC unroll 8
  for (int i = 0; i < NH; ++i) {
    if (i < row_begin || i >= row_end) continue;
#pragma GCC unroll 8
    for (int j = 0; j < NW; ++j) e[i * NW + j] = Combine<MH>(&T::Rows::kAT[0][i], NH, &t[j], NW);
  }
}

// C (MR x 16*NV, fp32, row stride ldc) = or += sum over k of A(m, k) B(k, n), with A and B
// bfloat16 in pairs along k: A's pair (m, k) at a + 2 (m a_row + k a_k), B's row of pairs k at
// b + 2 k ldb. The accumulators stay in registers for the whole k loop.
template <int MR, int NV>
SKILLGRID_AVX512BF16 void MicroKernel(int64_t kpairs, const uint16_t* a, int64_t a_row, int64_t a_k, const uint16_t* b,
                                      int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16 * j) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kpairs; ++k) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + 2 * (k * ldb + 16 * j)));
    const uint16_t* ak = a + 2 * k * a_k;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      std::memcpy(&pair, ak + 2 * i * a_row, sizeof(pair));
      const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(pair));
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(c + i * ldc + 16 * j, acc[i][j]);
  }
}


constexpr int kRows = 8;   // MR: A rows per micro-kernel call
constexpr int kVecs = 2;   // NV: 16-float columns per micro-kernel call
constexpr int64_t kCols = 16 * kVecs;
constexpr int64_t kPairBlock = 32;  // tile pairs per weight-gradient block (its operands stay in L2)

// Kernel (in, 3, 3, out) fp32 -> U (P, in/2, out, 2) bfloat16: G g G^T per channel pair,
// pairs along the input channels, for input-channel pairs q0..q1.
// (Each parallel body is its own target function: lambdas do not inherit target attributes.)
template <int MH, int MW>
SKILLGRID_AVX512BF16 void TransformKernelPairs(const float* wt, int64_t in, int64_t out, uint16_t* u, int64_t q0,
                                               int64_t q1) {
  using T = Tile2d<MH, MW>;
  constexpr int NH = T::kNH, NW = T::kNW, P = T::kPositions;
  for (int64_t q = q0; q < q1; ++q) {
    for (int64_t o = 0; o < out; o += 16) {
      __m512 uu[2][P];
      for (int half = 0; half < 2; ++half) {
        const float* gk = wt + (2 * q + half) * 9 * out + o;
        __m512 g[9];
#pragma GCC unroll 9
        for (int tap = 0; tap < 9; ++tap) g[tap] = _mm512_loadu_ps(gk + tap * out);
        __m512 t[NH * 3];  // G_H g
#pragma GCC unroll 8
        for (int i = 0; i < NH; ++i) {
#pragma GCC unroll 3
          for (int kx = 0; kx < 3; ++kx) t[i * 3 + kx] = Combine<3>(&T::Rows::kG[i][0], 1, &g[kx], 3);
        }
#pragma GCC unroll 8
        for (int i = 0; i < NH; ++i) {  // (G_H g) G_W^T
#pragma GCC unroll 8
          for (int j = 0; j < NW; ++j) uu[half][i * NW + j] = Combine<3>(&T::Cols::kG[j][0], 1, &t[i * 3], 1);
        }
      }
      for (int64_t p = 0; p < P; ++p) StorePairsBf16(u + ((p * (in / 2) + q) * out + o) * 2, uu[0][p], uu[1][p]);
    }
  }
}

// Tiles [first, first + count) of y (N, H, W, out) = conv(x (N, H, W, in), U) + bias, at most
// a chunk, all under one kernel: the input transform, then per 32 output channels the P
// products V_p U_p and their output transform. v and m are the chunk's scratch (see Forward).
template <int MH, int MW>
SKILLGRID_AVX512BF16 void ForwardChunk(const uint16_t* x, const uint16_t* u, const float* bias, const Geometry& g,
                                       uint16_t* y, int64_t first, int64_t count, uint16_t* v, float* m) {
  using T = Tile2d<MH, MW>;
  constexpr int NH = T::kNH, NW = T::kNW, P = T::kPositions;
  // Per-position blocks 64 bytes more than a multiple of 4 KB apart: the positions of a tile
  // would otherwise fall in one L1 set.
  const int64_t v_stride = T::kChunkTiles * g.in + 32, m_stride = T::kChunkTiles * kCols + 16;
  const int64_t rows = (count + kRows - 1) / kRows * kRows;
  for (int64_t lt = 0; lt < rows; ++lt) {
    if (lt >= count) {  // padding rows of the last block: zero, their products are dropped
      for (int64_t p = 0; p < P; ++p) std::fill_n(&v[p * v_stride + lt * g.in], g.in, uint16_t{0});
      continue;
    }
    const Geometry::Tile tile = g.TileAt(first + lt);
    for (int64_t c = 0; c < g.in; c += 16) {
      __m512 vv[P];
      InputTileTransform<MH, MW>(x, g, tile, c, vv);
      for (int64_t p = 0; p < P; ++p) StoreBf16(&v[p * v_stride + lt * g.in + c], vv[p]);
    }
  }
  for (int64_t nb = 0; nb < g.out; nb += kCols) {
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t mb = 0; mb < rows; mb += kRows) {
        MicroKernel<kRows, kVecs>(g.in / 2, &v[p * v_stride + mb * g.in], g.in / 2, 1, u + p * g.in * g.out + nb * 2,
                                  g.out, &m[p * m_stride + mb * kCols], kCols, false);
      }
    }
    for (int64_t lt = 0; lt < count; ++lt) {
      const Geometry::Tile tile = g.TileAt(first + lt);
      uint16_t* ys = y + tile.sample * g.h * g.w * g.out;
      for (int64_t o = nb; o < nb + kCols; o += 16) {
        __m512 mm[P];
#pragma GCC unroll 36
        for (int p = 0; p < P; ++p) mm[p] = _mm512_loadu_ps(&m[p * m_stride + lt * kCols + (o - nb)]);
        __m512 t[MH * NW];  // A_H^T M
#pragma GCC unroll 4
        for (int a = 0; a < MH; ++a) {
#pragma GCC unroll 8
          for (int j = 0; j < NW; ++j) t[a * NW + j] = Combine<NH>(&T::Rows::kAT[a][0], 1, &mm[j], NW);
        }
        const __m512 bv = bias != nullptr ? _mm512_loadu_ps(bias + o) : _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int a = 0; a < MH; ++a) {
          const int64_t r = MH * tile.row + a;
          if (r >= g.h) break;
#pragma GCC unroll 4
          for (int b = 0; b < MW; ++b) {
            const int64_t col = MW * tile.col + b;
            if (col >= g.w) break;
            const __m512 out = _mm512_add_ps(Combine<NW>(&T::Cols::kAT[b][0], 1, &t[a * NW], 1), bv);
            StoreBf16(ys + (r * g.w + col) * g.out + o, out);
          }
        }
      }
    }
  }
}

// Ghat_p (out, in) = sum over tiles of E_p^T V_p for the positions of Winograd-domain rows
// [row_begin, row_end), where V = B^T x B and E = A dy A^T per tile (only those rows transformed). Tiles go in blocks of kPairBlock pairs: each block is
// transformed (only these positions stored, tiles paired along K) into buffers that stay in L2
// with the accumulators, then multiplied in. Every position sums its blocks in order.
template <int MH, int MW>
SKILLGRID_AVX512BF16 void WeightGradPositions(const uint16_t* x, const uint16_t* dy, const Geometry& g, int row_begin,
                                              int row_end, float* ghat) {
  constexpr int P = Tile2d<MH, MW>::kPositions, NW = Tile2d<MH, MW>::kNW;
  const int64_t p_first = row_begin * NW, p_count = (row_end - row_begin) * NW;
  const int64_t tiles = g.tiles(), pairs = (tiles + 1) / 2;
  // Per-position blocks padded by 64 bytes, so that one tile's positions do not share an L1 set.
  const int64_t v_stride = kPairBlock * g.in * 2 + 32, e_stride = kPairBlock * g.out * 2 + 32;
  // Uninitialised: the products read only the pairs this block's transforms wrote.
  const std::unique_ptr<uint16_t[]> v(new uint16_t[static_cast<size_t>(p_count * v_stride)]);
  const std::unique_ptr<uint16_t[]> e(new uint16_t[static_cast<size_t>(p_count * e_stride)]);
  for (int64_t k0 = 0; k0 < pairs; k0 += kPairBlock) {
    const int64_t kn = std::min(kPairBlock, pairs - k0);
    for (int64_t k = k0; k < k0 + kn; ++k) {
      __m512 even[P], odd[P];
      // The pair's second tile is missing (zero) when the tile count is odd.
      const Geometry::Tile tile0 = g.TileAt(2 * k), tile1 = g.TileAt(2 * k + 1);
      const bool has_odd = 2 * k + 1 < tiles;
      for (int64_t c = 0; c < g.in; c += 16) {
        InputTileTransform<MH, MW>(x, g, tile0, c, even, row_begin, row_end);
        if (has_odd) {
          InputTileTransform<MH, MW>(x, g, tile1, c, odd, row_begin, row_end);
        } else {
          for (__m512& z : odd) z = _mm512_setzero_ps();
        }
        for (int64_t p = 0; p < p_count; ++p) {
          StorePairsBf16(&v[p * v_stride + ((k - k0) * g.in + c) * 2], even[p_first + p], odd[p_first + p]);
        }
      }
      for (int64_t c = 0; c < g.out; c += 16) {
        OutputGradTileTransform<MH, MW>(dy, g, tile0, c, even, row_begin, row_end);
        if (has_odd) {
          OutputGradTileTransform<MH, MW>(dy, g, tile1, c, odd, row_begin, row_end);
        } else {
          for (__m512& z : odd) z = _mm512_setzero_ps();
        }
        for (int64_t p = 0; p < p_count; ++p) {
          StorePairsBf16(&e[p * e_stride + ((k - k0) * g.out + c) * 2], even[p_first + p], odd[p_first + p]);
        }
      }
    }
    for (int64_t p = 0; p < p_count; ++p) {
      float* gp = ghat + (p_first + p) * g.out * g.in;
      for (int64_t nb = 0; nb < g.in; nb += kCols) {
        for (int64_t mb = 0; mb < g.out; mb += kRows) {
          MicroKernel<kRows, kVecs>(kn, &e[p * e_stride + mb * 2], 1, g.out, &v[p * v_stride + nb * 2], g.in,
                                    gp + mb * g.in + nb, g.in, k0 > 0);
        }
      }
    }
  }
}

// taps (out, 3, 3, in) = G_H^T Ghat G_W for output channels o0..o1, 16 input channels at a time.
template <int MH, int MW>
SKILLGRID_AVX512BF16 void KernelGradTaps(const float* ghat, const Geometry& g, float* taps, int64_t o0, int64_t o1) {
  using T = Tile2d<MH, MW>;
  constexpr int NH = T::kNH, NW = T::kNW, P = T::kPositions;
  for (int64_t o = o0; o < o1; ++o) {
    for (int64_t i = 0; i < g.in; i += 16) {
      __m512 gh[P];
#pragma GCC unroll 36
      for (int p = 0; p < P; ++p) gh[p] = _mm512_loadu_ps(ghat + (p * g.out + o) * g.in + i);
      __m512 r[NH * 3];  // Ghat G_W
#pragma GCC unroll 8
      for (int a = 0; a < NH; ++a) {
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; ++kx) r[a * 3 + kx] = Combine<NW>(&T::Cols::kG[0][kx], 3, &gh[a * NW], 1);
      }
#pragma GCC unroll 3
      for (int ky = 0; ky < 3; ++ky) {  // G_H^T (Ghat G_W)
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; ++kx) {
          _mm512_storeu_ps(taps + (o * 9 + ky * 3 + kx) * g.in + i,
                           Combine<NH>(&T::Rows::kG[0][ky], 3, &r[kx], 3));
        }
      }
    }
  }
}

// grad_bias[o0..o1) = dy summed over samples and cells, in cell order (16 channels per vector,
// each lane its own channel's sum: the same order as a scalar loop).
SKILLGRID_AVX512BF16 void BiasGrad(const uint16_t* dy, const Geometry& g, float* gb, int64_t o0, int64_t o1) {
  const int64_t cells = g.n * g.h * g.w;
  int64_t o = o0;
  for (; o + 16 <= o1; o += 16) {
    __m512 sum = _mm512_setzero_ps();
    for (int64_t cell = 0; cell < cells; ++cell) sum = _mm512_add_ps(sum, LoadBf16(dy + cell * g.out + o));
    _mm512_storeu_ps(gb + o, sum);
  }
  for (; o < o1; ++o) {
    float sum = 0.0f;
    for (int64_t cell = 0; cell < cells; ++cell) sum += Bf16BitsToFloat(dy[cell * g.out + o]);
    gb[o] = sum;
  }
}

// The kernels of one tile shape, called through TileKernels below.
template <int MH, int MW>
struct TileKernels {
  using T = Tile2d<MH, MW>;

  // wt (K, in, 3, 3, out) fp32 -> U (K, P, in/2, out, 2) bf16, all blocks in one parallel loop.
  static void TransformKernels(const float* wt, int64_t blocks, int64_t in, int64_t out, uint16_t* u) {
    const int64_t pairs = in / 2;
    at::parallel_for(0, blocks * pairs, 8, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1;) {  // runs of pair rows within one block
        const int64_t k = b / pairs, q0 = b % pairs, q1 = std::min(pairs, q0 + (b1 - b));
        TransformKernelPairs<MH, MW>(wt + k * in * 9 * out, in, out, u + k * T::kPositions * in * out, q0, q1);
        b += q1 - q0;
      }
    });
  }

  // y = conv(x, U_k) + bias_k over blocks of rows: every block's chunks in one parallel loop.
  static void Forward(const uint16_t* x, const uint16_t* u, const float* biases, const Geometry& g,
                      const std::vector<int64_t>& rows_per_block, uint16_t* y) {
    struct Item {
      int64_t block, first, count;  // tiles [first, first + count) under kernel `block`
    };
    std::vector<Item> items;
    int64_t row = 0;
    for (size_t k = 0; k < rows_per_block.size(); ++k) {
      const int64_t end = (row + rows_per_block[k]) * g.tiles_per_sample();
      for (int64_t t = row * g.tiles_per_sample(); t < end; t += T::kChunkTiles) {
        items.push_back({static_cast<int64_t>(k), t, std::min(T::kChunkTiles, end - t)});
      }
      row += rows_per_block[k];
    }
    const int64_t per_block = T::kPositions * g.in * g.out;
    at::parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t i0, int64_t i1) {
      // Uninitialised: padding rows are zeroed, and only rows the products wrote are read.
      const std::unique_ptr<uint16_t[]> v(new uint16_t[static_cast<size_t>(T::kPositions * (T::kChunkTiles * g.in + 32))]);
      const std::unique_ptr<float[]> m(new float[static_cast<size_t>(T::kPositions * (T::kChunkTiles * kCols + 16))]);
      for (int64_t i = i0; i < i1; ++i) {
        const Item& item = items[static_cast<size_t>(i)];
        ForwardChunk<MH, MW>(x, u + item.block * per_block, biases != nullptr ? biases + item.block * g.out : nullptr,
                             g, y, item.first, item.count, v.get(), m.get());
      }
    });
  }

  // grad_weight (out, in, 3, 3) and grad_bias of conv(x, w) + b from dy, both channels-last
  // bf16. Each stage splits its work over threads in disjoint outputs; every sum runs in a
  // fixed order.
  static void WeightGrad(const uint16_t* x, const uint16_t* dy, const Geometry& g, float* gw, float* gb) {
    // Positions split by rows of the Winograd domain, one group per thread: each thread
    // transforms only its rows of every tile and keeps its operands and accumulators in its
    // own core's L2.
    const int64_t groups = std::clamp<int64_t>(at::get_num_threads(), 1, std::min(4, T::kNH));
    const std::unique_ptr<float[]> ghat(new float[static_cast<size_t>(T::kPositions * g.out * g.in)]);
    at::parallel_for(0, groups, 1, [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) {
        WeightGradPositions<MH, MW>(x, dy, g, static_cast<int>(T::kNH * q / groups),
                                    static_cast<int>(T::kNH * (q + 1) / groups), ghat.get());
      }
    });
    std::vector<float> taps(static_cast<size_t>(g.out * 9 * g.in));
    at::parallel_for(0, g.out, 8,
                     [&](int64_t o0, int64_t o1) { KernelGradTaps<MH, MW>(ghat.get(), g, taps.data(), o0, o1); });
    at::parallel_for(0, g.out, 16, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        for (int64_t tap = 0; tap < 9; ++tap) {  // rows of taps in order; writes stay in o's 9 x in block
          for (int64_t i = 0; i < g.in; ++i) gw[(o * g.in + i) * 9 + tap] = taps[static_cast<size_t>((o * 9 + tap) * g.in + i)];
        }
      }
      if (gb != nullptr) BiasGrad(dy, g, gb, o0, o1);
    });
  }
};


// Rows [n0, n1) of AddTaskLowRank in bf16: per cell, the base channels plus the row's r factors.
SKILLGRID_AVX512BF16 void LowRankEpilogueRows(const uint16_t* both, int64_t channels, int64_t cells, int64_t out,
                                              const int64_t* slots, int64_t r, const float* b, uint16_t* y, int64_t n0,
                                              int64_t n1) {
  std::vector<float> z(static_cast<size_t>(r));
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t first = out + slots[n] * r;
    const float* bs = b + slots[n] * r * out;
    for (int64_t cell = 0; cell < cells; ++cell) {
      const uint16_t* src = both + (n * cells + cell) * channels;
      for (int64_t k = 0; k < r; ++k) z[static_cast<size_t>(k)] = Bf16BitsToFloat(src[first + k]);
      uint16_t* dst = y + (n * cells + cell) * out;
      for (int64_t o = 0; o < out; o += 16) {
        __m512 acc = LoadBf16(src + o);
        for (int64_t k = 0; k < r; ++k) {
          acc = _mm512_fmadd_ps(_mm512_set1_ps(z[static_cast<size_t>(k)]), _mm512_loadu_ps(bs + k * out + o), acc);
        }
        StoreBf16(dst + o, acc);
      }
    }
  }
}

#endif  // SKILLGRID_HAVE_WINOGRAD_CODE

const uint16_t* Bits(const at::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }

// SKILLGRID_WINOGRAD_TILE, or the default when it is unset.
WinogradTile TileFromEnvironment() {
  const char* text = std::getenv("SKILLGRID_WINOGRAD_TILE");
  if (text == nullptr || *text == '\0') return kDefaultWinogradTile;
  const std::optional<WinogradTile> tile = ParseWinogradTile(text);
  TORCH_CHECK(tile.has_value(), "SKILLGRID_WINOGRAD_TILE must be 2x2, 2x4 or 4x4, got '", text, "'");
  return *tile;
}

}  // namespace

std::optional<WinogradTile> ParseWinogradTile(const std::string& text) {
  for (const WinogradTile tile : {WinogradTile::k2x2, WinogradTile::k2x4, WinogradTile::k4x4}) {
    if (text == WinogradTileName(tile)) return tile;
  }
  return std::nullopt;
}

std::pair<int64_t, int64_t> WinogradTileSize(WinogradTile tile) {
  switch (tile) {
    case WinogradTile::k2x2: return {2, 2};
    case WinogradTile::k2x4: return {2, 4};
    case WinogradTile::k4x4: return {4, 4};
  }
  return {2, 2};
}

const char* WinogradTileName(WinogradTile tile) {
  switch (tile) {
    case WinogradTile::k2x2: return "2x2";
    case WinogradTile::k2x4: return "2x4";
    case WinogradTile::k4x4: return "4x4";
  }
  return "?";
}

WinogradTile WinogradBf16Tile() {
  const int forced = g_tile_override.load();
  if (forced >= 0) return static_cast<WinogradTile>(forced);
  static const WinogradTile from_environment = TileFromEnvironment();
  return from_environment;
}

ScopedWinogradBf16Tile::ScopedWinogradBf16Tile(WinogradTile tile) : previous_(g_tile_override.load()) {
  g_tile_override.store(static_cast<int>(tile));
}

ScopedWinogradBf16Tile::~ScopedWinogradBf16Tile() { g_tile_override.store(previous_); }

bool CpuHasNativeBf16() {
#ifdef SKILLGRID_HAVE_WINOGRAD_CODE
  static const bool avx512_bf16 = QueryAvx512Bf16();
  return avx512_bf16 || AmxBf16Available();
#else
  return AmxBf16Available();
#endif
}

bool WinogradConvPreferred() {
#ifdef SKILLGRID_HAVE_WINOGRAD_CODE
  static std::once_flag once;
  static bool preferred = false;
  std::call_once(once, [] {
    preferred = std::getenv("SKILLGRID_NO_WINOGRAD") == nullptr && QueryAvx512Bf16() && !AmxBf16Available();
  });
  return preferred;
#else
  return false;
#endif
}

bool WinogradConv3x3Supports(const at::Tensor& x, int64_t out_channels) {
  return WinogradConvPreferred() && x.dim() == 4 && x.scalar_type() == at::kBFloat16 && x.device().is_cpu() &&
         x.size(0) > 0 && x.size(1) % 32 == 0 && out_channels % 32 == 0 && out_channels > 0;
}

at::Tensor WinogradConv3x3(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           bool flip_transpose) {
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3,
              "WinogradConv3x3: weight must be (C_out, C_in, 3, 3), got ", weight.sizes());
  const int64_t out = flip_transpose ? weight.size(1) : weight.size(0);
  TORCH_CHECK(!bias.defined() || bias.numel() == out, "WinogradConv3x3: bias must have ", out, " entries, got ",
              bias.sizes());
  return WinogradConv3x3Blocks(x, weight.unsqueeze(0), bias.defined() ? bias.reshape({1, out}) : bias,
                               {x.dim() > 0 ? x.size(0) : 0}, flip_transpose);
}

at::Tensor WinogradConv3x3Blocks(const at::Tensor& x_in, const at::Tensor& kernels, const at::Tensor& biases,
                                 const std::vector<int64_t>& rows_per_block, bool flip_transpose, at::Tensor y) {
  TORCH_CHECK(kernels.dim() == 5 && kernels.size(3) == 3 && kernels.size(4) == 3 &&
                  kernels.size(0) == static_cast<int64_t>(rows_per_block.size()),
              "WinogradConv3x3: kernels must be (blocks, C_out, C_in, 3, 3) for ", rows_per_block.size(),
              " blocks, got ", kernels.sizes());
  const int64_t blocks = kernels.size(0);
  const int64_t in = flip_transpose ? kernels.size(1) : kernels.size(2);
  const int64_t out = flip_transpose ? kernels.size(2) : kernels.size(1);
  TORCH_CHECK(WinogradConv3x3Supports(x_in, out) && x_in.size(1) == in, "WinogradConv3x3: unsupported operands x ",
              x_in.sizes(), " ", x_in.scalar_type(), " and kernels ", kernels.sizes(),
              flip_transpose ? " (flipped)" : "", " (needs AVX512-BF16 without AMX, bf16 input, channels multiples of 32)");
  TORCH_CHECK(!biases.defined() || biases.numel() == blocks * out, "WinogradConv3x3: biases must have ", blocks, " x ",
              out, " entries, got ", biases.sizes());
  int64_t total_rows = 0;
  for (const int64_t n : rows_per_block) {
    TORCH_CHECK(n >= 0, "WinogradConv3x3: negative block of ", n, " rows");
    total_rows += n;
  }
  TORCH_CHECK(total_rows == x_in.size(0), "WinogradConv3x3: blocks of ", total_rows, " rows for x ", x_in.sizes());
  const at::Tensor x = ChannelsLastBf16(x_in);
  const WinogradTile tile = WinogradBf16Tile();  // read once: geometry and kernels must agree
  const auto [mh, mw] = WinogradTileSize(tile);
  const Geometry g{x.size(0), in, out, x.size(2), x.size(3), mh, mw};
  if (y.defined()) {
    TORCH_CHECK(y.sizes() == at::IntArrayRef({g.n, out, g.h, g.w}) && y.scalar_type() == at::kBFloat16 &&
                    y.device().is_cpu() && y.is_contiguous(at::MemoryFormat::ChannelsLast),
                "WinogradConv3x3: out ", y.sizes(), " (", y.scalar_type(), ", strides ", y.strides(),
                ") must be bf16 channels-last [", g.n, ", ", out, ", ", g.h, ", ", g.w, "] on CPU");
  } else {
    y = at::empty({g.n, out, g.h, g.w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  }
#ifdef SKILLGRID_HAVE_WINOGRAD_CODE
  // The kernels as (K, in, 3, 3, out) fp32: contiguous output channels for the vector transform.
  const at::Tensor k32 = kernels.to(at::kFloat);
  const at::Tensor wt =
      (flip_transpose ? k32.flip({3, 4}).permute({0, 1, 3, 4, 2}) : k32.permute({0, 2, 3, 4, 1})).contiguous();
  const int64_t positions = (mh + 2) * (mw + 2);
  at::Tensor u = at::empty({blocks, positions, in / 2, out, 2}, x.options().memory_format(at::MemoryFormat::Contiguous));
  auto* u_bits = reinterpret_cast<uint16_t*>(u.data_ptr<at::BFloat16>());
  const at::Tensor b32 = biases.defined() ? biases.to(at::kFloat).reshape({blocks, out}).contiguous() : at::Tensor();
  const float* bias_data = b32.defined() ? b32.data_ptr<float>() : nullptr;
  auto* y_bits = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
  switch (tile) {
    case WinogradTile::k2x2:
      TileKernels<2, 2>::TransformKernels(wt.data_ptr<float>(), blocks, in, out, u_bits);
      TileKernels<2, 2>::Forward(Bits(x), u_bits, bias_data, g, rows_per_block, y_bits);
      break;
    case WinogradTile::k2x4:
      TileKernels<2, 4>::TransformKernels(wt.data_ptr<float>(), blocks, in, out, u_bits);
      TileKernels<2, 4>::Forward(Bits(x), u_bits, bias_data, g, rows_per_block, y_bits);
      break;
    case WinogradTile::k4x4:
      TileKernels<4, 4>::TransformKernels(wt.data_ptr<float>(), blocks, in, out, u_bits);
      TileKernels<4, 4>::Forward(Bits(x), u_bits, bias_data, g, rows_per_block, y_bits);
      break;
  }
#endif
  return y;
}

namespace {

// Rows [n0, n1) of AddTaskLowRank in fp32 (portable: fp32 Winograd also runs on AVX2-only CPUs).
void LowRankEpilogueRowsFp32(const float* both, int64_t channels, int64_t cells, int64_t out, const int64_t* slots,
                             int64_t r, const float* b, float* y, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t first = out + slots[n] * r;
    const float* bs = b + slots[n] * r * out;
    for (int64_t cell = 0; cell < cells; ++cell) {
      const float* src = both + (n * cells + cell) * channels;
      float* dst = y + (n * cells + cell) * out;
      std::copy(src, src + out, dst);
      for (int64_t k = 0; k < r; ++k) {
        const float z = src[first + k];
        const float* bk = bs + k * out;
        for (int64_t o = 0; o < out; ++o) dst[o] += z * bk[o];
      }
    }
  }
}

}  // namespace

at::Tensor AddTaskLowRank(const at::Tensor& both_in, int64_t out, const at::Tensor& slots_in, int64_t r,
                          const at::Tensor& b_in) {
  const bool bf16 = both_in.scalar_type() == at::kBFloat16;
  TORCH_CHECK(!bf16 || WinogradConvPreferred(), "AddTaskLowRank: bf16 needs AVX512-BF16 without AMX (WinogradConvPreferred)");
  TORCH_CHECK(both_in.dim() == 4 && (bf16 || both_in.scalar_type() == at::kFloat) && both_in.device().is_cpu() &&
                  out > 0 && (!bf16 || out % 16 == 0) && r > 0,
              "AddTaskLowRank: both ", both_in.sizes(), " ", both_in.scalar_type(), " with out ", out, " and r ", r,
              " (needs 4-D bf16 or fp32 on CPU, out positive (a multiple of 16 in bf16), r > 0)");
  TORCH_CHECK(b_in.dim() == 2 && b_in.size(1) == out && b_in.size(0) % r == 0 && out + b_in.size(0) <= both_in.size(1),
              "AddTaskLowRank: b ", b_in.sizes(), " does not fit ", both_in.size(1), " channels with out ", out,
              " and r ", r);
  TORCH_CHECK(slots_in.dim() == 1 && slots_in.size(0) == both_in.size(0), "AddTaskLowRank: slots ",
              slots_in.sizes(), " for ", both_in.size(0), " rows");
  const at::Tensor both = bf16 ? ChannelsLastBf16(both_in) : both_in.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor slots = slots_in.to(at::kLong).contiguous();
  const at::Tensor b = b_in.to(at::kFloat).contiguous();
  const int64_t n = both.size(0), cells = both.size(2) * both.size(3), num_slots = b.size(0) / r;
  const int64_t* slot_data = slots.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(slot_data[i] >= 0 && slot_data[i] < num_slots, "AddTaskLowRank: row ", i, " has slot ",
                slot_data[i], " of ", num_slots);
  }
  at::Tensor y = at::empty({n, out, both.size(2), both.size(3)}, both.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* bp = b.data_ptr<float>();
  const int64_t channels = both.size(1);
  if (!bf16) {
    const float* src = both.data_ptr<float>();
    float* dst = y.data_ptr<float>();
    at::parallel_for(0, n, 4, [&](int64_t n0, int64_t n1) {
      LowRankEpilogueRowsFp32(src, channels, cells, out, slot_data, r, bp, dst, n0, n1);
    });
    return y;
  }
#ifdef SKILLGRID_HAVE_WINOGRAD_CODE
  const uint16_t* src = Bits(both);
  auto* dst = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
  at::parallel_for(0, n, 4, [&](int64_t n0, int64_t n1) {
    LowRankEpilogueRows(src, channels, cells, out, slot_data, r, bp, dst, n0, n1);
  });
#endif
  return y;
}

void WinogradConv3x3WeightGrad(const at::Tensor& x_in, const at::Tensor& dy_in, at::Tensor grad_weight,
                               at::Tensor grad_bias) {
  TORCH_CHECK(dy_in.dim() == 4 && WinogradConv3x3Supports(x_in, dy_in.size(1)) &&
                  dy_in.scalar_type() == at::kBFloat16 && dy_in.device().is_cpu() && x_in.size(0) == dy_in.size(0) &&
                  x_in.size(2) == dy_in.size(2) && x_in.size(3) == dy_in.size(3),
              "WinogradConv3x3WeightGrad: unsupported operands x ", x_in.sizes(), " ", x_in.scalar_type(), " and dy ",
              dy_in.sizes(), " ", dy_in.scalar_type(), " (needs AVX512-BF16 without AMX, bf16, channels multiples of 32)");
  const WinogradTile tile = WinogradBf16Tile();  // read once: geometry and kernels must agree
  const auto [mh, mw] = WinogradTileSize(tile);
  const Geometry g{x_in.size(0), x_in.size(1), dy_in.size(1), x_in.size(2), x_in.size(3), mh, mw};
  TORCH_CHECK(grad_weight.scalar_type() == at::kFloat && grad_weight.is_contiguous() &&
                  grad_weight.sizes() == at::IntArrayRef({g.out, g.in, 3, 3}),
              "WinogradConv3x3WeightGrad: grad_weight must be contiguous fp32 (", g.out, ", ", g.in, ", 3, 3), got ",
              grad_weight.sizes());
  TORCH_CHECK(!grad_bias.defined() ||
                  (grad_bias.scalar_type() == at::kFloat && grad_bias.is_contiguous() && grad_bias.numel() == g.out),
              "WinogradConv3x3WeightGrad: grad_bias must be contiguous fp32 (", g.out, "), got ", grad_bias.sizes());
#ifdef SKILLGRID_HAVE_WINOGRAD_CODE
  const at::Tensor x = ChannelsLastBf16(x_in), dy = ChannelsLastBf16(dy_in);
  float* gw = grad_weight.data_ptr<float>();
  float* gb = grad_bias.defined() ? grad_bias.data_ptr<float>() : nullptr;
  switch (tile) {
    case WinogradTile::k2x2: TileKernels<2, 2>::WeightGrad(Bits(x), Bits(dy), g, gw, gb); break;
    case WinogradTile::k2x4: TileKernels<2, 4>::WeightGrad(Bits(x), Bits(dy), g, gw, gb); break;
    case WinogradTile::k4x4: TileKernels<4, 4>::WeightGrad(Bits(x), Bits(dy), g, gw, gb); break;
  }
#endif
}

}  // namespace skillgrid::skills
