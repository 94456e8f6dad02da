#include "agents/pooling.h"

#include <cmath>
#include <limits>

#include <torch/autograd.h>

namespace skillgrid::agents {

namespace {

struct MaxPoolReluFn : public torch::autograd::Function<MaxPoolReluFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, int64_t kernel,
                            int64_t stride) {
    const at::Tensor x = x_in.contiguous();
    const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
    const int64_t ho = (h - kernel) / stride + 1, wo = (w - kernel) / stride + 1;
    at::Tensor out = at::empty({x.size(0), x.size(1), ho, wo}, x.options());
    // Index within the plane of the value each output took, or -1 where relu passes no gradient.
    at::Tensor source = at::empty({x.size(0), x.size(1), ho, wo}, x.options().dtype(at::kInt));
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "MaxPoolRelu", [&] {
      const scalar_t* xp = x.data_ptr<scalar_t>();
      scalar_t* op = out.data_ptr<scalar_t>();
      int32_t* sp = source.data_ptr<int32_t>();
      for (int64_t p = 0; p < planes; ++p) {
        const scalar_t* plane = xp + p * h * w;
        for (int64_t oy = 0; oy < ho; ++oy) {
          for (int64_t ox = 0; ox < wo; ++ox) {
            scalar_t best = -std::numeric_limits<scalar_t>::infinity();
            int64_t best_at = oy * stride * w + ox * stride;
            for (int64_t ky = 0; ky < kernel; ++ky) {
              const int64_t row = (oy * stride + ky) * w + ox * stride;
              for (int64_t kx = 0; kx < kernel; ++kx) {
                const scalar_t v = plane[row + kx];
                if (v > best || std::isnan(v)) {  // torch's rule: first maximum, NaN propagates
                  best = v;
                  best_at = row + kx;
                }
              }
            }
            const int64_t o = (p * ho + oy) * wo + ox;
            const bool passes = best > scalar_t(0);
            op[o] = passes || std::isnan(best) ? best : scalar_t(0);
            sp[o] = passes ? static_cast<int32_t>(best_at) : -1;
          }
        }
      }
    });
    ctx->save_for_backward({source});
    ctx->saved_data["shape"] = x.sizes().vec();
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor source = ctx->get_saved_variables()[0];
    const auto shape = ctx->saved_data["shape"].toIntVector();
    const at::Tensor d_out = grads[0].contiguous();
    at::Tensor d_x = at::zeros(shape, d_out.options());
    const int64_t plane_size = shape[2] * shape[3], outputs_per_plane = source.size(2) * source.size(3);
    const int64_t planes = shape[0] * shape[1];
    AT_DISPATCH_FLOATING_TYPES(d_out.scalar_type(), "MaxPoolReluBackward", [&] {
      const scalar_t* dp = d_out.data_ptr<scalar_t>();
      const int32_t* sp = source.data_ptr<int32_t>();
      scalar_t* dx = d_x.data_ptr<scalar_t>();
      for (int64_t p = 0; p < planes; ++p) {
        for (int64_t o = 0; o < outputs_per_plane; ++o) {
          const int32_t at = sp[p * outputs_per_plane + o];
          if (at >= 0) dx[p * plane_size + at] += dp[p * outputs_per_plane + o];
        }
      }
    });
    return {d_x, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor MaxPoolRelu(const at::Tensor& x, int64_t kernel, int64_t stride) {
  TORCH_CHECK(x.dim() == 4 && kernel >= 1 && stride >= 1 && x.size(2) >= kernel && x.size(3) >= kernel,
              "MaxPoolRelu: input ", x.sizes(), " with kernel ", kernel, " and stride ", stride);
  if (x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble)) {
    return MaxPoolReluFn::apply(x, kernel, stride);
  }
  return at::relu(at::max_pool2d(x, {kernel, kernel}, {stride, stride}));
}

}  // namespace skillgrid::agents
