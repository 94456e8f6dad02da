#include "agents/fast_math.h"

#include <cmath>
#include <cstring>

namespace skillgrid::agents {
namespace {

typedef float FloatVec __attribute__((vector_size(64)));
typedef int32_t IntVec __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;

// Builds a function for AVX-512, AVX2 and baseline x86-64, dispatched at load time (GCC on
// x86-64; elsewhere one build for the target).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SKILLGRID_MATH_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SKILLGRID_MATH_CLONES
#endif
// The helpers must inline into each clone to get its vector width.
#define SKILLGRID_INLINE inline __attribute__((always_inline))

SKILLGRID_INLINE FloatVec Splat(float v) { return FloatVec{} + v; }

// exp(x) for x already clamped to [-87, 88]: x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in a
// short head, exact times k, and a tail), exp(r) by its Taylor series to r^7 (truncation below
// 5e-9 relative), then 2^k written into the exponent bits.
SKILLGRID_INLINE FloatVec ExpClamped(FloatVec x) {
  const FloatVec shifter = Splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const FloatVec k = (x * Splat(1.44269504088896341f) + shifter) - shifter;
  FloatVec r = x - k * Splat(0.693145751953125f);
  r = r - k * Splat(1.42860682030941723e-6f);
  FloatVec p = Splat(1.0f / 5040.0f);
  p = p * r + Splat(1.0f / 720.0f);
  p = p * r + Splat(1.0f / 120.0f);
  p = p * r + Splat(1.0f / 24.0f);
  p = p * r + Splat(1.0f / 6.0f);
  p = p * r + Splat(0.5f);
  p = p * r + Splat(1.0f);
  p = p * r + Splat(1.0f);
  const IntVec bits = (__builtin_convertvector(k, IntVec) + 127) << 23;
  return p * (FloatVec)bits;  // a vector cast keeps the bits
}

SKILLGRID_INLINE FloatVec Clamp(FloatVec x, float lo, float hi) {
  x = x < Splat(lo) ? Splat(lo) : x;
  return x > Splat(hi) ? Splat(hi) : x;
}

SKILLGRID_INLINE FloatVec SigmoidVec(FloatVec x) {
  const FloatVec e = ExpClamped(Clamp(-x, -87.0f, 88.0f));
  const FloatVec y = Splat(1.0f) / (Splat(1.0f) + e);
  return x == x ? y : x;  // NaN in, NaN out (the clamps would have hidden it)
}

SKILLGRID_INLINE FloatVec TanhVec(FloatVec x) {
  const IntVec sign_mask = IntVec{} + static_cast<int32_t>(0x80000000u);
  const IntVec xi = (IntVec)x;
  const FloatVec a = (FloatVec)(xi & ~sign_mask);
  // Large |x|: 1 - 2 / (exp(2|x|) + 1); from |x| = 9.1 on it rounds to 1, so clamping at 10
  // keeps exp finite and saturates exactly.
  const FloatVec e = ExpClamped(Clamp(a + a, -87.0f, 20.0f));
  const FloatVec large = Splat(1.0f) - Splat(2.0f) / (e + Splat(1.0f));
  // Small |x| (the form above cancels there): tanh's series to x^11, next term below 6e-11.
  const FloatVec a2 = a * a;
  FloatVec s = Splat(-1382.0f / 155925.0f);
  s = s * a2 + Splat(62.0f / 2835.0f);
  s = s * a2 + Splat(-17.0f / 315.0f);
  s = s * a2 + Splat(2.0f / 15.0f);
  s = s * a2 + Splat(-1.0f / 3.0f);
  s = a + a * a2 * s;
  const FloatVec magnitude = a < Splat(0.25f) ? s : large;
  const FloatVec y = (FloatVec)((IntVec)magnitude | (xi & sign_mask));
  return x == x ? y : x;
}

template <FloatVec (*Op)(FloatVec)>
SKILLGRID_INLINE void ApplyVec(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    FloatVec v;
    std::memcpy(&v, x + i, sizeof v);
    v = Op(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  if (i < n) {  // the tail through one zero-padded vector
    FloatVec v = {};
    std::memcpy(&v, x + i, sizeof(float) * static_cast<size_t>(n - i));
    v = Op(v);
    std::memcpy(y + i, &v, sizeof(float) * static_cast<size_t>(n - i));
  }
}

SKILLGRID_MATH_CLONES void SigmoidLoop(const float* x, float* y, int64_t n) { ApplyVec<SigmoidVec>(x, y, n); }
SKILLGRID_MATH_CLONES void TanhLoop(const float* x, float* y, int64_t n) { ApplyVec<TanhVec>(x, y, n); }

SKILLGRID_MATH_CLONES void TanhBackwardLoop(const float* y, const float* g, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * (1.0f - y[i] * y[i]);
}

}  // namespace

void FastSigmoid(const float* x, float* y, int64_t n) { SigmoidLoop(x, y, n); }

void TanhBackward(const float* y, const float* g, float* dx, int64_t n) { TanhBackwardLoop(y, g, dx, n); }

void FastTanh(const float* x, float* y, int64_t n) { TanhLoop(x, y, n); }

void FastSigmoid(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0 / (1.0 + std::exp(-x[i]));
}

void FastTanh(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

}  // namespace skillgrid::agents
