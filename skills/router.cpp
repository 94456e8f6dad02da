#include "skills/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>
#include <torch/nn/init.h>

namespace skillgrid::skills {

std::string RouterKindName(RouterKind kind) {
  switch (kind) {
    case RouterKind::kPoly: return "poly";
    case RouterKind::kFixed: return "fixed";
    case RouterKind::kMu: return "mu";
    case RouterKind::kAdaMix: return "adamix";
  }
  return "unknown";
}

RouterOptions::RouterOptions(int64_t n_tasks, int64_t n_skills) : n_tasks_(n_tasks), n_skills_(n_skills) {}

RouterOptions RouterOptions::Poly(int64_t n_tasks, int64_t n_skills) { return RouterOptions(n_tasks, n_skills); }

RouterOptions RouterOptions::Mhr(int64_t n_tasks, int64_t n_skills, int64_t n_splits) {
  return RouterOptions(n_tasks, n_skills).n_splits(n_splits);
}

RouterOptions RouterOptions::Shared(int64_t n_tasks) {
  return Fixed(at::ones({n_tasks, 1}));
}

RouterOptions RouterOptions::Private(int64_t n_tasks) {
  return Fixed(at::eye(n_tasks));
}

RouterOptions RouterOptions::Fixed(const at::Tensor& allocation) {
  TORCH_CHECK(allocation.defined() && allocation.dim() == 2,
              "RouterOptions::Fixed: allocation must be a (T x S) matrix, got shape ",
              allocation.defined() ? allocation.sizes() : at::IntArrayRef{});
  return RouterOptions(allocation.size(0), allocation.size(1))
      .kind(RouterKind::kFixed)
      .allocation(allocation.to(at::kFloat));
}

RouterOptions RouterOptions::Mu(int64_t n_tasks, int64_t n_skills) {
  return RouterOptions(n_tasks, n_skills).kind(RouterKind::kMu);
}

RouterOptions RouterOptions::AdaMix(int64_t n_tasks, int64_t n_modules) {
  return RouterOptions(n_tasks, n_modules).kind(RouterKind::kAdaMix);
}

namespace {
thread_local c10::optional<at::Generator> tls_routing_generator;
}  // namespace

ScopedRoutingGenerator::ScopedRoutingGenerator(at::Generator generator) : previous_(tls_routing_generator) {
  tls_routing_generator = std::move(generator);
}

ScopedRoutingGenerator::~ScopedRoutingGenerator() { tls_routing_generator = previous_; }

c10::optional<at::Generator> RoutingGenerator() { return tls_routing_generator; }

namespace {

// Constants of the relaxed-Bernoulli sample for a dtype: the clamps of torch.distributions
// (clamp_probs, _clipped_sigmoid) keep the logs finite and cap |logit| at L = logit(1 - eps),
// near 15.9 in fp32, so samples match PyTorch's RelaxedBernoulli.
struct RelaxedBernoulliLimits {
  double eps, tiny, limit;
};

RelaxedBernoulliLimits LimitsFor(const at::Tensor& logits) {
  const bool is_double = logits.scalar_type() == at::kDouble;
  RelaxedBernoulliLimits l{};
  l.eps = is_double ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
  l.tiny = is_double ? std::numeric_limits<double>::min() : std::numeric_limits<float>::min();
  l.limit = std::log1p(-l.eps) - std::log(l.eps);
  return l;
}

// The relaxed-Bernoulli sample and its normalisation over the last axis as one autograd op (CPU,
// contiguous): a few dozen elements per routed layer, where the composite costs ~14 ATen ops
// forward and ~25 backward.
struct NormalisedRelaxedBernoulliFn : public torch::autograd::Function<NormalisedRelaxedBernoulliFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits_in,
                            const at::Tensor& uniform_in, double temperature) {
    const at::Tensor logits = logits_in.contiguous(), uniform = uniform_in.contiguous();
    const RelaxedBernoulliLimits l = LimitsFor(logits);
    const int64_t s = logits.size(-1), rows = s == 0 ? 0 : logits.numel() / s;
    at::Tensor weights = at::empty_like(logits), probs = at::empty_like(logits), sums = at::empty({rows}, logits.options());
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "NormalisedRelaxedBernoulli", [&] {
      const scalar_t* z = logits.data_ptr<scalar_t>();
      const scalar_t* u = uniform.data_ptr<scalar_t>();
      scalar_t* w = weights.data_ptr<scalar_t>();
      scalar_t* p = probs.data_ptr<scalar_t>();
      scalar_t* sum = sums.data_ptr<scalar_t>();
      const auto eps = static_cast<scalar_t>(l.eps), tiny = static_cast<scalar_t>(l.tiny);
      const auto limit = static_cast<scalar_t>(l.limit), tau = static_cast<scalar_t>(temperature);
      for (int64_t r = 0; r < rows; ++r) {
        scalar_t total = 0;
        for (int64_t k = r * s; k < (r + 1) * s; ++k) {
          const scalar_t uk = std::min(std::max(u[k], eps), static_cast<scalar_t>(1) - eps);
          const scalar_t noise = std::log(uk) - std::log1p(-uk);
          const scalar_t y = (std::min(std::max(z[k], -limit), limit) + noise) / tau;
          p[k] = static_cast<scalar_t>(1) / (static_cast<scalar_t>(1) + std::exp(-y));
          w[k] = std::min(std::max(p[k], tiny), static_cast<scalar_t>(1) - eps);
          total += w[k];
        }
        sum[r] = total + static_cast<scalar_t>(1e-12);
        for (int64_t k = r * s; k < (r + 1) * s; ++k) w[k] /= sum[r];
      }
    });
    ctx->save_for_backward({logits, probs, weights, sums});
    ctx->saved_data["temperature"] = temperature;
    return weights;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &logits = saved[0], &probs = saved[1], &weights = saved[2], &sums = saved[3];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const RelaxedBernoulliLimits l = LimitsFor(logits);
    const at::Tensor grad = grads[0].contiguous();
    const int64_t s = logits.size(-1), rows = sums.numel();
    at::Tensor d_logits = at::empty_like(logits);
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "NormalisedRelaxedBernoulliBackward", [&] {
      const scalar_t *z = logits.data_ptr<scalar_t>(), *p = probs.data_ptr<scalar_t>();
      const scalar_t *w = weights.data_ptr<scalar_t>(), *sum = sums.data_ptr<scalar_t>(), *g = grad.data_ptr<scalar_t>();
      scalar_t* dz = d_logits.data_ptr<scalar_t>();
      const auto eps = static_cast<scalar_t>(l.eps), tiny = static_cast<scalar_t>(l.tiny);
      const auto limit = static_cast<scalar_t>(l.limit), tau = static_cast<scalar_t>(temperature);
      for (int64_t r = 0; r < rows; ++r) {
        // w = c / sum(c): dL/dc_k = (g_k - sum_j g_j w_j) / sum.
        scalar_t dot = 0;
        for (int64_t k = r * s; k < (r + 1) * s; ++k) dot += g[k] * w[k];
        for (int64_t k = r * s; k < (r + 1) * s; ++k) {
          scalar_t d = (g[k] - dot) / sum[r];
          // Clamps pass the gradient inside their closed range, as torch's clamp backward.
          if (!(p[k] >= tiny && p[k] <= static_cast<scalar_t>(1) - eps)) d = 0;
          d = d * ((static_cast<scalar_t>(1) - p[k]) * p[k]) / tau;
          dz[k] = (z[k] >= -limit && z[k] <= limit) ? d : static_cast<scalar_t>(0);
        }
      }
    });
    return {d_logits, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

SkillWeights SkillWeights::To(const at::Device& device) const {
  if (for_a.device() == device && for_b.device() == device) return *this;
  return {for_a.to(device), for_b.to(device)};
}

at::Tensor DrawRoutingUniform(const at::Tensor& logits) {
  const RelaxedBernoulliLimits l = LimitsFor(logits);
  at::NoGradGuard no_grad;
  return at::empty_like(logits).uniform_(0.0, 1.0, RoutingGenerator()).clamp_(l.eps, 1.0 - l.eps);
}

at::Tensor RelaxedBernoulliFromUniform(const at::Tensor& logits, const at::Tensor& uniform, double temperature) {
  TORCH_CHECK(temperature > 0, "SampleRelaxedBernoulli: temperature must be > 0, got ", temperature);
  const RelaxedBernoulliLimits l = LimitsFor(logits);
  // logit(clamp(sigmoid(z), eps, 1 - eps)) is clamp(z, -L, L), so the sample needs four
  // differentiable ops; the logistic noise logit(u) carries no gradient.
  at::Tensor noise;
  {
    at::NoGradGuard no_grad;
    const at::Tensor u = uniform.clamp(l.eps, 1.0 - l.eps);
    noise = u.log() - at::log1p(-u);
  }
  const auto y = (logits.clamp(-l.limit, l.limit) + noise) / temperature;
  return at::sigmoid(y).clamp(l.tiny, 1.0 - l.eps);
}

at::Tensor NormalisedRelaxedBernoulliFromUniform(const at::Tensor& logits, const at::Tensor& uniform,
                                                 double temperature) {
  TORCH_CHECK(temperature > 0, "SampleRelaxedBernoulli: temperature must be > 0, got ", temperature);
  TORCH_CHECK(logits.sizes() == uniform.sizes(), "NormalisedRelaxedBernoulliFromUniform: logits ", logits.sizes(),
              " and uniform ", uniform.sizes(), " differ in shape");
  const bool fused = logits.device().is_cpu() && logits.dim() >= 1 &&
                     (logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble);
  if (!fused) return NormaliseSkillScores(RelaxedBernoulliFromUniform(logits, uniform, temperature));
  return NormalisedRelaxedBernoulliFn::apply(logits, uniform.to(logits.scalar_type()), temperature);
}

at::Tensor SampleRelaxedBernoulli(const at::Tensor& logits, double temperature) {
  return RelaxedBernoulliFromUniform(logits, DrawRoutingUniform(logits), temperature);
}

at::Tensor NormaliseSkillScores(const at::Tensor& scores) {
  // The sum varies with the number of active skills; dividing by it keeps the norm of the mixed
  // parameters independent of how many skills a task uses (Polytropon Eq. 3).
  return scores / (scores.sum(-1, /*keepdim=*/true) + 1e-12);
}

RouterImpl::RouterImpl(RouterOptions options_) : options(std::move(options_)) { reset(); }

void RouterImpl::reset() {
  const int64_t t = options.n_tasks(), s = options.n_skills(), h = options.n_splits();
  TORCH_CHECK(t >= 1, "Router: n_tasks must be >= 1, got ", t);
  TORCH_CHECK(s >= 1, "Router: n_skills must be >= 1, got ", s);
  TORCH_CHECK(h >= 1, "Router: n_splits must be >= 1, got ", h);
  TORCH_CHECK(options.temperature() > 0, "Router: temperature must be > 0, got ", options.temperature());
  logits_ = at::Tensor();
  allocation_ = at::Tensor();
  if (options.kind() == RouterKind::kPoly) {
    logits_ = register_parameter("logits", at::empty({t, h * s}).uniform_(-options.init_range(), options.init_range()));
  } else if (options.kind() == RouterKind::kFixed) {
    const auto& alloc = options.allocation();
    TORCH_CHECK(alloc.defined() && alloc.dim() == 2, "Router(fixed): allocation must be (T x S) or (T x h*S), got shape ",
                alloc.defined() ? alloc.sizes() : at::IntArrayRef{});
    TORCH_CHECK(alloc.size(0) == t && (alloc.size(1) == s || alloc.size(1) == h * s),
                "Router(fixed): allocation has shape ", alloc.sizes(), " but n_tasks=", t, ", n_skills=", s,
                ", n_splits=", h, " need (", t, " x ", s, ") or (", t, " x ", h * s, ")");
    TORCH_CHECK(alloc.min().item<double>() >= 0, "Router(fixed): allocation entries must be >= 0, min is ",
                alloc.min().item<double>());
    auto stored = alloc.to(at::kFloat).clone();
    if (stored.size(1) == s && h > 1) stored = stored.repeat({1, h});
    allocation_ = register_buffer("allocation", stored);
  }
}

void RouterImpl::pretty_print(std::ostream& stream) const {
  stream << "skillgrid::skills::Router(kind=" << RouterKindName(options.kind()) << ", n_tasks=" << n_tasks()
         << ", n_skills=" << n_skills() << ", n_splits=" << n_splits() << ")";
}

void RouterImpl::CheckTaskRange(int64_t min_task, int64_t max_task) const {
  TORCH_CHECK(min_task >= 0 && max_task < n_tasks(), "Router: task id ", (min_task < 0 ? min_task : max_task),
              " is out of range for a router over ", n_tasks(), " tasks (valid ids 0..", n_tasks() - 1, ")");
}

at::Tensor RouterImpl::ScoresForTasks(const at::Tensor& tasks, bool sample) const {
  const int64_t u = tasks.size(0), h = n_splits(), s = n_skills();
  switch (options.kind()) {
    case RouterKind::kPoly: {
      TORCH_CHECK(logits_.defined(), "Router: kind poly needs logits; this router was built as another kind");
      const auto z = logits_.index_select(0, tasks).view({u, h, s});
      auto scores = (sample && options.relaxed_bernoulli()) ? SampleRelaxedBernoulli(z, options.temperature())
                                                            : at::sigmoid(z);
      if (options.straight_through()) {
        // Forward uses the hard 0/1 allocation, backward the gradient of the soft one.
        scores = (scores > 0.5).to(scores.scalar_type()) + scores - scores.detach();
      }
      return scores;
    }
    case RouterKind::kFixed:
      TORCH_CHECK(allocation_.defined(), "Router: kind fixed needs an allocation; this router was built as another kind");
      return allocation_.index_select(0, tasks).view({u, h, s});
    case RouterKind::kMu:
    case RouterKind::kAdaMix:
      return at::ones({u, h, s}, at::TensorOptions().device(tasks.device()));
  }
  return at::Tensor();
}

SkillWeights RouterImpl::WeightsForTasks(const at::Tensor& tasks) {
  TORCH_CHECK(tasks.dim() == 1, "Router: tasks must be 1-D, got shape ", tasks.sizes());
  const auto tasks_long = tasks.to(at::kLong);
  if (tasks_long.numel() > 0) CheckTaskRange(tasks_long.min().item<int64_t>(), tasks_long.max().item<int64_t>());
  return WeightsForCheckedTasks(tasks_long);
}

SkillWeights RouterImpl::WeightsForCheckedTasks(const at::Tensor& tasks_long) {
  const int64_t u = tasks_long.size(0), h = n_splits(), s = n_skills();
  // Parameter-free routers build their weights on the tasks' device (the network's).
  const auto on_device = at::TensorOptions().device(tasks_long.device());
  if (options.kind() == RouterKind::kMu) {
    const auto w = at::full({u, h, s}, 1.0 / static_cast<double>(s), on_device);
    return {w, w};
  }
  if (options.kind() == RouterKind::kAdaMix) {
    if (!is_training()) {
      const auto w = at::full({u, h, s}, 1.0 / static_cast<double>(s), on_device);
      return {w, w};
    }
    // One uniform draw per forward call for the whole batch; A and B draw independently, as
    // AdaMix does when neither projection is shared. Drawn on the host (the routing generator
    // is a CPU one), so a seed gives the same picks on every device.
    const auto pick = at::randint(s, {2}, RoutingGenerator(), at::TensorOptions().dtype(at::kLong)).to(tasks_long.device());
    const auto one_hot_a = at::zeros({u, h, s}, on_device).index_fill_(2, pick.narrow(0, 0, 1), 1.0);
    const auto one_hot_b = at::zeros({u, h, s}, on_device).index_fill_(2, pick.narrow(0, 1, 1), 1.0);
    return {one_hot_a, one_hot_b};
  }
  if (options.kind() == RouterKind::kPoly && is_training() && options.relaxed_bernoulli() &&
      !options.straight_through()) {
    TORCH_CHECK(logits_.defined(), "Router: kind poly needs logits; this router was built as another kind");
    const auto z = logits_.index_select(0, tasks_long).view({u, h, s});
    const auto w = NormalisedRelaxedBernoulliFromUniform(z, DrawRoutingUniform(z), options.temperature());
    return {w, w};
  }
  const auto w = NormaliseSkillScores(ScoresForTasks(tasks_long, is_training()));
  return {w, w};
}

SkillWeights RouterImpl::forward(const TaskBatch& batch) {
  // The batch's host copy of its tasks checks the range without reading the device (a sync on
  // CUDA per routed layer).
  if (batch.num_unique() > 0) CheckTaskRange(batch.unique_task_list.front(), batch.max_task());
  return WeightsForCheckedTasks(batch.unique_tasks.to(at::kLong));
}

at::Tensor RouterImpl::Probabilities() const {
  // On the device of the router's logits or allocation (index_select needs its index there).
  const at::Tensor& state = logits_.defined() ? logits_ : allocation_;
  const auto device = state.defined() ? state.device() : at::Device(at::kCPU);
  const auto all_tasks = at::arange(n_tasks(), at::TensorOptions().dtype(at::kLong).device(device));
  return ScoresForTasks(all_tasks, /*sample=*/false).detach();
}

at::Tensor RouterImpl::EvalWeights() const {
  if (options.kind() == RouterKind::kMu || options.kind() == RouterKind::kAdaMix)
    return at::full({n_tasks(), n_splits(), n_skills()}, 1.0 / static_cast<double>(n_skills()));
  return NormaliseSkillScores(Probabilities());
}

int64_t RouterImpl::AddTask() {
  TORCH_CHECK(options.kind() != RouterKind::kFixed,
              "Router: cannot add a task to a fixed allocation; build a new allocation with ", n_tasks() + 1, " rows");
  if (logits_.defined()) {
    at::NoGradGuard no_grad;
    const auto row = at::empty({1, logits_.size(1)}, logits_.options()).uniform_(-options.init_range(), options.init_range());
    // set_data keeps the parameter's identity (the module's registry entry) while growing it.
    logits_.set_data(at::cat({logits_.detach(), row}, 0));
  }
  options.n_tasks(options.n_tasks() + 1);
  return options.n_tasks() - 1;
}

int64_t RouterImpl::AddTaskWithWeights(const at::Tensor& weights) {
  const int64_t h = n_splits(), s = n_skills();
  TORCH_CHECK(weights.defined() && weights.dim() == 2 && weights.size(0) == h && weights.size(1) == s,
              "Router: AddTaskWithWeights needs weights of shape (", h, ", ", s, ") (heads x skills), got ",
              weights.defined() ? weights.sizes() : at::IntArrayRef{});
  const at::Tensor w = weights.detach().to(at::kCPU, at::kFloat);
  TORCH_CHECK(w.min().item<float>() >= 0.0f, "Router: AddTaskWithWeights needs non-negative weights, min is ",
              w.min().item<float>());
  const at::Tensor sums = w.sum(1);
  TORCH_CHECK((sums - 1.0f).abs().max().item<float>() < 1e-4f,
              "Router: AddTaskWithWeights needs each head's weights to sum to 1, sums are ", sums);
  at::NoGradGuard no_grad;
  if (options.kind() == RouterKind::kPoly) {
    TORCH_CHECK(!options.straight_through(),
                "Router: a straight-through Poly router rounds its scores, so it cannot route a task with given weights");
    // Clamped so a zero weight gets a finite logit; the renormalised weights then differ from w
    // by at most ~S * 1e-6.
    const at::Tensor p = w.clamp(1e-6, 1.0 - 1e-6);
    const at::Tensor row = (p.log() - at::log1p(-p)).view({1, h * s}).to(logits_.options());
    logits_.set_data(at::cat({logits_.detach(), row}, 0));
  } else if (options.kind() == RouterKind::kFixed) {
    const at::Tensor row = w.view({1, h * s}).to(allocation_.options());
    allocation_.set_data(at::cat({allocation_, row}, 0));
    options.allocation(allocation_.to(at::kCPU).clone());  // reset() and clone() rebuild from the options
  }
  options.n_tasks(options.n_tasks() + 1);
  return options.n_tasks() - 1;
}

void RouterImpl::ReinitialiseTask(int64_t task) {
  CheckTaskRange(task, task);
  TORCH_CHECK(logits_.defined(), "Router: ReinitialiseTask needs learned logits (kind poly), kind is ",
              RouterKindName(options.kind()));
  at::NoGradGuard no_grad;
  logits_[task].uniform_(-options.init_range(), options.init_range());
}

void RouterImpl::set_kind(RouterKind kind) {
  TORCH_CHECK(kind != RouterKind::kPoly || logits_.defined(),
              "Router: cannot switch to poly, this router has no learned logits (kind ", RouterKindName(options.kind()), ")");
  TORCH_CHECK(kind != RouterKind::kFixed || allocation_.defined(),
              "Router: cannot switch to fixed, this router has no allocation (kind ", RouterKindName(options.kind()), ")");
  options.kind(kind);
}

}  // namespace skillgrid::skills
