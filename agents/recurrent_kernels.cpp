#include "agents/recurrent_kernels.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <utility>
#include <vector>

#include <torch/autograd.h>

#include "agents/fast_math.h"
#include "skills/blas_runtime.h"

namespace skillgrid::agents {

namespace {

// Recurrent steps are many tiny ops; on CPU the per-op cost dominates, so the gate math of a
// step is one loop forward and one loop backward.
bool FusableOnCpu(std::initializer_list<at::Tensor> tensors) {
  for (const auto& t : tensors) {
    if (!t.device().is_cpu() || (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble)) return false;
  }
  return true;
}


template <typename T>
void GruRow(const T* gi, const T* gh, const T* h, T valid, int64_t hid, T* acts, T* out) {
  for (int64_t k = 0; k < 2 * hid; ++k) acts[k] = gi[k] + gh[k];
  FastSigmoid(acts, acts, 2 * hid);  // r, z
  for (int64_t k = 0; k < hid; ++k) acts[2 * hid + k] = gi[2 * hid + k] + acts[k] * gh[2 * hid + k];
  FastTanh(acts + 2 * hid, acts + 2 * hid, hid);  // n
  for (int64_t k = 0; k < hid; ++k) {
    const T z = acts[hid + k], nn = acts[2 * hid + k];
    const T h_old = h[k];
    const T h_new = nn + z * (h_old - nn);
    out[k] = h_old + valid * (h_new - h_old);
  }
}

// Activates one LSTM step. acts (n, 4*hid), contiguous, holds the pre-activations i, f, g, o on
// entry and their activations on return; c is the cell entering the step (row stride cs); out
// (n, 2*hid, unit column stride) receives concat(h', c'); tanh_c (n, hid), contiguous, receives
// tanh(c') for the backward. The transcendentals run as fast_math.h's vector loops (a scalar
// exp/tanh per element cost more than the matmuls; ATen's tanh kernel ~6x the vector loop's time).
template <typename T>
void LstmActivate(at::Tensor& acts, const T* c, int64_t cs, at::Tensor out, at::Tensor& tanh_c) {
  const int64_t n = acts.size(0), hid = acts.size(1) / 4;
  T* a = acts.data_ptr<T>();
  T* o = out.data_ptr<T>();
  T* tc = tanh_c.data_ptr<T>();
  const int64_t os = out.stride(0);
  for (int64_t r = 0; r < n; ++r) {
    T* ar = a + r * 4 * hid;
    FastSigmoid(ar, ar, 2 * hid);                  // i, f
    FastTanh(ar + 2 * hid, ar + 2 * hid, hid);     // g
    FastSigmoid(ar + 3 * hid, ar + 3 * hid, hid);  // o
    T* orow = o + r * os;
    for (int64_t k = 0; k < hid; ++k) orow[hid + k] = ar[hid + k] * c[r * cs + k] + ar[k] * ar[2 * hid + k];
    T* tcr = tc + r * hid;
    FastTanh(orow + hid, tcr, hid);
    for (int64_t k = 0; k < hid; ++k) orow[k] = ar[3 * hid + k] * tcr[k];
  }
}

// tanh as one op with a vectorised forward; the backward reuses the output.
struct TanhFn : public torch::autograd::Function<TanhFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    at::Tensor y = at::empty_like(x);
    FastTanh(x.data_ptr<float>(), y.data_ptr<float>(), x.numel());
    ctx->save_for_backward({y});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor()};
    const at::Tensor y = ctx->get_saved_variables()[0];
    const at::Tensor g = grads[0].contiguous();
    at::Tensor dx = at::empty_like(y);
    TanhBackward(y.data_ptr<float>(), g.data_ptr<float>(), dx.data_ptr<float>(), y.numel());
    return {dx};
  }
};

// Backward of LstmActivate: dout holds d(h', c') (row stride ds); writes d(gates) (n, 4*hid)
// and d(c) (row stride dcs).
template <typename T>
void LstmBackwardRows(int64_t n, int64_t hid, const T* acts, const T* c, int64_t cs, const T* tanh_c,
                      const T* dout, int64_t ds, T* dgates, T* dc, int64_t dcs) {
  for (int64_t r = 0; r < n; ++r) {
    const T* ar = acts + r * 4 * hid;
    const T* drow = dout + r * ds;
    T* dgr = dgates + r * 4 * hid;
    for (int64_t k = 0; k < hid; ++k) {
      const T i = ar[k], f = ar[hid + k], gg = ar[2 * hid + k], og = ar[3 * hid + k];
      const T tc = tanh_c[r * hid + k];
      const T dh = drow[k];
      const T dcn = drow[hid + k] + dh * og * (T(1) - tc * tc);
      dgr[k] = dcn * gg * i * (T(1) - i);
      dgr[hid + k] = dcn * c[r * cs + k] * f * (T(1) - f);
      dgr[2 * hid + k] = dcn * i * (T(1) - gg * gg);
      dgr[3 * hid + k] = dh * tc * og * (T(1) - og);
      dc[r * dcs + k] = dcn * f;
    }
  }
}

struct LstmPointwiseFn : public torch::autograd::Function<LstmPointwiseFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gates_in, const at::Tensor& c_in) {
    const at::Tensor gates = gates_in.contiguous(), c = c_in.contiguous();
    const int64_t n = c.size(0), hid = c.size(1);
    at::Tensor acts = gates.clone();                        // i, f, g, o after their nonlinearity
    at::Tensor out = at::empty({n, 2 * hid}, c.options());  // h', c'
    at::Tensor tanh_c = at::empty({n, hid}, c.options());
    AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "LstmPointwise", [&] {
      LstmActivate<scalar_t>(acts, c.data_ptr<scalar_t>(), hid, out, tanh_c);
    });
    ctx->save_for_backward({acts, c, tanh_c});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& acts = saved[0];
    const at::Tensor& c = saved[1];
    const at::Tensor& tanh_c = saved[2];
    const at::Tensor d_out = grads[0].contiguous();
    const int64_t n = c.size(0), hid = c.size(1);
    at::Tensor d_gates = at::empty_like(acts), d_c = at::empty_like(c);
    AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "LstmPointwiseBackward", [&] {
      LstmBackwardRows<scalar_t>(n, hid, acts.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(), hid,
                                 tanh_c.data_ptr<scalar_t>(), d_out.data_ptr<scalar_t>(), 2 * hid,
                                 d_gates.data_ptr<scalar_t>(), d_c.data_ptr<scalar_t>(), hid);
    });
    return {d_gates, d_c};
  }
};

// The hidden map h W^T + bias + ((h A) * mask) B of a fused recurrence, on raw buffers (grad mode
// is off inside custom autograd functions). Absent parts arrive as empty tensors.
struct HiddenMap {
  HiddenMap(const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b,
            const at::Tensor& mask)
      : weight(weight.contiguous()), bias(bias.contiguous()), a(a.contiguous()), b(b.contiguous()),
        mask(mask.contiguous()), low_rank(a.numel() > 0), masked(mask.numel() > 0), has_bias(bias.numel() > 0) {}

  // out = base + h W^T (+ the low-rank term); base undefined: the bias or nothing. `projected`
  // receives (h A) * mask, which the weight gradients need.
  void Apply(const at::Tensor& h, const at::Tensor& base, at::Tensor& out, at::Tensor projected) const {
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "HiddenMapApply",
                               [&] { done = ApplyRaw<scalar_t>(h, base, out, projected); });
    if (done) return;
    if (base.defined()) {
      at::addmm_out(out, base, h, weight.t());
    } else if (has_bias) {
      at::addmm_out(out, bias, h, weight.t());
    } else {
      at::mm_out(out, h, weight.t());
    }
    if (low_rank) {
      at::mm_out(projected, h, a);
      if (masked) projected.mul_(mask);
      out.addmm_(projected, b);
    }
  }

  // d_h (+)= d_out W + ((d_out B^T) * mask) A^T; `d_projected` receives (d_out B^T) * mask.
  void InputGrad(const at::Tensor& d_out, at::Tensor& d_h, bool accumulate, at::Tensor d_projected) const {
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES(d_h.scalar_type(), "HiddenMapInputGrad",
                               [&] { done = InputGradRaw<scalar_t>(d_out, d_h, accumulate, d_projected); });
    if (done) return;
    if (accumulate) {
      d_h.addmm_(d_out, weight);
    } else {
      at::mm_out(d_h, d_out, weight);
    }
    if (low_rank) {
      at::mm_out(d_projected, d_out, b.t());
      if (masked) d_projected.mul_(mask);
      d_h.addmm_(d_projected, a.t());
    }
  }

  // Apply and InputGrad on raw buffers: per step these are a few small products, and as ATen
  // ops (addmm_out, mm_out, mul_ with their nested dispatch) they cost more than the arithmetic.
  // Rows need unit column stride; returns false (nothing written) when BLAS is not reachable.
  static bool UnitColumns(const at::Tensor& t) { return t.dim() == 2 && (t.size(1) <= 1 || t.stride(1) == 1); }

  // Multiplies `count` projected entries (N, K) by the row mask, when there is one.
  template <typename T>
  void MaskInPlace(T* projected, int64_t count) const {
    if (!masked) return;
    const T* mp = mask.data_ptr<T>();
    for (int64_t i = 0; i < count; ++i) projected[i] *= mp[i];
  }

  template <typename T>
  bool ApplyRaw(const at::Tensor& h, const at::Tensor& base, at::Tensor& out, const at::Tensor& projected) const {
    const bool has_base = base.defined();
    if (!UnitColumns(h) || !UnitColumns(out) || (has_base && !UnitColumns(base)) || !out.is_contiguous() ||
        (low_rank && !projected.is_contiguous()) || weight.scalar_type() != out.scalar_type()) {
      return false;
    }
    const int64_t n = h.size(0), hid = h.size(1), g = out.size(1), ldh = h.stride(0);
    const T* hp = h.data_ptr<T>();
    T* o = out.data_ptr<T>();
    T beta = T(0);
    if (has_base) {
      const T* bp = base.data_ptr<T>();
      for (int64_t r = 0; r < n; ++r) std::copy(bp + r * base.stride(0), bp + r * base.stride(0) + g, o + r * g);
      beta = T(1);
    } else if (has_bias) {
      const T* bp = bias.data_ptr<T>();
      for (int64_t r = 0; r < n; ++r) std::copy(bp, bp + g, o + r * g);
      beta = T(1);
    }
    if (!skills::RowMajorGemm(false, true, n, g, hid, hp, ldh, weight.data_ptr<T>(), hid, beta, o, g)) return false;
    if (low_rank) {
      const int64_t k = a.size(1);
      T* pp = projected.data_ptr<T>();
      skills::RowMajorGemm(false, false, n, k, hid, hp, ldh, a.data_ptr<T>(), k, T(0), pp, k);
      MaskInPlace(pp, n * k);
      skills::RowMajorGemm(false, false, n, g, k, pp, k, b.data_ptr<T>(), g, T(1), o, g);
    }
    return true;
  }

  template <typename T>
  bool InputGradRaw(const at::Tensor& d_out, at::Tensor& d_h, bool accumulate, const at::Tensor& d_projected) const {
    if (!d_out.is_contiguous() || !UnitColumns(d_h) || (low_rank && !d_projected.is_contiguous()) ||
        weight.scalar_type() != d_h.scalar_type()) {
      return false;
    }
    const int64_t n = d_out.size(0), g = d_out.size(1), hid = d_h.size(1), ldh = d_h.stride(0);
    const T* dp = d_out.data_ptr<T>();
    T* dh = d_h.data_ptr<T>();
    if (!skills::RowMajorGemm(false, false, n, hid, g, dp, g, weight.data_ptr<T>(), hid, T(accumulate ? 1 : 0), dh,
                              ldh)) {
      return false;
    }
    if (low_rank) {
      const int64_t k = a.size(1);
      T* q = d_projected.data_ptr<T>();
      skills::RowMajorGemm(false, true, n, k, g, dp, g, b.data_ptr<T>(), g, T(0), q, k);
      MaskInPlace(q, n * k);
      skills::RowMajorGemm(false, true, n, hid, k, q, k, a.data_ptr<T>(), k, T(1), dh, ldh);
    }
    return true;
  }

  // Gradients of weight, bias, A and B from all steps at once: rows of d(out), of the inputs h
  // and of the (d_)projected buffers.
  std::vector<at::Tensor> ParameterGrads(const at::Tensor& d_out_rows, const at::Tensor& h_rows,
                                         const at::Tensor& projected, const at::Tensor& d_projected) const {
    std::vector<at::Tensor> g = {d_out_rows.t().mm(h_rows), has_bias ? d_out_rows.sum(0) : at::Tensor(), at::Tensor(),
                                 at::Tensor()};
    if (low_rank) {
      const int64_t rows = h_rows.size(0), k = a.size(1);
      g[2] = h_rows.t().mm(d_projected.view({rows, k}));
      g[3] = projected.view({rows, k}).t().mm(d_out_rows);
    }
    return g;
  }

  at::Tensor weight, bias, a, b, mask;
  bool low_rank, masked, has_bias;
};

// A whole LSTM unroll: the per-step work is a handful of raw matmuls and one gate loop, with no
// autograd graph per step; the backward runs BPTT by hand and forms the weight gradients of all
// steps with one matmul each.
struct LstmSequenceFn : public torch::autograd::Function<LstmSequenceFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gates_in,
                            const at::Tensor& state_in, const at::Tensor& resets_in, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b,
                            const at::Tensor& mask) {
    const int64_t n = gates_in.size(0), steps = gates_in.size(1), hid = state_in.size(1) / 2, g4 = 4 * hid;
    const HiddenMap map(weight, bias, a, b, mask);
    const at::Tensor gx = (map.has_bias ? gates_in + bias : gates_in).contiguous();
    const at::Tensor state0 = state_in.contiguous();
    const at::Tensor resets = resets_in.to(gx.scalar_type()).contiguous();
    const auto opts = gx.options();
    at::Tensor out = at::empty({n, steps, 2 * hid}, opts);
    at::Tensor acts = at::empty({steps, n, g4}, opts);
    at::Tensor entering = at::empty({steps, n, 2 * hid}, opts);  // the (reset) state entering each step
    at::Tensor projected = at::empty({map.low_rank ? steps : 0, n, a.size(-1)}, opts);  // (h A) * mask
    at::Tensor tanh_cs = at::empty({steps, n, hid}, opts);
    AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "LstmSequence", [&] {
      scalar_t* o = out.data_ptr<scalar_t>();
      const scalar_t* rs = resets.data_ptr<scalar_t>();
      for (int64_t k = 0; k < steps; ++k) {
        at::Tensor sk = entering[k];
        if (k == 0) {
          sk.copy_(state0);
        } else {
          scalar_t* s = sk.data_ptr<scalar_t>();
          for (int64_t r = 0; r < n; ++r) {
            const scalar_t keep = rs[r * steps + k];
            const scalar_t* prev = o + (r * steps + k - 1) * 2 * hid;
            for (int64_t j = 0; j < 2 * hid; ++j) s[r * 2 * hid + j] = prev[j] * keep;
          }
        }
        at::Tensor g = acts[k];
        map.Apply(sk.narrow(1, 0, hid), gx.select(1, k), g, map.low_rank ? projected[k] : at::Tensor());
        at::Tensor tanh_c = tanh_cs[k];
        LstmActivate<scalar_t>(g, sk.data_ptr<scalar_t>() + hid, 2 * hid, out.select(1, k), tanh_c);
      }
    });
    ctx->save_for_backward({acts, entering, tanh_cs, projected, resets, weight, a, b, mask});
    ctx->saved_data["bias"] = bias;  // only its emptiness matters
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &acts = saved[0], &entering = saved[1], &tanh_cs = saved[2], &projected = saved[3],
                     &resets = saved[4], &weight = saved[5], &a = saved[6], &b = saved[7], &mask = saved[8];
    const int64_t steps = acts.size(0), n = acts.size(1), g4 = acts.size(2), hid = g4 / 4;
    const HiddenMap map(weight, ctx->saved_data["bias"].toTensor(), a, b, mask);
    const at::Tensor d_out =
        grads[0].defined() ? grads[0].contiguous() : at::zeros({n, steps, 2 * hid}, acts.options());
    const auto opts = acts.options();
    at::Tensor d_gates_t = at::empty({steps, n, g4}, opts);  // time-major d(gates)
    at::Tensor d_projected = at::empty_like(projected);
    at::Tensor d_total = at::empty({n, 2 * hid}, opts);  // d(state after step k), all uses
    at::Tensor d_h = at::empty({n, hid}, opts), d_c = at::empty({n, hid}, opts);
    AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "LstmSequenceBackward", [&] {
      const scalar_t* dout = d_out.data_ptr<scalar_t>();
      const scalar_t* rs = resets.data_ptr<scalar_t>();
      scalar_t* dt = d_total.data_ptr<scalar_t>();
      const scalar_t* dh = d_h.data_ptr<scalar_t>();
      const scalar_t* dc = d_c.data_ptr<scalar_t>();
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t j = 0; j < 2 * hid; ++j) dt[r * 2 * hid + j] = dout[(r * steps + steps - 1) * 2 * hid + j];
      }
      for (int64_t k = steps - 1; k >= 0; --k) {
        at::Tensor dgk = d_gates_t[k];
        LstmBackwardRows<scalar_t>(n, hid, acts[k].data_ptr<scalar_t>(), entering[k].data_ptr<scalar_t>() + hid,
                                   2 * hid, tanh_cs[k].data_ptr<scalar_t>(), dt, 2 * hid,
                                   dgk.data_ptr<scalar_t>(), d_c.data_ptr<scalar_t>(), hid);
        map.InputGrad(dgk, d_h, /*accumulate=*/false, map.low_rank ? d_projected[k] : at::Tensor());
        if (k == 0) break;
        for (int64_t r = 0; r < n; ++r) {
          const scalar_t keep = rs[r * steps + k];
          const scalar_t* prev = dout + (r * steps + k - 1) * 2 * hid;
          for (int64_t j = 0; j < hid; ++j) {
            dt[r * 2 * hid + j] = prev[j] + keep * dh[r * hid + j];
            dt[r * 2 * hid + hid + j] = prev[hid + j] + keep * dc[r * hid + j];
          }
        }
      }
    });
    const at::Tensor d_state = at::cat({d_h, d_c}, 1);
    const auto g = map.ParameterGrads(d_gates_t.view({steps * n, g4}),
                                      entering.view({steps * n, 2 * hid}).narrow(1, 0, hid), projected, d_projected);
    return {d_gates_t.transpose(0, 1).contiguous(), d_state, at::Tensor(), g[0], g[1], g[2], g[3], at::Tensor()};
  }
};

// Activates one GRU step: gi (n, 3*hid, any row stride) and gh (n, 3*hid) pre-activations in
// order r, z, n; h (n, hid) the state entering; valid (n) in {0, 1}. acts (n, 3*hid) receives r,
// z, n; out (n, hid) the new state (h itself where valid is 0). Transcendentals are vectorised.
template <typename T>
void GruActivate(const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& h, const at::Tensor& valid,
                 at::Tensor& acts, at::Tensor& out) {
  const int64_t n = h.size(0), hid = h.size(1), gs = gi.stride(0);
  const T* i = gi.data_ptr<T>();
  const T* g = gh.data_ptr<T>();
  const T* hp = h.data_ptr<T>();
  const T* v = valid.data_ptr<T>();
  T* a = acts.data_ptr<T>();
  T* o = out.data_ptr<T>();
  for (int64_t row = 0; row < n; ++row) {
    GruActivateRow(i + row * gs, g + row * 3 * hid, hp + row * hid, v[row], hid, a + row * 3 * hid, o + row * hid);
  }
}

// Backward of GruActivate: dout (n, hid) -> d(gi) (row stride dgs), d(gh) (n, 3*hid) and the
// part of d(h) that flows through the gate math (n, hid).
template <typename T>
void GruBackwardRows(int64_t n, int64_t hid, const T* a, const T* g, const T* hp, const T* v, const T* dout, T* dgi,
                     int64_t dgs, T* dgh, T* dh) {
  for (int64_t row = 0; row < n; ++row) {
    const T* ar = a + row * 3 * hid;
    const T* gr = g + row * 3 * hid;
    T* dgir = dgi + row * dgs;
    T* dghr = dgh + row * 3 * hid;
    for (int64_t k = 0; k < hid; ++k) {
      const T r = ar[k], z = ar[hid + k], nn = ar[2 * hid + k];
      const T h_old = hp[row * hid + k];
      const T d = dout[row * hid + k];
      const T d_hnew = v[row] * d;
      const T d_an = d_hnew * (T(1) - z) * (T(1) - nn * nn);
      const T d_ar = d_an * gr[2 * hid + k] * r * (T(1) - r);
      const T d_az = d_hnew * (h_old - nn) * z * (T(1) - z);
      dgir[k] = d_ar;
      dgir[hid + k] = d_az;
      dgir[2 * hid + k] = d_an;
      dghr[k] = d_ar;
      dghr[hid + k] = d_az;
      dghr[2 * hid + k] = d_an * r;
      dh[row * hid + k] = (T(1) - v[row]) * d + d_hnew * z;
    }
  }
}

struct GruPointwiseFn : public torch::autograd::Function<GruPointwiseFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gi_in, const at::Tensor& gh_in,
                            const at::Tensor& h_in, const at::Tensor& valid_in) {
    const at::Tensor gi = gi_in.contiguous(), gh = gh_in.contiguous(), h = h_in.contiguous(),
                     valid = valid_in.contiguous();
    at::Tensor acts = at::empty({h.size(0), 3 * h.size(1)}, h.options());  // r, z, n
    at::Tensor out = at::empty_like(h);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "GruPointwise", [&] { GruActivate<scalar_t>(gi, gh, h, valid, acts, out); });
    ctx->save_for_backward({acts, gh, h, valid});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &acts = saved[0], &gh = saved[1], &h = saved[2], &valid = saved[3];
    const at::Tensor d_out = grads[0].contiguous();
    const int64_t n = h.size(0), hid = h.size(1);
    at::Tensor d_gi = at::empty_like(acts), d_gh = at::empty_like(acts), d_h = at::empty_like(h);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "GruPointwiseBackward", [&] {
      GruBackwardRows<scalar_t>(n, hid, acts.data_ptr<scalar_t>(), gh.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(),
                                valid.data_ptr<scalar_t>(), d_out.data_ptr<scalar_t>(), d_gi.data_ptr<scalar_t>(),
                                3 * hid, d_gh.data_ptr<scalar_t>(), d_h.data_ptr<scalar_t>());
    });
    return {d_gi, d_gh, d_h, at::Tensor()};
  }
};

// A whole GRU over padded sequences, returning the last state, as one op: per step a few raw
// matmuls and the gate loops; the backward runs BPTT by hand (as LstmSequenceFn). Inputs as
// LstmSequenceFn, with valid (L, N) instead of resets; an absent bias/A/B/mask is an empty tensor.
struct GruSequenceFn : public torch::autograd::Function<GruSequenceFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gi_in, const at::Tensor& h0,
                            const at::Tensor& valid_in, const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
    const at::Tensor gi = gi_in.contiguous();
    const at::Tensor valid = valid_in.to(gi.scalar_type()).contiguous();
    const int64_t n = gi.size(0), steps = gi.size(1), hid = h0.size(1), g3 = 3 * hid;
    const HiddenMap map(weight, bias, a, b, mask);
    const auto opts = gi.options();
    at::Tensor states = at::empty({steps + 1, n, hid}, opts);  // states[t]: the state entering step t
    at::Tensor acts = at::empty({steps, n, g3}, opts);
    at::Tensor hidden_gates = at::empty({steps, n, g3}, opts);  // h W^T + b + low-rank term
    at::Tensor projected = at::empty({map.low_rank ? steps : 0, n, a.size(-1)}, opts);
    states[0].copy_(h0);
    AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "GruSequence", [&] {
      for (int64_t t = 0; t < steps; ++t) {
        const at::Tensor h = states[t];
        at::Tensor gh = hidden_gates[t];
        map.Apply(h, at::Tensor(), gh, map.low_rank ? projected[t] : at::Tensor());
        at::Tensor act = acts[t], next = states[t + 1];
        GruActivate<scalar_t>(gi.select(1, t), gh, h, valid[t], act, next);
      }
    });
    ctx->save_for_backward({states, acts, hidden_gates, projected, valid, weight, a, b, mask});
    ctx->saved_data["bias"] = bias;  // only its emptiness matters
    return states[steps].clone();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &states = saved[0], &acts = saved[1], &hidden_gates = saved[2], &projected = saved[3],
                     &valid = saved[4], &weight = saved[5], &a = saved[6], &b = saved[7], &mask = saved[8];
    const int64_t steps = acts.size(0), n = acts.size(1), g3 = acts.size(2), hid = g3 / 3;
    const HiddenMap map(weight, ctx->saved_data["bias"].toTensor(), a, b, mask);
    const auto opts = acts.options();
    at::Tensor d_h = grads[0].defined() ? grads[0].contiguous().clone() : at::zeros({n, hid}, opts);
    at::Tensor d_prev = at::empty({n, hid}, opts);
    at::Tensor d_gi = at::empty({n, steps, g3}, opts);
    at::Tensor d_gh_all = at::empty({steps, n, g3}, opts);
    at::Tensor d_projected = at::empty_like(projected);
    AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "GruSequenceBackward", [&] {
      for (int64_t t = steps - 1; t >= 0; --t) {
        at::Tensor dgh = d_gh_all[t];
        GruBackwardRows<scalar_t>(n, hid, acts[t].data_ptr<scalar_t>(), hidden_gates[t].data_ptr<scalar_t>(),
                                  states[t].data_ptr<scalar_t>(), valid[t].data_ptr<scalar_t>(),
                                  d_h.data_ptr<scalar_t>(), d_gi.data_ptr<scalar_t>() + t * g3, steps * g3,
                                  dgh.data_ptr<scalar_t>(), d_prev.data_ptr<scalar_t>());
        map.InputGrad(dgh, d_prev, /*accumulate=*/true, map.low_rank ? d_projected[t] : at::Tensor());
        std::swap(d_h, d_prev);
      }
    });
    const auto g = map.ParameterGrads(d_gh_all.view({steps * n, g3}),
                                      states.narrow(0, 0, steps).reshape({steps * n, hid}), projected, d_projected);
    return {d_gi, d_h, at::Tensor(), g[0], g[1], g[2], g[3], at::Tensor()};
  }
};

}  // namespace

void GruActivateRow(const float* gi, const float* gh, const float* h, float valid, int64_t hid, float* acts,
                    float* out) {
  GruRow(gi, gh, h, valid, hid, acts, out);
}

void GruActivateRow(const double* gi, const double* gh, const double* h, double valid, int64_t hid, double* acts,
                    double* out) {
  GruRow(gi, gh, h, valid, hid, acts, out);
}

at::Tensor Tanh(const at::Tensor& x) {
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || !x.is_contiguous()) return at::tanh(x);
  return TanhFn::apply(x);
}

at::Tensor LstmPointwise(const at::Tensor& gates, const at::Tensor& c) {
  if (FusableOnCpu({gates, c}) && gates.scalar_type() == c.scalar_type()) return LstmPointwiseFn::apply(gates, c);
  auto g = gates.chunk(4, 1);
  const at::Tensor c_new = g[1].sigmoid() * c + g[0].sigmoid() * g[2].tanh();
  const at::Tensor h_new = g[3].sigmoid() * c_new.tanh();
  return at::cat({h_new, c_new}, 1);
}

at::Tensor GruPointwise(const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& h, const at::Tensor& valid) {
  const at::Tensor v = valid.to(h.scalar_type());
  if (FusableOnCpu({gi, gh, h}) && gi.scalar_type() == h.scalar_type() && gh.scalar_type() == h.scalar_type()) {
    return GruPointwiseFn::apply(gi, gh, h, v.detach());
  }
  auto i = gi.chunk(3, 1);
  auto hc = gh.chunk(3, 1);
  const at::Tensor r = (i[0] + hc[0]).sigmoid();
  const at::Tensor z = (i[1] + hc[1]).sigmoid();
  const at::Tensor n = (i[2] + r * hc[2]).tanh();
  const at::Tensor h_new = n + z * (h - n);
  return h + v.unsqueeze(1) * (h_new - h);
}

at::Tensor RecurrentMap::Apply(const at::Tensor& h) const {
  at::Tensor out = at::linear(h, weight, bias);
  if (!a.defined()) return out;
  at::Tensor p = h.mm(a);
  if (mask.defined()) p = p * mask;
  return out + p.mm(b);
}

bool SequenceIsFused(const at::Tensor& gates, const at::Tensor& state, const RecurrentMap& map) {
  if (!FusableOnCpu({gates, state, map.weight})) return false;
  for (const at::Tensor* t : {&map.bias, &map.a, &map.b, &map.mask}) {
    if (t->defined() && (!t->device().is_cpu() || t->scalar_type() != gates.scalar_type())) return false;
  }
  return gates.scalar_type() == state.scalar_type() && gates.scalar_type() == map.weight.scalar_type();
}

at::Tensor LstmSteps(const at::Tensor& gates, const at::Tensor& state, const at::Tensor& resets,
                     const HiddenGates& hidden) {
  const int64_t hid = state.size(1) / 2;
  std::vector<at::Tensor> outs;
  // unbind, not select per step: select's backward writes a full-size zero tensor per step.
  const std::vector<at::Tensor> step_gates = gates.unbind(1);
  const std::vector<at::Tensor> keep = resets.to(state.scalar_type()).unsqueeze(2).unbind(1);
  at::Tensor s = state;
  for (size_t k = 0; k < step_gates.size(); ++k) {
    if (k > 0) s = s * keep[k];
    s = LstmPointwise(step_gates[k] + hidden(s.narrow(1, 0, hid)), s.narrow(1, hid, hid));
    outs.push_back(s);
  }
  return at::stack(outs, 1);
}

at::Tensor GruSteps(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& valid, const HiddenGates& hidden) {
  at::Tensor h = h0;
  const std::vector<at::Tensor> steps = gi.unbind(1);
  for (size_t t = 0; t < steps.size(); ++t) {
    // Rows whose sequence already ended keep their last valid state.
    h = GruPointwise(steps[t], hidden(h), h, valid[static_cast<int64_t>(t)]);
  }
  return h;
}

at::Tensor GruSequence(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& valid, const RecurrentMap& map) {
  const int64_t hid = map.weight.size(1);
  TORCH_CHECK(gi.dim() == 3 && gi.size(2) == 3 * hid && map.weight.size(0) == 3 * hid, "GruSequence: input gates ",
              gi.sizes(), " and weight ", map.weight.sizes(), " do not match (N, L, 3*hidden) and (3*hidden, hidden)");
  TORCH_CHECK(h0.dim() == 2 && h0.size(0) == gi.size(0) && h0.size(1) == hid, "GruSequence: state ", h0.sizes(),
              " for input gates ", gi.sizes());
  TORCH_CHECK(valid.dim() == 2 && valid.size(0) == gi.size(1) && valid.size(1) == gi.size(0), "GruSequence: valid ",
              valid.sizes(), " for input gates ", gi.sizes(), " (expected (L, N))");
  TORCH_CHECK(map.a.defined() == map.b.defined(), "GruSequence: low-rank factors A and B come together");
  if (SequenceIsFused(gi, h0, map)) {
    const at::Tensor none = at::empty({0}, gi.options());
    auto or_none = [&](const at::Tensor& t) { return t.defined() ? t : none; };
    return GruSequenceFn::apply(gi, h0, valid.detach(), map.weight, or_none(map.bias), or_none(map.a),
                                or_none(map.b), map.mask.defined() ? map.mask.detach() : none);
  }
  return GruSteps(gi, h0, valid, [&](const at::Tensor& h) { return map.Apply(h); });
}

at::Tensor LstmSequence(const at::Tensor& gates, const at::Tensor& state, const at::Tensor& resets,
                        const RecurrentMap& map) {
  const int64_t hid = map.weight.size(1);
  TORCH_CHECK(gates.dim() == 3 && gates.size(2) == 4 * hid && map.weight.size(0) == 4 * hid, "LstmSequence: gates ",
              gates.sizes(), " and weight ", map.weight.sizes(), " do not match (N, R, 4*hidden) and (4*hidden, hidden)");
  TORCH_CHECK(state.dim() == 2 && state.size(0) == gates.size(0) && state.size(1) == 2 * hid, "LstmSequence: state ",
              state.sizes(), " for gates ", gates.sizes());
  TORCH_CHECK(resets.sizes() == gates.sizes().slice(0, 2), "LstmSequence: resets ", resets.sizes(), " for gates ",
              gates.sizes());
  TORCH_CHECK(map.a.defined() == map.b.defined(), "LstmSequence: low-rank factors A and B come together");
  if (SequenceIsFused(gates, state, map)) {
    // Custom autograd functions take no undefined tensors: an absent part travels as an empty one.
    const at::Tensor none = at::empty({0}, gates.options());
    auto or_none = [&](const at::Tensor& t) { return t.defined() ? t : none; };
    return LstmSequenceFn::apply(gates, state, resets.detach(), map.weight, or_none(map.bias), or_none(map.a),
                                 or_none(map.b), map.mask.defined() ? map.mask.detach() : none);
  }
  return LstmSteps(gates, state, resets, [&](const at::Tensor& h) { return map.Apply(h); });
}

}  // namespace skillgrid::agents
