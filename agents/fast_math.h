// Vectorised sigmoid and tanh over float buffers for the recurrent cells and heads. ATen's
// kernels (SLEEF, 1-ulp) cost ~40 cycles per 8 floats here, more than the small products
// around them; these run on 16-float vectors (AVX-512; 8 on AVX2 and baseline x86-64) with a
// Cody-Waite exp and a 7th-degree polynomial.
#pragma once

#include <cstdint>

namespace skillgrid::agents {

/// y[i] = 1 / (1 + exp(-x[i])) for i < n; x and y may be the same buffer. Relative error below
/// 1e-6 (absolute below 1e-7); +inf gives 1, -inf a value below 1e-38, NaN stays NaN.
void FastSigmoid(const float* x, float* y, int64_t n);
/// y[i] = tanh(x[i]) for i < n; x and y may be the same buffer. Absolute error below 2e-7 and
/// relative below 1e-6; +-inf give +-1, NaN stays NaN.
void FastTanh(const float* x, float* y, int64_t n);
/// dx[i] = g[i] * (1 - y[i]^2): tanh's backward from its output y.
void TanhBackward(const float* y, const float* g, float* dx, int64_t n);
/// Double precision: the C library's exp and tanh (double runs only in tests).
void FastSigmoid(const double* x, double* y, int64_t n);
/// Double precision tanh (std::tanh).
void FastTanh(const double* x, double* y, int64_t n);

}  // namespace skillgrid::agents
