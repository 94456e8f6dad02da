#include "skills/winograd_conv_fp32.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "skills/blas_runtime.h"

namespace skillgrid::skills {
namespace {

constexpr int kPositions = 16;  // a 4x4 Winograd tile
// Tiles per chunk: the unit of work and of the scratch buffers (16 x 128 x 64 floats = 512 KB
// per operand with 128 channels, inside L2; 64 ran at least as fast as 128 and 256 in `bench train`).
// Fixed, so the weight gradient's sums do not follow the thread count.
constexpr int64_t kTilesPerChunk = 64;
// Fewest tiles for which routed convolutions take these kernels (WinogradConv3x3Fp32Preferred).
constexpr int64_t kMinTiles = 256;
// Chunk groups whose weight-gradient partial sums are added in order at the end.
constexpr int64_t kMaxGroups = 4;

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

// Tile geometry: 2x2 output tiles over an H x W map, chunked by whole samples.
struct Geometry {
  int64_t n, in, out, h, w;
  int64_t tiles_h() const { return (h + 1) / 2; }
  int64_t tiles_w() const { return (w + 1) / 2; }
  int64_t tiles_per_sample() const { return tiles_h() * tiles_w(); }
  int64_t samples_per_chunk() const { return std::max<int64_t>(1, kTilesPerChunk / tiles_per_sample()); }
  int64_t chunks() const { return (n + samples_per_chunk() - 1) / samples_per_chunk(); }
};

// (G g G^T) of the kernels at input channels i.., G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]:
// g[k * in + i] is tap k (row-major 3x3) of input channel i; writes u[p * ps + i].
template <typename T>
inline __attribute__((always_inline)) void KernelChannels(const float* g, int64_t in, int64_t i, float* u,
                                                          int64_t ps) {
  T t[4][3];  // G g
  for (int j = 0; j < 3; ++j) {
    const T g0 = Load(g + j * in + i, T()), g1 = Load(g + (3 + j) * in + i, T()), g2 = Load(g + (6 + j) * in + i, T());
    t[0][j] = g0;
    t[1][j] = 0.5f * (g0 + g1 + g2);
    t[2][j] = 0.5f * (g0 - g1 + g2);
    t[3][j] = g2;
  }
  for (int a = 0; a < 4; ++a) {
    Store(u + (4 * a + 0) * ps + i, t[a][0]);
    Store(u + (4 * a + 1) * ps + i, 0.5f * (t[a][0] + t[a][1] + t[a][2]));
    Store(u + (4 * a + 2) * ps + i, 0.5f * (t[a][0] - t[a][1] + t[a][2]));
    Store(u + (4 * a + 3) * ps + i, t[a][2]);
  }
}

// G^T dU G of the kernels at input channels i.. from their 16 positions u[p * ps + i]; writes
// tap k of input channel i to dw[k * in + i].
template <typename T>
inline __attribute__((always_inline)) void KernelGradChannels(const float* u, int64_t ps, int64_t in, int64_t i,
                                                              float* dw) {
  T t[3][4];  // G^T dU
  for (int b = 0; b < 4; ++b) {
    const T u0 = Load(u + b * ps + i, T()), u1 = Load(u + (4 + b) * ps + i, T()),
            u2 = Load(u + (8 + b) * ps + i, T()), u3 = Load(u + (12 + b) * ps + i, T());
    t[0][b] = u0 + 0.5f * (u1 + u2);
    t[1][b] = 0.5f * (u1 - u2);
    t[2][b] = 0.5f * (u1 + u2) + u3;
  }
  for (int r = 0; r < 3; ++r) {
    Store(dw + (3 * r + 0) * in + i, t[r][0] + 0.5f * (t[r][1] + t[r][2]));
    Store(dw + (3 * r + 1) * in + i, 0.5f * (t[r][1] - t[r][2]));
    Store(dw + (3 * r + 2) * in + i, 0.5f * (t[r][1] + t[r][2]) + t[r][3]);
  }
}

// U (16, C_out, C_in) of output channels [o0, o1) from taps (C_out, 9, C_in).
SKILLGRID_AVX2_CLONES void KernelTransform(const float* taps, int64_t out, int64_t in, int64_t o0, int64_t o1,
                                           float* u) {
  for (int64_t o = o0; o < o1; ++o) {
    int64_t i = 0;
    for (; i + kLanes <= in; i += kLanes) KernelChannels<F8>(taps + o * 9 * in, in, i, u + o * in, out * in);
    for (; i < in; ++i) KernelChannels<float>(taps + o * 9 * in, in, i, u + o * in, out * in);
  }
}

// The inverse direction for the weight gradient: taps (C_out, 9, C_in) of output channels
// [o0, o1) from dU (16, C_out, C_in).
SKILLGRID_AVX2_CLONES void KernelGradTransform(const float* du, int64_t out, int64_t in, int64_t o0, int64_t o1,
                                               float* taps) {
  for (int64_t o = o0; o < o1; ++o) {
    int64_t i = 0;
    for (; i + kLanes <= in; i += kLanes) KernelGradChannels<F8>(du + o * in, out * in, in, i, taps + o * 9 * in);
    for (; i < in; ++i) KernelGradChannels<float>(du + o * in, out * in, in, i, taps + o * 9 * in);
  }
}

// U (16, C_out, C_in): every kernel of weight (C_out, C_in, 3, 3) transformed; with `flip` the
// kernel for (o, i) is weight[i][o] rotated by 180 degrees (weight then (C_in', C_out', 3, 3)).
std::vector<float> KernelsTransform(const at::Tensor& weight, bool flip, int64_t out, int64_t in) {
  // Taps (C_out, 3, 3, C_in): input channels innermost, so the transform runs over them.
  const at::Tensor taps =
      (flip ? weight.flip({2, 3}).permute({1, 2, 3, 0}) : weight.permute({0, 2, 3, 1})).contiguous();
  std::vector<float> u(static_cast<size_t>(kPositions * out * in));
  const float* tp = taps.data_ptr<float>();
  at::parallel_for(0, out, 16, [&](int64_t o0, int64_t o1) { KernelTransform(tp, out, in, o0, o1, u.data()); });
  return u;
}

// One tile's B^T d B at channels c.. (one lane type's width) from its 16 input cells.
template <typename T>
inline __attribute__((always_inline)) void InputTileChannels(const float* const d[4][4], int64_t c, float* o,
                                                             int64_t ps) {
  T m[4][4];
  for (int b = 0; b < 4; ++b) {
    const T d0 = Load(d[0][b] + c, T()), d1 = Load(d[1][b] + c, T()), d2 = Load(d[2][b] + c, T()),
            d3 = Load(d[3][b] + c, T());
    m[0][b] = d0 - d2;
    m[1][b] = d1 + d2;
    m[2][b] = d2 - d1;
    m[3][b] = d1 - d3;
  }
  for (int a = 0; a < 4; ++a) {
    Store(o + (4 * a + 0) * ps + c, m[a][0] - m[a][2]);
    Store(o + (4 * a + 1) * ps + c, m[a][1] + m[a][2]);
    Store(o + (4 * a + 2) * ps + c, m[a][2] - m[a][1]);
    Store(o + (4 * a + 3) * ps + c, m[a][1] - m[a][3]);
  }
}

// One tile's A^T m A plus bias at output channels o.. into its four output cells.
template <typename T>
inline __attribute__((always_inline)) void OutputTileChannels(const float* q, int64_t ps, const float* bias,
                                                              int64_t o, float* const dst[2][2]) {
  T t2[2][4];
  for (int b = 0; b < 4; ++b) {
    const T m0 = Load(q + b * ps + o, T()), m1 = Load(q + (4 + b) * ps + o, T()),
            m2 = Load(q + (8 + b) * ps + o, T()), m3 = Load(q + (12 + b) * ps + o, T());
    t2[0][b] = m0 + m1 + m2;
    t2[1][b] = m1 - m2 - m3;
  }
  const T bv = Load(bias + o, T());
  for (int i = 0; i < 2; ++i) {
    Store(dst[i][0] + o, t2[i][0] + t2[i][1] + t2[i][2] + bv);
    Store(dst[i][1] + o, t2[i][1] - t2[i][2] - t2[i][3] + bv);
  }
}

// One output-gradient tile's A dy A^T at channels o.. from its four cells.
template <typename T>
inline __attribute__((always_inline)) void OutputGradTileChannels(const float* const d[2][2], int64_t o, float* q,
                                                                  int64_t ps) {
  const T d00 = Load(d[0][0] + o, T()), d01 = Load(d[0][1] + o, T()), d10 = Load(d[1][0] + o, T()),
          d11 = Load(d[1][1] + o, T());
  // Rows: A d = [d0; d0 + d1; d0 - d1; -d1], then the same on columns.
  const T t2[4][2] = {{d00, d01}, {d00 + d10, d01 + d11}, {d00 - d10, d01 - d11}, {-d10, -d11}};
  for (int a = 0; a < 4; ++a) {
    Store(q + (4 * a + 0) * ps + o, t2[a][0]);
    Store(q + (4 * a + 1) * ps + o, t2[a][0] + t2[a][1]);
    Store(q + (4 * a + 2) * ps + o, t2[a][0] - t2[a][1]);
    Store(q + (4 * a + 3) * ps + o, -t2[a][1]);
  }
}

// V (16, T, C) of the chunk's samples [s0, s1) of x (N, H, W, C channels-last): B^T d B of each
// tile's 4x4 input patch (rows 2r-1..2r+2, zero outside the map), B^T = [1 0 -1 0; 0 1 1 0;
// 0 -1 1 0; 0 1 0 -1]. Channels are contiguous in both x and V; `zeros` holds C zeros for cells
// outside the map.
SKILLGRID_AVX2_CLONES void InputTransform(const float* x, const Geometry& g, int64_t channels, int64_t s0, int64_t s1, float* v,
                    const float* zeros) {
  const int64_t t_chunk = (s1 - s0) * g.tiles_per_sample();
  const int64_t ps = t_chunk * channels;  // position stride
  for (int64_t s = s0; s < s1; ++s) {
    const float* xs = x + s * g.h * g.w * channels;
    for (int64_t tr = 0; tr < g.tiles_h(); ++tr) {
      for (int64_t tc = 0; tc < g.tiles_w(); ++tc) {
        const float* d[4][4];
        for (int a = 0; a < 4; ++a) {
          const int64_t r = 2 * tr - 1 + a;
          for (int b = 0; b < 4; ++b) {
            const int64_t c = 2 * tc - 1 + b;
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

// y (N, H, W, C_out channels-last) for samples [s0, s1) from M (16, T, C_out): A^T m A of each
// tile, A^T = [1 1 1 0; 0 1 -1 -1], plus the bias; outputs past the map are dropped.
SKILLGRID_AVX2_CLONES void OutputTransform(const float* m, const Geometry& g, const float* bias, const float* zeros, int64_t s0,
                     int64_t s1, float* y) {
  const int64_t t_chunk = (s1 - s0) * g.tiles_per_sample();
  const int64_t ps = t_chunk * g.out;
  const float* b = bias != nullptr ? bias : zeros;
  std::vector<float> spill(static_cast<size_t>(g.out));  // where outputs past the map go
  for (int64_t s = s0; s < s1; ++s) {
    float* ys = y + s * g.h * g.w * g.out;
    for (int64_t tr = 0; tr < g.tiles_h(); ++tr) {
      for (int64_t tc = 0; tc < g.tiles_w(); ++tc) {
        const int64_t t = (s - s0) * g.tiles_per_sample() + tr * g.tiles_w() + tc;
        const float* q = m + t * g.out;
        float* dst[2][2];
        for (int i = 0; i < 2; ++i) {
          for (int j = 0; j < 2; ++j) {
            const int64_t r = 2 * tr + i, c = 2 * tc + j;
            dst[i][j] = (r < g.h && c < g.w) ? ys + (r * g.w + c) * g.out : spill.data();
          }
        }
        int64_t o = 0;
        for (; o + kLanes <= g.out; o += kLanes) OutputTileChannels<F8>(q, ps, b, o, dst);
        for (; o < g.out; ++o) OutputTileChannels<float>(q, ps, b, o, dst);
      }
    }
  }
}

// E (16, T, C_out) for samples [s0, s1) of dy (N, H, W, C_out channels-last): A dy A^T of each
// 2x2 output tile (zero past the map), the factor the weight gradient multiplies V by at each
// position.
SKILLGRID_AVX2_CLONES void OutputGradTransform(const float* dy, const Geometry& g, const float* zeros, int64_t s0, int64_t s1, float* e) {
  const int64_t t_chunk = (s1 - s0) * g.tiles_per_sample();
  const int64_t ps = t_chunk * g.out;
  for (int64_t s = s0; s < s1; ++s) {
    const float* dys = dy + s * g.h * g.w * g.out;
    for (int64_t tr = 0; tr < g.tiles_h(); ++tr) {
      for (int64_t tc = 0; tc < g.tiles_w(); ++tc) {
        const float* d[2][2];
        for (int i = 0; i < 2; ++i) {
          for (int j = 0; j < 2; ++j) {
            const int64_t r = 2 * tr + i, c = 2 * tc + j;
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
    return !__builtin_cpu_supports("avx512f");
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

at::Tensor WinogradConv3x3Fp32(const at::Tensor& x_in, const at::Tensor& weight, const at::Tensor& bias,
                               bool flip_transpose) {
  TORCH_CHECK(WinogradConv3x3Fp32Supports(x_in), "WinogradConv3x3Fp32: x must be 4-D non-empty fp32 on CPU, got ",
              x_in.sizes(), " ", x_in.scalar_type(), " on ", x_in.device());
  const int64_t out = flip_transpose ? weight.size(1) : weight.size(0);
  const int64_t in = flip_transpose ? weight.size(0) : weight.size(1);
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 && in == x_in.size(1) &&
                  weight.scalar_type() == at::kFloat,
              "WinogradConv3x3Fp32: weight ", weight.sizes(), " (", weight.scalar_type(), ", flip_transpose ",
              flip_transpose, ") does not fit input ", x_in.sizes());
  TORCH_CHECK(!bias.defined() || (bias.numel() == out && bias.scalar_type() == at::kFloat),
              "WinogradConv3x3Fp32: bias ", bias.sizes(), " for ", out, " output channels");
  const at::Tensor x = x_in.contiguous(at::MemoryFormat::ChannelsLast);
  const Geometry g{x.size(0), in, out, x.size(2), x.size(3)};
  const std::vector<float> u = KernelsTransform(weight, flip_transpose, out, in);
  const std::vector<float> zeros(static_cast<size_t>(std::max(in, out)), 0.0f);
  const at::Tensor b = bias.defined() ? bias.contiguous() : at::Tensor();
  at::Tensor y = at::empty({g.n, out, g.h, g.w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* xp = x.data_ptr<float>();
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, g.chunks(), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v, m;
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t s0 = chunk * g.samples_per_chunk(), s1 = std::min(g.n, s0 + g.samples_per_chunk());
      const int64_t t = (s1 - s0) * g.tiles_per_sample();
      v.resize(static_cast<size_t>(kPositions * in * t));
      m.resize(static_cast<size_t>(kPositions * out * t));
      InputTransform(xp, g, in, s0, s1, v.data(), zeros.data());
      for (int p = 0; p < kPositions; ++p) {
        // M_p (T, out) = V_p (T, in) U_p^T (in, out)
        CheckGemm(RowMajorGemm(false, true, t, out, in, v.data() + p * t * in, in, u.data() + p * out * in, in, 0.0f,
                               m.data() + p * t * out, out));
      }
      OutputTransform(m.data(), g, bp, zeros.data(), s0, s1, yp);
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
  std::vector<float> partial(static_cast<size_t>(groups * uk), 0.0f);
  const float* xp = x.data_ptr<float>();
  const float* dyp = dy.data_ptr<float>();
  const std::vector<float> zeros(static_cast<size_t>(std::max(g.in, g.out)), 0.0f);
  at::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v, e;
    for (int64_t grp = begin; grp < end; ++grp) {
      float* du = partial.data() + grp * uk;
      for (int64_t chunk = grp * chunks / groups; chunk < (grp + 1) * chunks / groups; ++chunk) {
        const int64_t s0 = chunk * g.samples_per_chunk(), s1 = std::min(g.n, s0 + g.samples_per_chunk());
        const int64_t t = (s1 - s0) * g.tiles_per_sample();
        v.resize(static_cast<size_t>(kPositions * g.in * t));
        e.resize(static_cast<size_t>(kPositions * g.out * t));
        InputTransform(xp, g, g.in, s0, s1, v.data(), zeros.data());
        OutputGradTransform(dyp, g, zeros.data(), s0, s1, e.data());
        for (int p = 0; p < kPositions; ++p) {
          // dU_p (out, in) += E_p^T (out, T) V_p (T, in)
          CheckGemm(RowMajorGemm(true, false, g.out, g.in, t, e.data() + p * t * g.out, g.out, v.data() + p * t * g.in,
                                 g.in, 1.0f, du + p * g.out * g.in, g.in));
        }
      }
    }
  });
  for (int64_t grp = 1; grp < groups; ++grp) {
    for (int64_t k = 0; k < uk; ++k) partial[k] += partial[grp * uk + k];
  }
  at::Tensor taps = at::empty({g.out, 3, 3, g.in}, x.options().memory_format(at::MemoryFormat::Contiguous));
  float* tp = taps.data_ptr<float>();
  at::parallel_for(0, g.out, 16,
                   [&](int64_t o0, int64_t o1) { KernelGradTransform(partial.data(), g.out, g.in, o0, o1, tp); });
  grad_weight.copy_(taps.permute({0, 3, 1, 2}));
  if (grad_bias.defined()) {
    TORCH_CHECK(grad_bias.numel() == g.out, "WinogradConv3x3Fp32WeightGrad: grad_bias ", grad_bias.sizes(), " for ",
                g.out, " channels");
    std::vector<float> sums(static_cast<size_t>(g.out), 0.0f);
    const int64_t cells = g.n * g.h * g.w;
    for (int64_t k = 0; k < cells; ++k) {
      const float* d = dyp + k * g.out;
      for (int64_t o = 0; o < g.out; ++o) sums[static_cast<size_t>(o)] += d[o];
    }
    grad_bias.copy_(at::from_blob(sums.data(), {g.out}, at::kFloat).view(grad_bias.sizes()));
  }
}

}  // namespace skillgrid::skills
