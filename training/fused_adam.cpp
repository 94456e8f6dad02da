#include "training/fused_adam.h"

#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include <ATen/Functions.h>
#include <c10/util/Exception.h>
#include <torch/utils.h>

namespace skillgrid::training {

namespace {

bool IsPlainCpuFloat(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() && !t.is_sparse();
}

// The key of a parameter in the optimiser's state map: LibTorch 1.13 prints the TensorImpl's
// address into a string (as c10::guts::to_string does); later versions may key on the pointer.
[[maybe_unused]] std::string StateKey(const at::Tensor& p, const std::string* /*key type*/) {
  std::ostringstream out;
  out << p.unsafeGetTensorImpl();
  return out.str();
}
[[maybe_unused]] void* StateKey(const at::Tensor& p, void* const* /*key type*/) { return p.unsafeGetTensorImpl(); }

// The optimiser's state of `p`, created as torch::optim::Adam creates it on a first step (same
// key, zero moments), so that adam.step() and its serialisation see one state.
torch::optim::AdamParamState& StateOf(torch::optim::Adam& adam, const at::Tensor& p) {
  auto& states = adam.state();
  using Key = typename std::decay_t<decltype(states)>::key_type;
  const Key key = StateKey(p, static_cast<const Key*>(nullptr));
  auto it = states.find(key);
  if (it == states.end()) {
    auto state = std::make_unique<torch::optim::AdamParamState>();
    state->step(0);
    state->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
    state->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
    it = states.emplace(key, std::move(state)).first;
  }
  return static_cast<torch::optim::AdamParamState&>(*it->second);
}

}  // namespace

bool CanFuseAdam(torch::optim::Adam& adam) {
  for (auto& group : adam.param_groups()) {
    if (static_cast<const torch::optim::AdamOptions&>(group.options()).amsgrad()) return false;
    for (const auto& p : group.params()) {
      if (!IsPlainCpuFloat(p)) return false;
    }
  }
  return true;
}

double GradientNorm(const std::vector<at::Tensor>& params) {
  double sum = 0.0;
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (!IsPlainCpuFloat(g)) {
      const double n = g.norm().item<double>();
      sum += n * n;
      continue;
    }
    const float* x = g.data_ptr<float>();
    const int64_t count = g.numel();
    double part = 0.0;
    for (int64_t i = 0; i < count; ++i) part += static_cast<double>(x[i]) * x[i];
    sum += part;
  }
  return std::sqrt(sum);
}

void FusedAdamStep(torch::optim::Adam& adam, double grad_scale) {
  torch::NoGradGuard no_grad;
  const auto scale = static_cast<float>(grad_scale);
  for (auto& group : adam.param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    TORCH_CHECK(!options.amsgrad(), "FusedAdamStep: AMSGrad is not supported; use adam.step()");
    const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
    for (auto& p : group.params()) {
      const at::Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      TORCH_CHECK(IsPlainCpuFloat(p) && IsPlainCpuFloat(grad), "FusedAdamStep: parameter of shape ", p.sizes(),
                  " is not a contiguous CPU float32 tensor with such a gradient (", p.options(), ")");
      auto& state = StateOf(adam, p);
      state.step(state.step() + 1);
      const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(state.step()));
      const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(state.step()));
      // The same float operations, in the same order, as torch's Adam after an in-place clip.
      const auto b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
      const auto a1 = static_cast<float>(1.0 - beta1), a2 = static_cast<float>(1.0 - beta2);
      const auto wd = static_cast<float>(options.weight_decay());
      const auto root_bc2 = static_cast<float>(std::sqrt(bias_correction2));
      const auto eps = static_cast<float>(options.eps());
      const auto neg_step = static_cast<float>(-options.lr() / bias_correction1);
      float* w = p.data_ptr<float>();
      const float* g_in = grad.data_ptr<float>();
      float* m = state.exp_avg().data_ptr<float>();
      float* v = state.exp_avg_sq().data_ptr<float>();
      const int64_t count = p.numel();
      for (int64_t i = 0; i < count; ++i) {
        float g = scale == 1.0f ? g_in[i] : g_in[i] * scale;
        if (wd != 0.0f) g = g + w[i] * wd;
        m[i] = m[i] * b1 + a1 * g;
        v[i] = v[i] * b2 + a2 * g * g;
        const float denom = std::sqrt(v[i]) / root_bc2 + eps;
        w[i] = w[i] + neg_step * (m[i] / denom);
      }
    }
  }
}

bool CanMultiTensorAdam(torch::optim::Adam& adam) {
  for (auto& group : adam.param_groups()) {
    if (static_cast<const torch::optim::AdamOptions&>(group.options()).amsgrad()) return false;
    if (group.params().empty()) continue;
    const at::Tensor& first = group.params().front();
    for (const auto& p : group.params()) {
      if (p.is_sparse() || p.device() != first.device() || p.scalar_type() != first.scalar_type()) return false;
    }
  }
  return true;
}

double MultiTensorGradientNorm(const std::vector<at::Tensor>& params) {
  torch::NoGradGuard no_grad;
  // _foreach_norm wants one device and dtype per call.
  std::map<std::pair<std::string, at::ScalarType>, std::vector<at::Tensor>> lists;
  for (const auto& p : params) {
    if (p.grad().defined()) lists[{p.grad().device().str(), p.grad().scalar_type()}].push_back(p.grad());
  }
  double sum = 0.0;
  for (const auto& [key, grads] : lists) {
    const at::Tensor norm = at::stack(at::_foreach_norm(grads)).to(at::kDouble).norm();
    const double n = norm.item<double>();
    sum += n * n;
  }
  return std::sqrt(sum);
}

void MultiTensorAdamStep(torch::optim::Adam& adam, double grad_scale) {
  torch::NoGradGuard no_grad;
  for (auto& group : adam.param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    TORCH_CHECK(!options.amsgrad(), "MultiTensorAdamStep: AMSGrad is not supported; use adam.step()");
    const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
    // Parameters that took the same number of steps share their bias corrections (all of
    // them, unless some had no gradient at an earlier step).
    std::map<int64_t, std::vector<at::Tensor>> params, grads, exp_avgs, exp_avg_sqs;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(p.grad().device() == p.device() && p.grad().scalar_type() == p.scalar_type(),
                  "MultiTensorAdamStep: the gradient of a parameter of shape ", p.sizes(), " is ",
                  p.grad().options(), ", the parameter ", p.options());
      auto& state = StateOf(adam, p);
      state.step(state.step() + 1);
      params[state.step()].push_back(p);
      grads[state.step()].push_back(p.grad());
      exp_avgs[state.step()].push_back(state.exp_avg());
      exp_avg_sqs[state.step()].push_back(state.exp_avg_sq());
    }
    for (auto& [step, w] : params) {
      std::vector<at::Tensor>& g = grads[step];
      if (grad_scale != 1.0) at::_foreach_mul_(g, grad_scale);  // as clip_grad_norm_ does, in place
      if (options.weight_decay() != 0.0) g = at::_foreach_add(g, w, options.weight_decay());
      const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
      const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
      at::_foreach_mul_(exp_avgs[step], beta1);
      at::_foreach_add_(exp_avgs[step], g, 1.0 - beta1);
      at::_foreach_mul_(exp_avg_sqs[step], beta2);
      at::_foreach_addcmul_(exp_avg_sqs[step], g, g, 1.0 - beta2);
      std::vector<at::Tensor> denom = at::_foreach_sqrt(exp_avg_sqs[step]);
      at::_foreach_div_(denom, std::sqrt(bias_correction2));
      at::_foreach_add_(denom, options.eps());
      at::_foreach_addcdiv_(w, exp_avgs[step], denom, at::Scalar(-options.lr() / bias_correction1));
    }
  }
}

}  // namespace skillgrid::training
