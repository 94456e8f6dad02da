#include "agents/fast_math.h"

#include <cmath>
#include <cstring>

namespace skillgrid::agents {
namespace {

// The vector widths the loops are built with: 16 floats for AVX-512, 8 for AVX2 and baseline
// x86-64. One 64-byte width for every build (as before) left AVX2 splitting each vector in two
// halves through the stack: the exp polynomial's constants and terms spilled on every step.
struct Wide {
  typedef float F __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));
};
struct Narrow {
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
};

// The helpers must inline into each ISA's loop to be built for it.
#define SKILLGRID_INLINE inline __attribute__((always_inline))

template <typename W>
SKILLGRID_INLINE typename W::F Splat(float v) {
  return typename W::F{} + v;
}

// exp(x) for x already clamped to [-87, 88]: x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in a
// short head, exact times k, and a tail), exp(r) by its Taylor series to r^7 (truncation below
// 5e-9 relative), then 2^k written into the exponent bits.
template <typename W>
SKILLGRID_INLINE typename W::F ExpClamped(typename W::F x) {
  using F = typename W::F;
  using I = typename W::I;
  const F shifter = Splat<W>(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const F k = (x * Splat<W>(1.44269504088896341f) + shifter) - shifter;
  F r = x - k * Splat<W>(0.693145751953125f);
  r = r - k * Splat<W>(1.42860682030941723e-6f);
  F p = Splat<W>(1.0f / 5040.0f);
  p = p * r + Splat<W>(1.0f / 720.0f);
  p = p * r + Splat<W>(1.0f / 120.0f);
  p = p * r + Splat<W>(1.0f / 24.0f);
  p = p * r + Splat<W>(1.0f / 6.0f);
  p = p * r + Splat<W>(0.5f);
  p = p * r + Splat<W>(1.0f);
  p = p * r + Splat<W>(1.0f);
  const I bits = (__builtin_convertvector(k, I) + 127) << 23;
  return p * (F)bits;  // a vector cast keeps the bits
}

template <typename W>
SKILLGRID_INLINE typename W::F Clamp(typename W::F x, float lo, float hi) {
  x = x < Splat<W>(lo) ? Splat<W>(lo) : x;
  return x > Splat<W>(hi) ? Splat<W>(hi) : x;
}

template <typename W>
SKILLGRID_INLINE typename W::F SigmoidVec(typename W::F x) {
  const typename W::F e = ExpClamped<W>(Clamp<W>(-x, -87.0f, 88.0f));
  const typename W::F y = Splat<W>(1.0f) / (Splat<W>(1.0f) + e);
  return x == x ? y : x;  // NaN in, NaN out (the clamps would have hidden it)
}

template <typename W>
SKILLGRID_INLINE typename W::F TanhVec(typename W::F x) {
  using F = typename W::F;
  using I = typename W::I;
  const I sign_mask = I{} + static_cast<int32_t>(0x80000000u);
  const I xi = (I)x;
  const F a = (F)(xi & ~sign_mask);
  // Large |x|: 1 - 2 / (exp(2|x|) + 1); from |x| = 9.1 on it rounds to 1, so clamping at 10
  // keeps exp finite and saturates exactly.
  const F e = ExpClamped<W>(Clamp<W>(a + a, -87.0f, 20.0f));
  const F large = Splat<W>(1.0f) - Splat<W>(2.0f) / (e + Splat<W>(1.0f));
  // Small |x| (the form above cancels there): tanh's series to x^11, next term below 6e-11.
  const F a2 = a * a;
  F s = Splat<W>(-1382.0f / 155925.0f);
  s = s * a2 + Splat<W>(62.0f / 2835.0f);
  s = s * a2 + Splat<W>(-17.0f / 315.0f);
  s = s * a2 + Splat<W>(2.0f / 15.0f);
  s = s * a2 + Splat<W>(-1.0f / 3.0f);
  s = a + a * a2 * s;
  const F magnitude = a < Splat<W>(0.25f) ? s : large;
  const F y = (F)((I)magnitude | (xi & sign_mask));
  return x == x ? y : x;
}

// y = Op(x) over n floats, one vector of W at a time, the tail through one zero-padded vector.
template <typename W, typename W::F (*Op)(typename W::F)>
SKILLGRID_INLINE void ApplyVec(const float* x, float* y, int64_t n) {
  using F = typename W::F;
  constexpr int64_t lanes = sizeof(F) / sizeof(float);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    F v;
    std::memcpy(&v, x + i, sizeof v);
    v = Op(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  if (i < n) {
    F v = {};
    std::memcpy(&v, x + i, sizeof(float) * static_cast<size_t>(n - i));
    v = Op(v);
    std::memcpy(y + i, &v, sizeof(float) * static_cast<size_t>(n - i));
  }
}

using FloatLoop = void (*)(const float*, float*, int64_t);

void SigmoidBaseline(const float* x, float* y, int64_t n) { ApplyVec<Narrow, SigmoidVec<Narrow>>(x, y, n); }
void TanhBaseline(const float* x, float* y, int64_t n) { ApplyVec<Narrow, TanhVec<Narrow>>(x, y, n); }

// Each loop built for AVX-512 (x86-64-v4), AVX2 (v3) and baseline x86-64, picked once by the
// CPU it runs on (GCC on x86-64; elsewhere all three are the baseline build).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SKILLGRID_ISA_LEVELS 1
#define SKILLGRID_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
#define SKILLGRID_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#define SKILLGRID_MATH_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SKILLGRID_TARGET_AVX512
#define SKILLGRID_TARGET_AVX2
#define SKILLGRID_MATH_CLONES
#endif

SKILLGRID_TARGET_AVX512 void SigmoidAvx512(const float* x, float* y, int64_t n) {
  ApplyVec<Wide, SigmoidVec<Wide>>(x, y, n);
}
SKILLGRID_TARGET_AVX512 void TanhAvx512(const float* x, float* y, int64_t n) { ApplyVec<Wide, TanhVec<Wide>>(x, y, n); }
SKILLGRID_TARGET_AVX2 void SigmoidAvx2(const float* x, float* y, int64_t n) {
  ApplyVec<Narrow, SigmoidVec<Narrow>>(x, y, n);
}
SKILLGRID_TARGET_AVX2 void TanhAvx2(const float* x, float* y, int64_t n) { ApplyVec<Narrow, TanhVec<Narrow>>(x, y, n); }

// The widest of the three builds this CPU runs.
FloatLoop PickLoop(FloatLoop avx512, FloatLoop avx2, FloatLoop baseline) {
#ifdef SKILLGRID_ISA_LEVELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return avx512;
  if (__builtin_cpu_supports("x86-64-v3")) return avx2;
#else
  (void)avx512;
  (void)avx2;
#endif
  return baseline;
}

SKILLGRID_MATH_CLONES void TanhBackwardLoop(const float* y, const float* g, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * (1.0f - y[i] * y[i]);
}

}  // namespace

void FastSigmoid(const float* x, float* y, int64_t n) {
  static const FloatLoop loop = PickLoop(SigmoidAvx512, SigmoidAvx2, SigmoidBaseline);
  loop(x, y, n);
}

void TanhBackward(const float* y, const float* g, float* dx, int64_t n) { TanhBackwardLoop(y, g, dx, n); }

void FastTanh(const float* x, float* y, int64_t n) {
  static const FloatLoop loop = PickLoop(TanhAvx512, TanhAvx2, TanhBaseline);
  loop(x, y, n);
}

void FastSigmoid(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0 / (1.0 + std::exp(-x[i]));
}

void FastTanh(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

}  // namespace skillgrid::agents
