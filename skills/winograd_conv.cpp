#include "skills/winograd_conv.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
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

constexpr int64_t kPositions = 16;  // a 4x4 Winograd tile

// Tile geometry of one convolution: 2x2 output tiles, each read from a 4x4 input patch.
struct Geometry {
  int64_t n, in, out, h, w;
  int64_t tiles_w() const { return (w + 1) / 2; }
  int64_t tiles_per_sample() const { return (h + 1) / 2 * tiles_w(); }
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

// V = B^T d B of the 4x4 input patch of `tile` of x (N, H, W, C_in channels-last) at channels
// c..c+15, zero outside the map; v[4a + b] is position (a, b).
SKILLGRID_AVX512BF16 inline void InputTileTransform(const uint16_t* x, const Geometry& g, Geometry::Tile tile,
                                                    int64_t c, __m512 v[16]) {
  const uint16_t* xs = x + tile.sample * g.h * g.w * g.in;
  __m512 d[4][4];
  for (int a = 0; a < 4; ++a) {
    const int64_t r = 2 * tile.row - 1 + a;
    for (int b = 0; b < 4; ++b) {
      const int64_t col = 2 * tile.col - 1 + b;
      d[a][b] = (r >= 0 && r < g.h && col >= 0 && col < g.w) ? LoadBf16(xs + (r * g.w + col) * g.in + c)
                                                                : _mm512_setzero_ps();
    }
  }
  __m512 t[4][4];
  for (int b = 0; b < 4; ++b) {
    t[0][b] = _mm512_sub_ps(d[0][b], d[2][b]);
    t[1][b] = _mm512_add_ps(d[1][b], d[2][b]);
    t[2][b] = _mm512_sub_ps(d[2][b], d[1][b]);
    t[3][b] = _mm512_sub_ps(d[1][b], d[3][b]);
  }
  for (int a = 0; a < 4; ++a) {
    v[4 * a + 0] = _mm512_sub_ps(t[a][0], t[a][2]);
    v[4 * a + 1] = _mm512_add_ps(t[a][1], t[a][2]);
    v[4 * a + 2] = _mm512_sub_ps(t[a][2], t[a][1]);
    v[4 * a + 3] = _mm512_sub_ps(t[a][1], t[a][3]);
  }
}

// E = A dy A^T of the 2x2 output-gradient `tile` of dy (N, H, W, C_out) at channels c..c+15
// (zero outside the map): the factor the weight gradient multiplies V by at each position.
SKILLGRID_AVX512BF16 inline void OutputGradTileTransform(const uint16_t* dy, const Geometry& g, Geometry::Tile tile,
                                                         int64_t c, __m512 e[16]) {
  const uint16_t* dys = dy + tile.sample * g.h * g.w * g.out;
  __m512 y[2][2];
  for (int i = 0; i < 2; ++i) {
    const int64_t r = 2 * tile.row + i;
    for (int j = 0; j < 2; ++j) {
      const int64_t col = 2 * tile.col + j;
      y[i][j] = (r < g.h && col < g.w) ? LoadBf16(dys + (r * g.w + col) * g.out + c) : _mm512_setzero_ps();
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  __m512 t[4][2];
  for (int j = 0; j < 2; ++j) {
    t[0][j] = y[0][j];
    t[1][j] = _mm512_add_ps(y[0][j], y[1][j]);
    t[2][j] = _mm512_sub_ps(y[0][j], y[1][j]);
    t[3][j] = _mm512_sub_ps(zero, y[1][j]);
  }
  for (int a = 0; a < 4; ++a) {
    e[4 * a + 0] = t[a][0];
    e[4 * a + 1] = _mm512_add_ps(t[a][0], t[a][1]);
    e[4 * a + 2] = _mm512_sub_ps(t[a][0], t[a][1]);
    e[4 * a + 3] = _mm512_sub_ps(zero, t[a][1]);
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
constexpr int64_t kChunkTiles = 48;  // tiles per forward chunk: its V and M blocks stay in L2
constexpr int64_t kPairBlock = 32;   // tile pairs per weight-gradient block (its operands stay in L2)

// Kernel (in, 3, 3, out) fp32 -> U (16, in/2, out, 2) bfloat16: G g G^T per channel pair,
// pairs along the input channels.
// (Each parallel body is its own target function: lambdas do not inherit target attributes.)
SKILLGRID_AVX512BF16 void TransformKernelPairs(const float* wt, int64_t in, int64_t out, uint16_t* u, int64_t q0,
                                               int64_t q1) {
  for (int64_t q = q0; q < q1; ++q) {
    for (int64_t o = 0; o < out; o += 16) {
      __m512 uu[2][16];
      for (int half = 0; half < 2; ++half) {
        const float* gk = wt + (2 * q + half) * 9 * out + o;
        __m512 g[3][3];
        for (int ky = 0; ky < 3; ++ky) {
          for (int kx = 0; kx < 3; ++kx) g[ky][kx] = _mm512_loadu_ps(gk + (ky * 3 + kx) * out);
        }
        const __m512 h = _mm512_set1_ps(0.5f);
        __m512 t[4][3];  // G g
        for (int kx = 0; kx < 3; ++kx) {
          t[0][kx] = g[0][kx];
          t[1][kx] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_add_ps(g[0][kx], g[1][kx]), g[2][kx]));
          t[2][kx] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_sub_ps(g[0][kx], g[1][kx]), g[2][kx]));
          t[3][kx] = g[2][kx];
        }
        for (int a = 0; a < 4; ++a) {  // (G g) G^T
          uu[half][4 * a + 0] = t[a][0];
          uu[half][4 * a + 1] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_add_ps(t[a][0], t[a][1]), t[a][2]));
          uu[half][4 * a + 2] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_sub_ps(t[a][0], t[a][1]), t[a][2]));
          uu[half][4 * a + 3] = t[a][2];
        }
      }
      for (int64_t p = 0; p < kPositions; ++p) {
        StorePairsBf16(u + ((p * (in / 2) + q) * out + o) * 2, uu[0][p], uu[1][p]);
      }
    }
  }
}

void TransformKernel(const float* wt, int64_t in, int64_t out, uint16_t* u) {
  at::parallel_for(0, in / 2, 8, [&](int64_t q0, int64_t q1) { TransformKernelPairs(wt, in, out, u, q0, q1); });
}

// y (N, H, W, out) = conv(x (N, H, W, in), U) + bias: per chunk of tiles, the input transform,
// 16 products V_p U_p and the output transform, on one thread.
SKILLGRID_AVX512BF16 void ForwardChunks(const uint16_t* x, const uint16_t* u, const float* bias, const Geometry& g,
                                        uint16_t* y, int64_t c0, int64_t c1) {
  const int64_t tiles = g.tiles();
  // Per-position blocks 64 bytes more than a multiple of 4 KB apart: the 16 positions of a
  // tile would otherwise fall in one L1 set.
  const int64_t v_stride = kChunkTiles * g.in + 32, m_stride = kChunkTiles * g.out + 16;
  // Uninitialised: padding rows are zeroed below, and only rows the products wrote are read.
  const std::unique_ptr<uint16_t[]> v(new uint16_t[static_cast<size_t>(kPositions * v_stride)]);
  const std::unique_ptr<float[]> m(new float[static_cast<size_t>(kPositions * m_stride)]);
  for (int64_t chunk = c0; chunk < c1; ++chunk) {
    const int64_t first = chunk * kChunkTiles, count = std::min(kChunkTiles, tiles - first);
    const int64_t rows = (count + kRows - 1) / kRows * kRows;
    for (int64_t lt = 0; lt < rows; ++lt) {
      if (lt >= count) {  // padding rows of the last block: zero, their products are dropped
        for (int64_t p = 0; p < kPositions; ++p) std::fill_n(&v[p * v_stride + lt * g.in], g.in, uint16_t{0});
        continue;
      }
      const Geometry::Tile tile = g.TileAt(first + lt);
      for (int64_t c = 0; c < g.in; c += 16) {
        __m512 vv[16];
        InputTileTransform(x, g, tile, c, vv);
        for (int64_t p = 0; p < kPositions; ++p) StoreBf16(&v[p * v_stride + lt * g.in + c], vv[p]);
      }
    }
    for (int64_t p = 0; p < kPositions; ++p) {
      for (int64_t nb = 0; nb < g.out; nb += kCols) {
        for (int64_t mb = 0; mb < rows; mb += kRows) {
          MicroKernel<kRows, kVecs>(g.in / 2, &v[p * v_stride + mb * g.in], g.in / 2, 1, u + p * g.in * g.out + nb * 2,
                                    g.out, &m[p * m_stride + mb * g.out + nb], g.out, false);
        }
      }
    }
    for (int64_t lt = 0; lt < count; ++lt) {
      const Geometry::Tile tile = g.TileAt(first + lt);
      uint16_t* ys = y + tile.sample * g.h * g.w * g.out;
      for (int64_t o = 0; o < g.out; o += 16) {
        __m512 t4[2][4];  // A^T M
        for (int b = 0; b < 4; ++b) {
          const __m512 m0 = _mm512_loadu_ps(&m[(0 + b) * m_stride + lt * g.out + o]);
          const __m512 m1 = _mm512_loadu_ps(&m[(4 + b) * m_stride + lt * g.out + o]);
          const __m512 m2 = _mm512_loadu_ps(&m[(8 + b) * m_stride + lt * g.out + o]);
          const __m512 m3 = _mm512_loadu_ps(&m[(12 + b) * m_stride + lt * g.out + o]);
          t4[0][b] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
          t4[1][b] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        const __m512 bv = bias != nullptr ? _mm512_loadu_ps(bias + o) : _mm512_setzero_ps();
        for (int i = 0; i < 2; ++i) {
          const int64_t r = 2 * tile.row + i;
          if (r >= g.h) break;
          const __m512 out0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t4[i][0], t4[i][1]), t4[i][2]), bv);
          const __m512 out1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t4[i][1], t4[i][2]), t4[i][3]), bv);
          StoreBf16(ys + (r * g.w + 2 * tile.col) * g.out + o, out0);
          if (2 * tile.col + 1 < g.w) StoreBf16(ys + (r * g.w + 2 * tile.col + 1) * g.out + o, out1);
        }
      }
    }
  }
}

void ForwardTiles(const uint16_t* x, const uint16_t* u, const float* bias, const Geometry& g, uint16_t* y) {
  const int64_t chunks = (g.tiles() + kChunkTiles - 1) / kChunkTiles;
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) { ForwardChunks(x, u, bias, g, y, c0, c1); });
}

// Ghat_p (out, in) = sum over tiles of E_p^T V_p for positions p_first..p_first+p_count, where
// V = B^T x B and E = A dy A^T per tile. Tiles go in blocks of kPairBlock pairs: each block is
// transformed (only these positions stored, tiles paired along K) into buffers that stay in L2
// with the accumulators, then multiplied in. Every position sums its blocks in order.
SKILLGRID_AVX512BF16 void WeightGradPositions(const uint16_t* x, const uint16_t* dy, const Geometry& g,
                                              int64_t p_first, int64_t p_count, float* ghat) {
  const int64_t tiles = g.tiles(), pairs = (tiles + 1) / 2;
  // Per-position blocks padded by 64 bytes, so that one tile's positions do not share an L1 set.
  const int64_t v_stride = kPairBlock * g.in * 2 + 32, e_stride = kPairBlock * g.out * 2 + 32;
  // Uninitialised: the products read only the pairs this block's transforms wrote.
  const std::unique_ptr<uint16_t[]> v(new uint16_t[static_cast<size_t>(p_count * v_stride)]);
  const std::unique_ptr<uint16_t[]> e(new uint16_t[static_cast<size_t>(p_count * e_stride)]);
  for (int64_t k0 = 0; k0 < pairs; k0 += kPairBlock) {
    const int64_t kn = std::min(kPairBlock, pairs - k0);
    for (int64_t k = k0; k < k0 + kn; ++k) {
      __m512 even[16], odd[16];
      // The pair's second tile is missing (zero) when the tile count is odd.
      const Geometry::Tile tile0 = g.TileAt(2 * k), tile1 = g.TileAt(2 * k + 1);
      const bool has_odd = 2 * k + 1 < tiles;
      for (int64_t c = 0; c < g.in; c += 16) {
        InputTileTransform(x, g, tile0, c, even);
        if (has_odd) {
          InputTileTransform(x, g, tile1, c, odd);
        } else {
          for (__m512& z : odd) z = _mm512_setzero_ps();
        }
        for (int64_t p = 0; p < p_count; ++p) {
          StorePairsBf16(&v[p * v_stride + ((k - k0) * g.in + c) * 2], even[p_first + p], odd[p_first + p]);
        }
      }
      for (int64_t c = 0; c < g.out; c += 16) {
        OutputGradTileTransform(dy, g, tile0, c, even);
        if (has_odd) {
          OutputGradTileTransform(dy, g, tile1, c, odd);
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

// taps (out, 3, 3, in) = G^T Ghat G for output channels o0..o1, 16 input channels at a time.
SKILLGRID_AVX512BF16 void KernelGradTaps(const float* ghat, const Geometry& g, float* taps, int64_t o0, int64_t o1) {
  const __m512 h = _mm512_set1_ps(0.5f);
  for (int64_t o = o0; o < o1; ++o) {
    for (int64_t i = 0; i < g.in; i += 16) {
      __m512 gh[4][4];
      for (int a = 0; a < 4; ++a) {
        for (int b = 0; b < 4; ++b) gh[a][b] = _mm512_loadu_ps(ghat + ((4 * a + b) * g.out + o) * g.in + i);
      }
      __m512 r[3][4];  // G^T Ghat
      for (int b = 0; b < 4; ++b) {
        const __m512 mid = _mm512_mul_ps(h, _mm512_add_ps(gh[1][b], gh[2][b]));
        r[0][b] = _mm512_add_ps(gh[0][b], mid);
        r[1][b] = _mm512_mul_ps(h, _mm512_sub_ps(gh[1][b], gh[2][b]));
        r[2][b] = _mm512_add_ps(mid, gh[3][b]);
      }
      for (int ky = 0; ky < 3; ++ky) {  // (G^T Ghat) G
        const __m512 mid = _mm512_mul_ps(h, _mm512_add_ps(r[ky][1], r[ky][2]));
        float* dst = taps + (o * 9 + ky * 3) * g.in + i;
        _mm512_storeu_ps(dst, _mm512_add_ps(r[ky][0], mid));
        _mm512_storeu_ps(dst + g.in, _mm512_mul_ps(h, _mm512_sub_ps(r[ky][1], r[ky][2])));
        _mm512_storeu_ps(dst + 2 * g.in, _mm512_add_ps(mid, r[ky][3]));
      }
    }
  }
}

// grad_bias[o0..o1) = dy summed over samples and cells, in cell order.
void BiasGrad(const uint16_t* dy, const Geometry& g, float* gb, int64_t o0, int64_t o1) {
  std::fill(gb + o0, gb + o1, 0.0f);
  for (int64_t cell = 0; cell < g.n * g.h * g.w; ++cell) {
    const uint16_t* row = dy + cell * g.out;
    for (int64_t o = o0; o < o1; ++o) gb[o] += Bf16BitsToFloat(row[o]);
  }
}

// grad_weight (out, in, 3, 3) and grad_bias of conv(x, w) + b from dy, both channels-last bf16.
// Each stage splits its work over threads in disjoint outputs; every sum runs in a fixed order.
void WeightGradTiles(const uint16_t* x, const uint16_t* dy, const Geometry& g, float* gw, float* gb) {
  // Positions split in groups, one per thread: each thread transforms every tile but keeps only
  // its positions, so its operands and accumulators stay in its own core's L2.
  const int64_t groups = std::clamp<int64_t>(at::get_num_threads(), 1, 4);
  const std::unique_ptr<float[]> ghat(new float[static_cast<size_t>(kPositions * g.out * g.in)]);
  at::parallel_for(0, groups, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t first = kPositions * q / groups, count = kPositions * (q + 1) / groups - first;
      WeightGradPositions(x, dy, g, first, count, ghat.get());
    }
  });
  std::vector<float> taps(static_cast<size_t>(g.out * 9 * g.in));
  at::parallel_for(0, g.out, 8, [&](int64_t o0, int64_t o1) { KernelGradTaps(ghat.get(), g, taps.data(), o0, o1); });
  at::parallel_for(0, g.out, 16, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t tap = 0; tap < 9; ++tap) {  // rows of taps in order; writes stay in o's 9 x in block
        for (int64_t i = 0; i < g.in; ++i) gw[(o * g.in + i) * 9 + tap] = taps[static_cast<size_t>((o * 9 + tap) * g.in + i)];
      }
    }
    if (gb != nullptr) BiasGrad(dy, g, gb, o0, o1);
  });
}

#endif  // SKILLGRID_HAVE_WINOGRAD_CODE

const uint16_t* Bits(const at::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }

}  // namespace

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

at::Tensor WinogradConv3x3(const at::Tensor& x_in, const at::Tensor& weight, const at::Tensor& bias,
                           bool flip_transpose) {
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3,
              "WinogradConv3x3: weight must be (C_out, C_in, 3, 3), got ", weight.sizes());
  const int64_t in = flip_transpose ? weight.size(0) : weight.size(1);
  const int64_t out = flip_transpose ? weight.size(1) : weight.size(0);
  TORCH_CHECK(WinogradConv3x3Supports(x_in, out) && x_in.size(1) == in, "WinogradConv3x3: unsupported operands x ",
              x_in.sizes(), " ", x_in.scalar_type(), " and weight ", weight.sizes(),
              flip_transpose ? " (flipped)" : "", " (needs AVX512-BF16 without AMX, bf16 input, channels multiples of 32)");
  TORCH_CHECK(!bias.defined() || bias.numel() == out, "WinogradConv3x3: bias must have ", out, " entries, got ",
              bias.sizes());
  const at::Tensor x = ChannelsLastBf16(x_in);
  const Geometry g{x.size(0), in, out, x.size(2), x.size(3)};
  at::Tensor y = at::empty({g.n, out, g.h, g.w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
#ifdef SKILLGRID_HAVE_WINOGRAD_CODE
  // The kernel as (in, 3, 3, out) fp32: contiguous output channels for the vector transform.
  const at::Tensor w32 = weight.to(at::kFloat);
  const at::Tensor wt = (flip_transpose ? w32.flip({2, 3}).permute({0, 2, 3, 1}) : w32.permute({1, 2, 3, 0})).contiguous();
  at::Tensor u = at::empty({kPositions, in / 2, out, 2}, x.options().memory_format(at::MemoryFormat::Contiguous));
  auto* u_bits = reinterpret_cast<uint16_t*>(u.data_ptr<at::BFloat16>());
  TransformKernel(wt.data_ptr<float>(), in, out, u_bits);
  const at::Tensor b32 = bias.defined() ? bias.to(at::kFloat).contiguous() : at::Tensor();
  ForwardTiles(Bits(x), u_bits, b32.defined() ? b32.data_ptr<float>() : nullptr, g,
               reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()));
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
  const Geometry g{x_in.size(0), x_in.size(1), dy_in.size(1), x_in.size(2), x_in.size(3)};
  TORCH_CHECK(grad_weight.scalar_type() == at::kFloat && grad_weight.is_contiguous() &&
                  grad_weight.sizes() == at::IntArrayRef({g.out, g.in, 3, 3}),
              "WinogradConv3x3WeightGrad: grad_weight must be contiguous fp32 (", g.out, ", ", g.in, ", 3, 3), got ",
              grad_weight.sizes());
  TORCH_CHECK(!grad_bias.defined() ||
                  (grad_bias.scalar_type() == at::kFloat && grad_bias.is_contiguous() && grad_bias.numel() == g.out),
              "WinogradConv3x3WeightGrad: grad_bias must be contiguous fp32 (", g.out, "), got ", grad_bias.sizes());
#ifdef SKILLGRID_HAVE_WINOGRAD_CODE
  const at::Tensor x = ChannelsLastBf16(x_in), dy = ChannelsLastBf16(dy_in);
  WeightGradTiles(Bits(x), Bits(dy), g, grad_weight.data_ptr<float>(),
                  grad_bias.defined() ? grad_bias.data_ptr<float>() : nullptr);
#endif
}

}  // namespace skillgrid::skills
