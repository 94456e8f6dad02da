#include "agents/trunk_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>

#include "skills/bf16.h"

namespace skillgrid::agents {
namespace {

using skills::ChannelsLastBf16;
// Short names for the conversions in the channel loops.
constexpr auto FromBf16 = skills::Bf16BitsToFloat;
constexpr auto ToBf16 = skills::FloatToBf16Bits;

// Target clones let the channel loops use AVX-512 where the CPU has it (x86-64 GCC only).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SKILLGRID_TRUNK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SKILLGRID_TRUNK_CLONES
#endif

// Rows per reduction chunk: partial sums are formed per fixed chunk and added in chunk order, so
// results do not depend on the thread count.
constexpr int64_t kRowsPerChunk = 16;

const uint16_t* Bf16Data(const at::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }
uint16_t* Bf16Data(at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

at::Tensor EmptyChannelsLastBf16(at::IntArrayRef sizes, const at::Tensor& like) {
  return at::empty(sizes, like.options().dtype(at::kBFloat16).memory_format(at::MemoryFormat::ChannelsLast));
}

void CheckCpuImage(const char* op, const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.device().is_cpu(), op, ": x must be a CPU (N, C, H, W) tensor, got ", x.sizes(),
              " on ", x.device());
}

// Per-channel sums over rows, formed per fixed chunk of rows and added in chunk order (so the
// result does not depend on the thread count): out gets sums * channels values. make_worker()
// runs once per parallel task and returns worker(row, acc), which adds row's terms into acc
// (sums * channels floats) and may keep scratch state of its own.
template <typename MakeWorker>
void ChunkedChannelSums(int64_t rows, int64_t channels, int sums, std::vector<double>* out,
                        const MakeWorker& make_worker) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<float> partial(static_cast<size_t>(chunks * sums * channels), 0.0f);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    auto worker = make_worker();
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      float* acc = partial.data() + chunk * sums * channels;
      for (int64_t n = chunk * kRowsPerChunk; n < std::min(rows, (chunk + 1) * kRowsPerChunk); ++n) worker(n, acc);
    }
  });
  out->assign(static_cast<size_t>(sums * channels), 0.0);
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const float* p = partial.data() + chunk * sums * channels;
    for (int64_t i = 0; i < sums * channels; ++i) (*out)[static_cast<size_t>(i)] += p[i];
  }
}

// t = x * scale[c] + shift[c] over one row's cells (P, C): FiLM's values of the row, or 1 and 0.
struct RowFilm {
  const float* scale;  // (C)
  const float* shift;  // (C)
};

// The inner loops run over channels with restrict pointers and selects instead of branches, so
// they vectorise.
SKILLGRID_TRUNK_CLONES void AddRowSum(const uint16_t* __restrict x, int64_t cells, int64_t c, RowFilm film,
                                      float* __restrict acc) {
  const float* __restrict s = film.scale;
  const float* __restrict h = film.shift;
  for (int64_t p = 0; p < cells; ++p) {
    const uint16_t* __restrict xp = x + p * c;
    for (int64_t k = 0; k < c; ++k) acc[k] += FromBf16(xp[k]) * s[k] + h[k];
  }
}

SKILLGRID_TRUNK_CLONES void AddRowSquares(const uint16_t* __restrict x, int64_t cells, int64_t c, RowFilm film,
                                          const float* __restrict mean, float* __restrict acc) {
  const float* __restrict s = film.scale;
  const float* __restrict h = film.shift;
  for (int64_t p = 0; p < cells; ++p) {
    const uint16_t* __restrict xp = x + p * c;
    for (int64_t k = 0; k < c; ++k) {
      const float d = FromBf16(xp[k]) * s[k] + h[k] - mean[k];
      acc[k] += d * d;
    }
  }
}

// out = relu(t * a[c] + b[c]) (+ residual); `ra`/`rb` are the row's fused x * ra + rb.
SKILLGRID_TRUNK_CLONES void RowForward(const uint16_t* __restrict x, int64_t cells, int64_t c,
                                       const float* __restrict ra, const float* __restrict rb,
                                       const uint16_t* __restrict residual, uint16_t* __restrict out) {
  for (int64_t p = 0; p < cells; ++p) {
    const uint16_t* __restrict xp = x + p * c;
    uint16_t* __restrict op = out + p * c;
    if (residual != nullptr) {
      const uint16_t* __restrict rp = residual + p * c;
      for (int64_t k = 0; k < c; ++k) {
        const float pre = FromBf16(xp[k]) * ra[k] + rb[k];
        op[k] = ToBf16(((pre > 0.0f || pre != pre) ? pre : 0.0f) + FromBf16(rp[k]));  // NaN stays NaN
      }
    } else {
      for (int64_t k = 0; k < c; ++k) {
        const float pre = FromBf16(xp[k]) * ra[k] + rb[k];
        op[k] = ToBf16((pre > 0.0f || pre != pre) ? pre : 0.0f);
      }
    }
  }
}

// Sums of dpre and dpre * xhat, dpre = d where the pre-activation x * ra + rb is positive and
// xhat = x * xa + xb (the normalised FiLM output).
SKILLGRID_TRUNK_CLONES void RowBackwardSums(const uint16_t* __restrict x, const uint16_t* __restrict d, int64_t cells,
                                            int64_t c, const float* __restrict ra, const float* __restrict rb,
                                            const float* __restrict xa, const float* __restrict xb,
                                            float* __restrict sum_d, float* __restrict sum_dx) {
  for (int64_t p = 0; p < cells; ++p) {
    const uint16_t* __restrict xp = x + p * c;
    const uint16_t* __restrict dp = d + p * c;
    for (int64_t k = 0; k < c; ++k) {
      const float xv = FromBf16(xp[k]);
      const float dpre = xv * ra[k] + rb[k] > 0.0f ? FromBf16(dp[k]) : 0.0f;
      sum_d[k] += dpre;
      sum_dx[k] += dpre * (xv * xa[k] + xb[k]);
    }
  }
}

// dt = a * (dpre - mean_d - xhat * mean_dx); dx = dt * scale; FiLM gradients summed per row.
SKILLGRID_TRUNK_CLONES void RowBackward(const uint16_t* __restrict x, const uint16_t* __restrict d, int64_t cells,
                                        int64_t c, const float* __restrict ra, const float* __restrict rb,
                                        const float* __restrict xa, const float* __restrict xb,
                                        const float* __restrict a, const float* __restrict mean_d,
                                        const float* __restrict mean_dx, const float* __restrict scale,
                                        uint16_t* __restrict dx, float* __restrict d_scale,
                                        float* __restrict d_shift) {
  for (int64_t p = 0; p < cells; ++p) {
    const uint16_t* __restrict xp = x + p * c;
    const uint16_t* __restrict dp = d + p * c;
    uint16_t* __restrict gp = dx + p * c;
    for (int64_t k = 0; k < c; ++k) {
      const float xv = FromBf16(xp[k]);
      const float dpre = xv * ra[k] + rb[k] > 0.0f ? FromBf16(dp[k]) : 0.0f;
      const float dt = a[k] * (dpre - mean_d[k] - (xv * xa[k] + xb[k]) * mean_dx[k]);
      gp[k] = ToBf16(dt * scale[k]);
      d_scale[k] += dt * xv;
      d_shift[k] += dt;
    }
  }
}

// Per-row coefficients of the fused op over C channels: the row's FiLM (or 1, 0); ra, rb with
// pre = x * ra + rb; xa, xb with xhat = x * xa + xb.
struct RowCoefficients {
  std::vector<float> scale, shift, ra, rb, xa, xb;

  explicit RowCoefficients(int64_t c) : scale(c, 1.0f), shift(c, 0.0f), ra(c), rb(c), xa(c), xb(c) {}

  void Set(const float* film_scale, const float* film_shift, const float* a, const float* b, const float* mean,
           const float* invstd) {
    for (size_t k = 0; k < scale.size(); ++k) {
      if (film_scale != nullptr) {
        scale[k] = film_scale[k];
        shift[k] = film_shift[k];
      }
      ra[k] = scale[k] * a[k];
      rb[k] = shift[k] * a[k] + b[k];
      xa[k] = scale[k] * invstd[k];
      xb[k] = (shift[k] - mean[k]) * invstd[k];
    }
  }
};

// relu(bn(x * scale + shift)) + residual with a hand-written backward (see BatchNormReluBf16).
struct BatchNormReluFn : public torch::autograd::Function<BatchNormReluFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& scale_in,
                            const at::Tensor& shift_in, const at::Tensor& residual_in, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean, at::Tensor running_var, bool training,
                            double momentum, double eps) {
    const at::Tensor x = ChannelsLastBf16(x_in);
    const int64_t n = x.size(0), c = x.size(1), cells = x.size(2) * x.size(3);
    const bool film = scale_in.numel() > 0;
    const at::Tensor scale = film ? scale_in.to(at::kFloat).contiguous() : at::Tensor();
    const at::Tensor shift = film ? shift_in.to(at::kFloat).contiguous() : at::Tensor();
    const at::Tensor residual = residual_in.numel() > 0 ? ChannelsLastBf16(residual_in) : at::Tensor();
    TORCH_CHECK(!film || (scale.sizes() == at::IntArrayRef{n, c} && shift.sizes() == at::IntArrayRef{n, c}),
                "BatchNormReluBf16: FiLM scale and shift must be (", n, ", ", c, "), got ", scale_in.sizes(), " and ",
                shift_in.sizes());
    TORCH_CHECK(!residual.defined() || residual.sizes() == x.sizes(), "BatchNormReluBf16: residual ",
                residual_in.sizes(), " does not match x ", x.sizes());
    const uint16_t* xd = Bf16Data(x);
    const float* film_scale = film ? scale.data_ptr<float>() : nullptr;
    const float* film_shift = film ? shift.data_ptr<float>() : nullptr;
    const std::vector<float> ones(static_cast<size_t>(c), 1.0f), zeros(static_cast<size_t>(c), 0.0f);
    auto row_film = [&](int64_t row) {
      return film ? RowFilm{film_scale + row * c, film_shift + row * c} : RowFilm{ones.data(), zeros.data()};
    };
    std::vector<float> mean(static_cast<size_t>(c)), invstd(static_cast<size_t>(c));
    if (training) {
      const double count = static_cast<double>(n * cells);
      TORCH_CHECK(n * cells > 1, "BatchNormReluBf16: training needs more than one value per channel, got x ",
                  x.sizes());
      std::vector<double> sums;
      ChunkedChannelSums(n, c, 1, &sums, [&] {
        return [&](int64_t row, float* acc) { AddRowSum(xd + row * cells * c, cells, c, row_film(row), acc); };
      });
      for (int64_t k = 0; k < c; ++k) mean[static_cast<size_t>(k)] = static_cast<float>(sums[static_cast<size_t>(k)] / count);
      ChunkedChannelSums(n, c, 1, &sums, [&] {
        return [&](int64_t row, float* acc) {
          AddRowSquares(xd + row * cells * c, cells, c, row_film(row), mean.data(), acc);
        };
      });
      at::NoGradGuard no_grad;
      auto rm = running_mean.accessor<float, 1>();
      auto rv = running_var.accessor<float, 1>();
      for (int64_t k = 0; k < c; ++k) {
        const double var = sums[static_cast<size_t>(k)] / count;
        invstd[static_cast<size_t>(k)] = static_cast<float>(1.0 / std::sqrt(var + eps));
        rm[k] = static_cast<float>((1.0 - momentum) * rm[k] + momentum * mean[static_cast<size_t>(k)]);
        rv[k] = static_cast<float>((1.0 - momentum) * rv[k] + momentum * var * count / (count - 1.0));
      }
    } else {
      const auto rm = running_mean.accessor<float, 1>();
      const auto rv = running_var.accessor<float, 1>();
      for (int64_t k = 0; k < c; ++k) {
        mean[static_cast<size_t>(k)] = rm[k];
        invstd[static_cast<size_t>(k)] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rv[k]) + eps));
      }
    }
    // pre = t * a + b with a = weight * invstd, b = bias - mean * a.
    at::Tensor a = at::empty({c}, weight.options().dtype(at::kFloat)), b = at::empty({c}, a.options());
    {
      const auto w = weight.accessor<float, 1>();
      const auto bi = bias.accessor<float, 1>();
      for (int64_t k = 0; k < c; ++k) {
        a.data_ptr<float>()[k] = w[k] * invstd[static_cast<size_t>(k)];
        b.data_ptr<float>()[k] = bi[k] - mean[static_cast<size_t>(k)] * a.data_ptr<float>()[k];
      }
    }
    at::Tensor out = EmptyChannelsLastBf16(x.sizes(), x);
    uint16_t* od = Bf16Data(out);
    const uint16_t* rd = residual.defined() ? Bf16Data(const_cast<at::Tensor&>(residual)) : nullptr;
    at::parallel_for(0, n, kRowsPerChunk, [&](int64_t r0, int64_t r1) {
      RowCoefficients co(c);
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t off = row * cells * c;
        co.Set(film ? film_scale + row * c : nullptr, film ? film_shift + row * c : nullptr, a.data_ptr<float>(),
               b.data_ptr<float>(), mean.data(), invstd.data());
        RowForward(xd + off, cells, c, co.ra.data(), co.rb.data(), rd != nullptr ? rd + off : nullptr, od + off);
      }
    });
    ctx->save_for_backward({x, scale, shift, a, b, at::tensor(mean), at::tensor(invstd)});
    ctx->saved_data["training"] = training;
    ctx->saved_data["residual"] = residual.defined();
    ctx->saved_data["input_bf16"] = x_in.scalar_type() == at::kBFloat16;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &scale = saved[1], &shift = saved[2], &a = saved[3], &b = saved[4];
    const at::Tensor &mean = saved[5], &invstd = saved[6];
    const bool training = ctx->saved_data["training"].toBool();
    const bool film = scale.defined();
    const int64_t n = x.size(0), c = x.size(1), cells = x.size(2) * x.size(3);
    const at::Tensor d = ChannelsLastBf16(grads[0]);
    const uint16_t* xd = Bf16Data(const_cast<at::Tensor&>(x));
    const uint16_t* dd = Bf16Data(const_cast<at::Tensor&>(d));
    const float* film_scale = film ? scale.data_ptr<float>() : nullptr;
    const float* film_shift = film ? shift.data_ptr<float>() : nullptr;
    const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
    const float *pmean = mean.data_ptr<float>(), *pinvstd = invstd.data_ptr<float>();
    auto set_row = [&](RowCoefficients& co, int64_t row) {
      co.Set(film ? film_scale + row * c : nullptr, film ? film_shift + row * c : nullptr, pa, pb, pmean, pinvstd);
    };
    std::vector<double> sums;  // sum of dpre, then sum of dpre * xhat
    ChunkedChannelSums(n, c, 2, &sums, [&] {
      return [&, co = RowCoefficients(c)](int64_t row, float* acc) mutable {
        set_row(co, row);
        RowBackwardSums(xd + row * cells * c, dd + row * cells * c, cells, c, co.ra.data(), co.rb.data(),
                        co.xa.data(), co.xb.data(), acc, acc + c);
      };
    });
    at::Tensor d_weight = at::empty({c}, a.options()), d_bias = at::empty({c}, a.options());
    std::vector<float> mean_d(static_cast<size_t>(c), 0.0f), mean_dx(static_cast<size_t>(c), 0.0f);
    const double count = static_cast<double>(n * cells);
    for (int64_t k = 0; k < c; ++k) {
      d_bias.data_ptr<float>()[k] = static_cast<float>(sums[static_cast<size_t>(k)]);
      d_weight.data_ptr<float>()[k] = static_cast<float>(sums[static_cast<size_t>(c + k)]);
      if (training) {
        mean_d[static_cast<size_t>(k)] = static_cast<float>(sums[static_cast<size_t>(k)] / count);
        mean_dx[static_cast<size_t>(k)] = static_cast<float>(sums[static_cast<size_t>(c + k)] / count);
      }
    }
    at::Tensor dx = EmptyChannelsLastBf16(x.sizes(), x);
    at::Tensor d_scale = film ? at::zeros({n, c}, a.options()) : at::Tensor();
    at::Tensor d_shift = film ? at::zeros({n, c}, a.options()) : at::Tensor();
    uint16_t* gd = Bf16Data(dx);
    at::parallel_for(0, n, kRowsPerChunk, [&](int64_t r0, int64_t r1) {
      RowCoefficients co(c);
      std::vector<float> scratch_scale(static_cast<size_t>(c)), scratch_shift(static_cast<size_t>(c));
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t off = row * cells * c;
        set_row(co, row);
        float* ds = film ? d_scale.data_ptr<float>() + row * c : scratch_scale.data();
        float* dh = film ? d_shift.data_ptr<float>() + row * c : scratch_shift.data();
        RowBackward(xd + off, dd + off, cells, c, co.ra.data(), co.rb.data(), co.xa.data(), co.xb.data(), pa,
                    mean_d.data(), mean_dx.data(), co.scale.data(), gd + off, ds, dh);
      }
    });
    if (!ctx->saved_data["input_bf16"].toBool()) dx = dx.to(at::kFloat);
    const at::Tensor d_residual = ctx->saved_data["residual"].toBool() ? grads[0] : at::Tensor();
    return {dx,       d_scale,      d_shift,      d_residual,  d_weight,    d_bias,
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

SKILLGRID_TRUNK_CLONES void BowRow(const int64_t* idx, int64_t cells, int64_t c, const float* table, uint16_t* out) {
  for (int64_t p = 0; p < cells; ++p) {
    const float* r0 = table + idx[3 * p] * c;
    const float* r1 = table + idx[3 * p + 1] * c;
    const float* r2 = table + idx[3 * p + 2] * c;
    uint16_t* o = out + p * c;
    for (int64_t k = 0; k < c; ++k) o[k] = ToBf16(r0[k] + r1[k] + r2[k]);
  }
}

SKILLGRID_TRUNK_CLONES void BowRowBackward(const int64_t* idx, int64_t cells, int64_t c, const uint16_t* d,
                                           float* grad_table) {
  for (int64_t p = 0; p < cells; ++p) {
    const uint16_t* dp = d + p * c;
    for (int j = 0; j < 3; ++j) {
      float* g = grad_table + idx[3 * p + j] * c;
      for (int64_t k = 0; k < c; ++k) g[k] += FromBf16(dp[k]);
    }
  }
}

struct BowEmbeddingFn : public torch::autograd::Function<BowEmbeddingFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& indices_in,
                            const at::Tensor& table_in) {
    const at::Tensor indices = indices_in.contiguous();
    const at::Tensor table = table_in.contiguous();
    const int64_t n = indices.size(0), h = indices.size(1), w = indices.size(2), c = table.size(1);
    if (indices.numel() > 0) {
      const int64_t lo = indices.min().item<int64_t>(), hi = indices.max().item<int64_t>();
      TORCH_CHECK(lo >= 0 && hi < table.size(0), "BowEmbeddingBf16: index ", (lo < 0 ? lo : hi),
                  " is out of range for a table of ", table.size(0), " rows");
    }
    at::Tensor out = EmptyChannelsLastBf16({n, c, h, w}, table);
    const int64_t cells = h * w;
    uint16_t* od = Bf16Data(out);
    at::parallel_for(0, n, kRowsPerChunk, [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        BowRow(indices.data_ptr<int64_t>() + row * cells * 3, cells, c, table.data_ptr<float>(), od + row * cells * c);
      }
    });
    ctx->save_for_backward({indices});
    ctx->saved_data["rows"] = table.size(0);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor indices = ctx->get_saved_variables()[0];
    const int64_t rows = ctx->saved_data["rows"].toInt();
    const at::Tensor d = ChannelsLastBf16(grads[0]);
    const int64_t n = d.size(0), c = d.size(1), cells = d.size(2) * d.size(3);
    // One partial table per fixed block of rows (no write conflicts), added in block order.
    constexpr int64_t kBlocks = 8;
    const int64_t per_block = (n + kBlocks - 1) / kBlocks;
    at::Tensor partial = at::zeros({kBlocks, rows, c}, d.options().dtype(at::kFloat).memory_format(at::MemoryFormat::Contiguous));
    const uint16_t* dd = Bf16Data(const_cast<at::Tensor&>(d));
    at::parallel_for(0, kBlocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk) {
        float* g = partial.data_ptr<float>() + blk * rows * c;
        for (int64_t row = blk * per_block; row < std::min(n, (blk + 1) * per_block); ++row) {
          BowRowBackward(indices.data_ptr<int64_t>() + row * cells * 3, cells, c, dd + row * cells * c, g);
        }
      }
    });
    return {at::Tensor(), partial.sum(0)};
  }
};

SKILLGRID_TRUNK_CLONES void RowMax(const uint16_t* x, int64_t cells, int64_t c, float* best, int32_t* where) {
  for (int64_t k = 0; k < c; ++k) {
    best[k] = FromBf16(x[k]);
    where[k] = 0;
  }
  for (int64_t p = 1; p < cells; ++p) {
    const uint16_t* xp = x + p * c;
    for (int64_t k = 0; k < c; ++k) {
      const float v = FromBf16(xp[k]);
      // NaN wins and stays (as ATen's max-pool).
      const bool take = (v > best[k] || v != v) && best[k] == best[k];
      best[k] = take ? v : best[k];
      where[k] = take ? static_cast<int32_t>(p) : where[k];
    }
  }
}

struct GlobalMaxReluFn : public torch::autograd::Function<GlobalMaxReluFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in) {
    const at::Tensor x = ChannelsLastBf16(x_in);
    const int64_t n = x.size(0), c = x.size(1), cells = x.size(2) * x.size(3);
    TORCH_CHECK(cells >= 1, "GlobalMaxReluBf16: empty map ", x.sizes());
    at::Tensor out = at::empty({n, c}, x.options().dtype(at::kFloat).memory_format(at::MemoryFormat::Contiguous));
    at::Tensor where = at::empty({n, c}, out.options().dtype(at::kInt));
    const uint16_t* xd = Bf16Data(const_cast<at::Tensor&>(x));
    at::parallel_for(0, n, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        float* o = out.data_ptr<float>() + row * c;
        RowMax(xd + row * cells * c, cells, c, o, where.data_ptr<int32_t>() + row * c);
        for (int64_t k = 0; k < c; ++k) o[k] = o[k] > 0.0f ? o[k] : (o[k] != o[k] ? o[k] : 0.0f);
      }
    });
    ctx->save_for_backward({out, where});
    ctx->saved_data["sizes"] = c10::IValue(x.sizes().vec());
    ctx->saved_data["input_bf16"] = x_in.scalar_type() == at::kBFloat16;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &out = saved[0], &where = saved[1];
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    const at::Tensor d = grads[0].to(at::kFloat).contiguous();
    const int64_t n = sizes[0], c = sizes[1], cells = sizes[2] * sizes[3];
    // (at::zeros drops a memory format given in the options: empty + zero_ keeps it.)
    at::Tensor dx = at::empty(sizes, d.options().dtype(at::kBFloat16).memory_format(at::MemoryFormat::ChannelsLast)).zero_();
    uint16_t* gd = Bf16Data(dx);
    for (int64_t row = 0; row < n; ++row) {
      for (int64_t k = 0; k < c; ++k) {
        const int64_t i = row * c + k;
        if (out.data_ptr<float>()[i] > 0.0f) {
          gd[(row * cells + where.data_ptr<int32_t>()[i]) * c + k] = ToBf16(d.data_ptr<float>()[i]);
        }
      }
    }
    if (!ctx->saved_data["input_bf16"].toBool()) dx = dx.to(at::kFloat);
    return {dx};
  }
};

}  // namespace

at::Tensor BowEmbeddingBf16(const at::Tensor& indices, const at::Tensor& table) {
  TORCH_CHECK(indices.dim() == 4 && indices.size(3) == 3 && indices.scalar_type() == at::kLong,
              "BowEmbeddingBf16: indices must be int64 (N, H, W, 3), got ", indices.scalar_type(), " ",
              indices.sizes());
  TORCH_CHECK(table.dim() == 2 && table.scalar_type() == at::kFloat && table.device().is_cpu(),
              "BowEmbeddingBf16: table must be a CPU fp32 (V, C) tensor, got ", table.scalar_type(), " ",
              table.sizes());
  return BowEmbeddingFn::apply(indices, table);
}

at::Tensor BatchNormReluBf16(const at::Tensor& x, torch::nn::BatchNorm2dImpl& bn, const at::Tensor& film_scale,
                             const at::Tensor& film_shift, const at::Tensor& residual) {
  CheckCpuImage("BatchNormReluBf16", x);
  TORCH_CHECK(film_scale.defined() == film_shift.defined(), "BatchNormReluBf16: FiLM needs both scale and shift");
  TORCH_CHECK(bn.options.affine() && bn.options.track_running_stats() && bn.weight.scalar_type() == at::kFloat,
              "BatchNormReluBf16: needs an affine fp32 BatchNorm2d with running statistics");
  TORCH_CHECK(bn.weight.size(0) == x.size(1), "BatchNormReluBf16: the norm has ", bn.weight.size(0),
              " channels but x is ", x.sizes());
  double momentum = bn.options.momentum().value_or(0.0);
  if (bn.is_training()) {
    at::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
    if (!bn.options.momentum().has_value()) momentum = 1.0 / bn.num_batches_tracked.item<double>();
  }
  // (autograd's apply needs defined tensors: an absent one travels as an empty tensor.)
  const at::Tensor none = at::empty({0}, x.options().dtype(at::kFloat));
  return BatchNormReluFn::apply(x, film_scale.defined() ? film_scale : none, film_shift.defined() ? film_shift : none,
                                residual.defined() ? residual : none, bn.weight, bn.bias, bn.running_mean,
                                bn.running_var, bn.is_training(), momentum, bn.options.eps());
}

at::Tensor GlobalMaxReluBf16(const at::Tensor& x) {
  CheckCpuImage("GlobalMaxReluBf16", x);
  return GlobalMaxReluFn::apply(x);
}

}  // namespace skillgrid::agents
