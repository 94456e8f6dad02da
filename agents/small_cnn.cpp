#include "agents/small_cnn.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include <c10/util/Exception.h>
#include <torch/autograd.h>

#include "skills/blas_runtime.h"

namespace skillgrid::agents {
namespace {

// Channels are processed as 32-byte vectors of T (GCC's vector extension); each hot loop is built
// for AVX-512, AVX2 and baseline x86-64 and the best is picked at load time (the project
// otherwise targets baseline x86-64). 32 bytes, not 64: the AVX2 clone lowered 64-byte vectors
// through the stack (spills and lane inserts in every FMA chain), ~3x slower there.
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(32)));
  static constexpr int64_t kLanes = 32 / static_cast<int64_t>(sizeof(T));
};
template <typename T>
inline typename Vec<T>::type LoadVec(const T* p) {
  typename Vec<T>::type v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void StoreVec(T* p, const typename Vec<T>::type& v) {
  std::memcpy(p, &v, sizeof v);
}
// Builds a function for AVX-512, AVX2 and baseline x86-64, dispatched at load time (GCC on
// x86-64; elsewhere one build for the target).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SKILLGRID_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SKILLGRID_VECTOR_CLONES
#endif

// Geometry of one stride-1 convolution over NHWC rows.
struct ConvShape {
  int64_t h, w, c;  // input
  int64_t k;        // square kernel
  int64_t out;      // output channels
  int64_t ho() const { return h - k + 1; }
  int64_t wo() const { return w - k + 1; }
  int64_t positions() const { return ho() * wo(); }
  int64_t patch() const { return k * k * c; }
};

// Patch matrix of a convolution over x (n, h, w, c): row (b, i, j), columns (di, dj, channel).
template <typename T>
void Im2Col(const T* x, int64_t n, const ConvShape& s, T* p) {
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < s.ho(); ++i) {
      for (int64_t j = 0; j < s.wo(); ++j) {
        for (int64_t di = 0; di < s.k; ++di) {
          std::memcpy(p, x + ((b * s.h + i + di) * s.w + j) * s.c, sizeof(T) * static_cast<size_t>(s.k * s.c));
          p += s.k * s.c;
        }
      }
    }
  }
}

// Adds the patch gradients dp onto the input gradient dx (n, h, w, c), zeroed by the caller.
template <typename T>
SKILLGRID_VECTOR_CLONES void Col2ImAdd(const T* dp, int64_t n, const ConvShape& s, T* dx) {
  const int64_t run = s.k * s.c;  // one kernel row of a patch is contiguous in the input
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < s.ho(); ++i) {
      for (int64_t j = 0; j < s.wo(); ++j) {
        for (int64_t di = 0; di < s.k; ++di) {
          T* d = dx + ((b * s.h + i + di) * s.w + j) * s.c;
          for (int64_t q = 0; q < run; ++q) d[q] += dp[q];
          dp += run;
        }
      }
    }
  }
}

// 2x2, stride-2 max-pool over x (n, h, w, c) -> y (n, h/2, w/2, c); NaN propagates, as in ATen.
template <typename T>
SKILLGRID_VECTOR_CLONES void MaxPool2(const T* x, int64_t n, int64_t h, int64_t w, int64_t c, T* y) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < ho; ++i) {
      for (int64_t j = 0; j < wo; ++j) {
        const T* win[4] = {x + ((b * h + 2 * i) * w + 2 * j) * c, x + ((b * h + 2 * i) * w + 2 * j + 1) * c,
                           x + ((b * h + 2 * i + 1) * w + 2 * j) * c, x + ((b * h + 2 * i + 1) * w + 2 * j + 1) * c};
        T* out = y + ((b * ho + i) * wo + j) * c;
        for (int64_t ch = 0; ch < c; ++ch) {  // a plain loop over channels: vectorised with blends
          T best = win[0][ch];
          for (int q = 1; q < 4; ++q) {
            const T v = win[q][ch];
            best = ((v > best) | (v != v)) ? v : best;  // NaN wins, as in ATen
          }
          out[ch] = best;
        }
      }
    }
  }
}

// ReLU's backward in place: d = 0 where the ReLU output a is not positive (ATen's rule).
template <typename T>
SKILLGRID_VECTOR_CLONES void ReluBackwardInPlace(T* d, const T* a, int64_t count) {
  for (int64_t i = 0; i < count; ++i) d[i] = a[i] > T(0) ? d[i] : T(0);
}

// out (rows, C) = relu(bias + p wt) for p (rows, K) and wt (K, C): for the first layer's few
// input columns, where a BLAS call runs at a fraction of its speed; accumulates in registers,
// four rows at a time: one row's sum is a chain of dependent FMAs, so their latency, not the
// FMA units, bounded the row-at-a-time loop. Each output sums in the same order either way.
template <typename T>
SKILLGRID_VECTOR_CLONES void SkinnyMatmulBiasRelu(const T* p, int64_t rows, int64_t k, const T* wt, const T* bias,
                                                  int64_t c, T* out) {
  using V = typename Vec<T>::type;
  constexpr int64_t lanes = Vec<T>::kLanes;
  const int64_t full = c - c % lanes;
  int64_t r = 0;
  for (; r + 4 <= rows && full == c; r += 4) {
    const T* p0 = p + r * k;
    const T *p1 = p0 + k, *p2 = p1 + k, *p3 = p2 + k;
    T* o = out + r * c;
    for (int64_t c0 = 0; c0 < c; c0 += lanes) {
      const V b = LoadVec(bias + c0);
      V a0 = b, a1 = b, a2 = b, a3 = b;
      for (int64_t q = 0; q < k; ++q) {
        const V wv = LoadVec(wt + q * c + c0);
        a0 += p0[q] * wv;
        a1 += p1[q] * wv;
        a2 += p2[q] * wv;
        a3 += p3[q] * wv;
      }
      StoreVec(o + c0, a0);
      StoreVec(o + c + c0, a1);
      StoreVec(o + 2 * c + c0, a2);
      StoreVec(o + 3 * c + c0, a3);
    }
    for (int64_t j = 0; j < 4 * c; ++j) o[j] = o[j] > T(0) ? o[j] : T(0);  // ReLU
  }
  for (; r < rows; ++r) {  // the last rows, and channel counts that are not whole vectors
    const T* pr = p + r * k;
    T* o = out + r * c;
    for (int64_t c0 = 0; c0 < full; c0 += lanes) {
      V acc = LoadVec(bias + c0);
      for (int64_t q = 0; q < k; ++q) acc += pr[q] * LoadVec(wt + q * c + c0);
      StoreVec(o + c0, acc);
    }
    for (int64_t j = full; j < c; ++j) {  // channels beyond the last full vector
      T acc = bias[j];
      for (int64_t q = 0; q < k; ++q) acc += pr[q] * wt[q * c + j];
      o[j] = acc;
    }
    for (int64_t j = 0; j < c; ++j) o[j] = o[j] > T(0) ? o[j] : T(0);  // ReLU (a plain loop vectorises)
  }
}

// Adds the weight (K, C) and bias (C) gradients of SkinnyMatmulBiasRelu's map for d (rows, C).
template <typename T>
SKILLGRID_VECTOR_CLONES void SkinnyWeightGradAdd(const T* p, const T* d, int64_t rows, int64_t k, int64_t c, T* gwt,
                                                 T* gb) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* dr = d + r * c;
    const T* pr = p + r * k;
    for (int64_t j = 0; j < c; ++j) gb[j] += dr[j];
    for (int64_t q = 0; q < k; ++q) {
      const T x = pr[q];
      T* g = gwt + q * c;
      for (int64_t j = 0; j < c; ++j) g[j] += x * dr[j];
    }
  }
}

// Backward of ReLU then MaxPool2 in one pass, writing every element of dx (n, h, w, c) once:
// each window's gradient dy goes to its first maximum in row-major order (ATen's choice) when
// that maximum is positive (ReLU's rule). a is the ReLU output, m the pooled maximum. Channels
// run as explicit vectors (the compiler left the four-way select chain scalar).
template <typename T>
SKILLGRID_VECTOR_CLONES void PoolReluBackward(const T* dy, const T* m, const T* a, int64_t n, int64_t h, int64_t w,
                                              int64_t c, T* dx) {
  using V = typename Vec<T>::type;
  constexpr int64_t lanes = Vec<T>::kLanes;
  const int64_t full = c - c % lanes;
  const int64_t ho = h / 2, wo = w / 2;
  if (h % 2 != 0 || w % 2 != 0) std::fill(dx, dx + n * h * w * c, T(0));  // cells outside every window
  using Mask = decltype(V{} == V{});  // the integer lanes a comparison gives (all ones or zero)
  const V zero = {};
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < ho; ++i) {
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t o = ((b * ho + i) * wo + j) * c;
        int64_t at[4];
        for (int q = 0; q < 4; ++q) at[q] = ((b * h + 2 * i + q / 2) * w + 2 * j + q % 2) * c;
        for (int64_t ch = 0; ch < full; ch += lanes) {
          const V mv = LoadVec(m + o + ch);
          // The gradient still to place, as bits: selects written as ?: came out lane by lane.
          Mask open = reinterpret_cast<Mask>(LoadVec(dy + o + ch)) & (mv > zero);
          for (int q = 0; q < 4; ++q) {
            const Mask hit = LoadVec(a + at[q] + ch) == mv;
            StoreVec(dx + at[q] + ch, reinterpret_cast<V>(open & hit));
            open &= ~hit;
          }
        }
        for (int64_t ch = full; ch < c; ++ch) {  // channels beyond the last full vector
          const T mv = m[o + ch];
          T open = mv > T(0) ? dy[o + ch] : T(0);
          for (int q = 0; q < 4; ++q) {
            const bool hit = a[at[q] + ch] == mv;
            dx[at[q] + ch] = hit ? open : T(0);
            open = hit ? T(0) : open;
          }
        }
      }
    }
  }
}

// Per-block kernel index: layers with one kernel share it across blocks.
int64_t KernelOf(const at::Tensor& weights, size_t block) {
  return weights.size(0) == 1 ? 0 : static_cast<int64_t>(block);
}

// out rows of every block = bias + patches W^T, then ReLU. patches (N * positions, patch); w
// (K, C, patch) and b (K, C) contiguous. The products go straight to BLAS: as ATen ops (narrow,
// select, addmm per block) the blocks cost ~5 us each in dispatch, more than a small product.
template <typename T>
void ConvBlocks(const at::Tensor& patches, const at::Tensor& w, const at::Tensor& b,
                const std::vector<int64_t>& rows, int64_t positions, at::Tensor& out) {
  const int64_t c = w.size(1), k = w.size(2);
  const T* p = patches.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  const T* bp = b.data_ptr<T>();
  T* o = out.data_ptr<T>();
  int64_t offset = 0;
  for (size_t u = 0; u < rows.size(); ++u) {
    const int64_t n = rows[u] * positions;
    const int64_t ku = KernelOf(w, u);
    T* ou = o + offset * c;
    for (int64_t r = 0; r < n; ++r) std::copy(bp + ku * c, bp + (ku + 1) * c, ou + r * c);
    if (!skills::RowMajorGemm(false, true, n, c, k, p + offset * k, k, wp + ku * c * k, k, T(1), ou, c)) {
      at::Tensor dst = out.narrow(0, offset, n);
      dst.addmm_(patches.narrow(0, offset, n), w[ku].t());
    }
    offset += n;
  }
  T* end = o + out.numel();
  for (T* q = o; q < end; ++q) *q = *q < T(0) ? T(0) : *q;  // NaN stays NaN, as in ATen's relu
}

// Weight and bias gradients of every block's kernel (accumulated where blocks share one), and the
// patch gradients d(patches) = d W. d, patches and w contiguous.
template <typename T>
void ConvBlocksBackward(const at::Tensor& d, const at::Tensor& patches, const at::Tensor& w,
                        const std::vector<int64_t>& rows, int64_t positions, at::Tensor& grad_w, at::Tensor& grad_b,
                        at::Tensor* grad_patches) {
  grad_w = at::zeros_like(w);
  grad_b = at::zeros({w.size(0), w.size(1)}, w.options());
  const int64_t c = w.size(1), k = w.size(2);
  const T* dp = d.data_ptr<T>();
  const T* p = patches.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  T* gw = grad_w.data_ptr<T>();
  T* gb = grad_b.data_ptr<T>();
  T* gp = grad_patches != nullptr ? grad_patches->data_ptr<T>() : nullptr;
  int64_t offset = 0;
  for (size_t u = 0; u < rows.size(); ++u) {
    const int64_t n = rows[u] * positions;
    const int64_t ku = KernelOf(w, u);
    const T* du = dp + offset * c;
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t j = 0; j < c; ++j) gb[ku * c + j] += du[r * c + j];
    }
    const bool blas = skills::RowMajorGemm(true, false, c, k, n, du, c, p + offset * k, k, T(1), gw + ku * c * k, k) &&
                      (gp == nullptr || skills::RowMajorGemm(false, false, n, k, c, du, c, wp + ku * c * k, k, T(0),
                                                            gp + offset * k, k));
    if (!blas) {  // no Fortran BLAS in this process: the same products through ATen
      const at::Tensor dn = d.narrow(0, offset, n);
      grad_w[ku].addmm_(dn.t(), patches.narrow(0, offset, n));
      if (grad_patches != nullptr) {
        at::Tensor dst = grad_patches->narrow(0, offset, n);
        at::mm_out(dst, dn, w[ku]);
      }
    }
    offset += n;
  }
}

// dst[p * in + c] = src[c * kk + p] over `rows` blocks of in * kk values (a transpose of each
// block); KK > 0 fixes kk at compile time (the 2x2 kernels), so the loop runs unrolled.
template <typename T, int64_t KK>
void TransposeBlocks(const T* src, int64_t rows, int64_t in, int64_t kk_runtime, T* dst) {
  const int64_t kk = KK > 0 ? KK : kk_runtime;
  for (int64_t m = 0; m < rows; ++m) {
    const T* a = src + m * in * kk;
    T* b = dst + m * in * kk;
    for (int64_t c = 0; c < in; ++c) {
      for (int64_t p = 0; p < kk; ++p) b[p * in + c] = a[c * kk + p];
    }
  }
}

// Kernels (K, C, in, k, k) to patch matrices (K, C, k*k*in) with columns in the (di, dj, channel)
// order of NHWC patches, or back (to_patch false). A plain loop: as permute + reshape the copy
// ran through ATen's strided 5-D path at a fraction of memory speed, in every forward.
template <typename T>
at::Tensor PatchOrder(const at::Tensor& src, int64_t in, int64_t k, bool to_patch) {
  const at::Tensor s = src.contiguous();
  const int64_t kk = k * k, rows = s.size(0) * s.size(1);
  at::Tensor d = to_patch ? at::empty({s.size(0), s.size(1), in * kk}, s.options())
                          : at::empty({s.size(0), s.size(1), in, k, k}, s.options());
  // Back to kernels is the same transpose with the roles of in and kk swapped.
  const int64_t inner = to_patch ? in : kk, outer = to_patch ? kk : in;
  if (outer == 4) {
    TransposeBlocks<T, 4>(s.data_ptr<T>(), rows, inner, outer, d.data_ptr<T>());
  } else {
    TransposeBlocks<T, 0>(s.data_ptr<T>(), rows, inner, outer, d.data_ptr<T>());
  }
  return d;
}

struct SmallCnnTrunkFn : public torch::autograd::Function<SmallCnnTrunkFn> {
  // k1..k3: kernels (K, C_out, C_in, k, k); b1..b3: (K, C_out).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& images, const at::Tensor& k1,
                            const at::Tensor& b1, const at::Tensor& k2, const at::Tensor& b2, const at::Tensor& k3,
                            const at::Tensor& b3, std::vector<int64_t> rows, std::vector<int64_t> kernel_sizes) {
    // Patch matrices (K, C_out, k*k*C_in), columns in (di, dj, channel) order.
    at::Tensor w1, w2c, w3c;
    AT_DISPATCH_FLOATING_TYPES(k1.scalar_type(), "SmallCnnTrunkKernels", [&] {
      w1 = PatchOrder<scalar_t>(k1, k1.size(2), kernel_sizes[0], true);
      w2c = PatchOrder<scalar_t>(k2, k2.size(2), kernel_sizes[1], true);
      w3c = PatchOrder<scalar_t>(k3, k3.size(2), kernel_sizes[2], true);
    });
    const at::Tensor x = images.contiguous();
    const int64_t n = x.size(0);
    const ConvShape s1{x.size(1), x.size(2), x.size(3), kernel_sizes[0], w1.size(1)};
    const int64_t hp = s1.ho() / 2, wp = s1.wo() / 2;
    const ConvShape s2{hp, wp, s1.out, kernel_sizes[1], w2c.size(1)};
    const ConvShape s3{s2.ho(), s2.wo(), s2.out, kernel_sizes[2], w3c.size(1)};
    const auto opts = x.options();
    at::Tensor p1 = at::empty({n * s1.positions(), s1.patch()}, opts);
    at::Tensor a1 = at::empty({n * s1.positions(), s1.out}, opts);
    at::Tensor m1 = at::empty({n, hp, wp, s1.out}, opts);
    at::Tensor p2 = at::empty({n * s2.positions(), s2.patch()}, opts);
    at::Tensor a2 = at::empty({n * s2.positions(), s2.out}, opts);
    at::Tensor p3 = at::empty({n * s3.positions(), s3.patch()}, opts);
    at::Tensor a3 = at::empty({n * s3.positions(), s3.out}, opts);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "SmallCnnTrunk", [&] {
      Im2Col<scalar_t>(x.data_ptr<scalar_t>(), n, s1, p1.data_ptr<scalar_t>());
      const at::Tensor w1t = w1.transpose(1, 2).contiguous(), b1c = b1.contiguous();  // (K, patch, C)
      int64_t offset = 0;
      for (size_t u = 0; u < rows.size(); ++u) {
        const int64_t ku = KernelOf(w1, u), count = rows[u] * s1.positions();
        SkinnyMatmulBiasRelu<scalar_t>(p1.data_ptr<scalar_t>() + offset * s1.patch(), count, s1.patch(),
                                       w1t.data_ptr<scalar_t>() + ku * s1.patch() * s1.out,
                                       b1c.data_ptr<scalar_t>() + ku * s1.out, s1.out,
                                       a1.data_ptr<scalar_t>() + offset * s1.out);
        offset += count;
      }
      MaxPool2<scalar_t>(a1.data_ptr<scalar_t>(), n, s1.ho(), s1.wo(), s1.out, m1.data_ptr<scalar_t>());
      Im2Col<scalar_t>(m1.data_ptr<scalar_t>(), n, s2, p2.data_ptr<scalar_t>());
      ConvBlocks<scalar_t>(p2, w2c, b2.contiguous(), rows, s2.positions(), a2);
      Im2Col<scalar_t>(a2.data_ptr<scalar_t>(), n, s3, p3.data_ptr<scalar_t>());
      ConvBlocks<scalar_t>(p3, w3c, b3.contiguous(), rows, s3.positions(), a3);
    });
    ctx->save_for_backward({p1, a1, m1, p2, a2, p3, a3, w1, w2c, w3c});
    ctx->saved_data["rows"] = c10::IValue(rows);
    ctx->saved_data["kernel_sizes"] = c10::IValue(kernel_sizes);
    ctx->saved_data["pool_input"] = c10::IValue(std::vector<int64_t>{s1.ho(), s1.wo()});
    // (N, positions, C3) -> NCHW flattening (N, C3 * positions).
    return a3.view({n, s3.positions(), s3.out}).transpose(1, 2).reshape({n, -1}).clone();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &p1 = saved[0], &a1 = saved[1], &m1 = saved[2], &p2 = saved[3], &a2 = saved[4],
                     &p3 = saved[5], &a3 = saved[6], &w1 = saved[7], &w2 = saved[8], &w3 = saved[9];
    const auto rows = ctx->saved_data["rows"].toIntVector();
    const auto ks = ctx->saved_data["kernel_sizes"].toIntVector();
    const auto pool_in = ctx->saved_data["pool_input"].toIntVector();
    const int64_t n = std::accumulate(rows.begin(), rows.end(), int64_t{0});
    const int64_t c1 = a1.size(1), c2 = a2.size(1), c3 = a3.size(1);
    const int64_t pos1 = a1.size(0) / n, pos2 = a2.size(0) / n, pos3 = a3.size(0) / n;
    const int64_t hp = pool_in[0] / 2, wp = pool_in[1] / 2;
    const ConvShape s2{hp, wp, c1, ks[1], c2};
    const ConvShape s3{s2.ho(), s2.wo(), c2, ks[2], c3};
    std::vector<at::Tensor> g(6);
    // d(a3) in the (N * positions, C3) layout of the forward.
    at::Tensor d3 = grads[0].reshape({n, c3, pos3}).transpose(1, 2).contiguous().view({n * pos3, c3});
    if (d3.data_ptr() == grads[0].data_ptr()) d3 = d3.clone();  // never write into the incoming gradient
    at::Tensor dp3 = at::empty_like(p3), d2 = at::zeros_like(a2), dp2 = at::empty_like(p2);
    at::Tensor dm1 = at::zeros({n * hp * wp * c1}, a1.options()), d1 = at::empty_like(a1);
    at::Tensor gw1t = at::zeros({w1.size(0), w1.size(2), c1}, w1.options());
    g[1] = at::zeros({w1.size(0), c1}, w1.options());
    AT_DISPATCH_FLOATING_TYPES(a1.scalar_type(), "SmallCnnTrunkBackward", [&] {
      ReluBackwardInPlace<scalar_t>(d3.data_ptr<scalar_t>(), a3.data_ptr<scalar_t>(), d3.numel());
      ConvBlocksBackward<scalar_t>(d3, p3, w3, rows, pos3, g[4], g[5], &dp3);
      Col2ImAdd<scalar_t>(dp3.data_ptr<scalar_t>(), n, s3, d2.data_ptr<scalar_t>());
      ReluBackwardInPlace<scalar_t>(d2.data_ptr<scalar_t>(), a2.data_ptr<scalar_t>(), d2.numel());
      ConvBlocksBackward<scalar_t>(d2, p2, w2, rows, pos2, g[2], g[3], &dp2);
      Col2ImAdd<scalar_t>(dp2.data_ptr<scalar_t>(), n, s2, dm1.data_ptr<scalar_t>());
      PoolReluBackward<scalar_t>(dm1.data_ptr<scalar_t>(), m1.data_ptr<scalar_t>(), a1.data_ptr<scalar_t>(), n,
                                 pool_in[0], pool_in[1], c1, d1.data_ptr<scalar_t>());
      int64_t offset = 0;
      const int64_t k1 = p1.size(1);
      for (size_t u = 0; u < rows.size(); ++u) {
        const int64_t ku = KernelOf(w1, u), count = rows[u] * pos1;
        const scalar_t* pu = p1.data_ptr<scalar_t>() + offset * k1;
        const scalar_t* du = d1.data_ptr<scalar_t>() + offset * c1;
        scalar_t* gwu = gw1t.data_ptr<scalar_t>() + ku * k1 * c1;
        // (K, C) += p^T d: one product with a long reduction, where a loop over rows reloaded the
        // K x C accumulators for every row.
        if (skills::RowMajorGemm(true, false, k1, c1, count, pu, k1, du, c1, scalar_t(1), gwu, c1)) {
          scalar_t* gb = g[1].data_ptr<scalar_t>() + ku * c1;
          for (int64_t r = 0; r < count; ++r) {
            for (int64_t j = 0; j < c1; ++j) gb[j] += du[r * c1 + j];
          }
        } else {
          SkinnyWeightGradAdd<scalar_t>(pu, du, count, k1, c1, gwu, g[1].data_ptr<scalar_t>() + ku * c1);
        }
        offset += count;
      }
    });
    AT_DISPATCH_FLOATING_TYPES(a1.scalar_type(), "SmallCnnTrunkKernelGrads", [&] {
      g[0] = PatchOrder<scalar_t>(gw1t.transpose(1, 2), w1.size(2) / (ks[0] * ks[0]), ks[0], false);
      g[2] = PatchOrder<scalar_t>(g[2], w2.size(2) / (ks[1] * ks[1]), ks[1], false);
      g[4] = PatchOrder<scalar_t>(g[4], w3.size(2) / (ks[2] * ks[2]), ks[2], false);
    });
    return {at::Tensor(), g[0], g[1], g[2], g[3], g[4], g[5], at::Tensor(), at::Tensor()};
  }
};

// Checks one layer against the channels it receives; returns its kernel size.
int64_t CheckConv(const char* name, const TrunkConv& conv, int64_t in_channels, size_t blocks) {
  const at::Tensor& k = conv.kernels;
  TORCH_CHECK(k.defined() && k.dim() == 5 && k.size(3) == k.size(4), "SmallCnnTrunk: ", name,
              " kernels must be (K, C_out, C_in, k, k), got ", k.defined() ? k.sizes() : at::IntArrayRef{});
  TORCH_CHECK(k.size(2) == in_channels, "SmallCnnTrunk: ", name, " kernels ", k.sizes(), " take ", k.size(2),
              " channels but receive ", in_channels);
  TORCH_CHECK(k.size(0) == 1 || k.size(0) == static_cast<int64_t>(blocks), "SmallCnnTrunk: ", name, " has ",
              k.size(0), " kernels for ", blocks, " row blocks (needs 1 or one per block)");
  TORCH_CHECK(!conv.biases.defined() || conv.biases.sizes() == k.sizes().slice(0, 2), "SmallCnnTrunk: ", name,
              " biases ", conv.biases.sizes(), " for kernels ", k.sizes());
  return k.size(3);
}

}  // namespace

bool SmallCnnTrunkSupports(const at::Tensor& reference) {
  return reference.device().is_cpu() &&
         (reference.scalar_type() == at::kFloat || reference.scalar_type() == at::kDouble);
}

at::Tensor SmallCnnTrunk(const at::Tensor& images, const TrunkConv& conv1, const TrunkConv& conv2,
                         const TrunkConv& conv3, const std::vector<int64_t>& rows_per_block) {
  TORCH_CHECK(images.dim() == 4, "SmallCnnTrunk: images must be (N, H, W, C), got ", images.sizes());
  TORCH_CHECK(!images.requires_grad(), "SmallCnnTrunk: images take no gradient");
  const int64_t n = images.size(0);
  TORCH_CHECK(std::accumulate(rows_per_block.begin(), rows_per_block.end(), int64_t{0}) == n && n > 0,
              "SmallCnnTrunk: row blocks ", rows_per_block, " do not cover the ", n, " images");
  const size_t blocks = rows_per_block.size();
  const int64_t k1 = CheckConv("conv1", conv1, images.size(3), blocks);
  const int64_t k2 = CheckConv("conv2", conv2, conv1.kernels.size(1), blocks);
  const int64_t k3 = CheckConv("conv3", conv3, conv2.kernels.size(1), blocks);
  const int64_t pooled_h = (images.size(1) - k1 + 1) / 2, pooled_w = (images.size(2) - k1 + 1) / 2;
  TORCH_CHECK(pooled_h - k2 + 1 >= k3 && pooled_w - k2 + 1 >= k3, "SmallCnnTrunk: images ", images.sizes(),
              " are too small for kernels ", k1, ", ", k2, ", ", k3, " and a 2x2 pool");
  const at::Tensor ref = conv1.kernels;
  for (const TrunkConv* c : {&conv1, &conv2, &conv3}) {
    TORCH_CHECK(SmallCnnTrunkSupports(c->kernels) && c->kernels.scalar_type() == ref.scalar_type() &&
                    images.scalar_type() == ref.scalar_type() && images.device().is_cpu(),
                "SmallCnnTrunk: needs CPU float or double tensors of one dtype, got images ", images.scalar_type(),
                " on ", images.device(), " and kernels ", c->kernels.scalar_type(), " on ", c->kernels.device());
  }
  auto bias = [](const TrunkConv& c) {
    return c.biases.defined() ? c.biases : at::zeros({c.kernels.size(0), c.kernels.size(1)}, c.kernels.options());
  };
  return SmallCnnTrunkFn::apply(images, conv1.kernels, bias(conv1), conv2.kernels, bias(conv2), conv3.kernels,
                                bias(conv3), rows_per_block, std::vector<int64_t>{k1, k2, k3});
}

}  // namespace skillgrid::agents
