#include "skills/router.h"

#include <limits>
#include <ostream>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
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

at::Tensor SampleRelaxedBernoulli(const at::Tensor& logits, double temperature) {
  TORCH_CHECK(temperature > 0, "SampleRelaxedBernoulli: temperature must be > 0, got ", temperature);
  const bool is_double = logits.scalar_type() == at::kDouble;
  const double eps = is_double ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
  const double tiny = is_double ? std::numeric_limits<double>::min() : std::numeric_limits<float>::min();
  // Same clamps as torch.distributions (clamp_probs, _clipped_sigmoid): they keep the logs finite
  // and cap |logit| near 15.9 in fp32, so samples match PyTorch's RelaxedBernoulli.
  // logit(clamp(sigmoid(z), eps, 1 - eps)) is clamp(z, -L, L) with L = logit(1 - eps), so the
  // sample needs four differentiable ops; the logistic noise logit(u) carries no gradient.
  const double limit = std::log1p(-eps) - std::log(eps);
  at::Tensor noise;
  {
    at::NoGradGuard no_grad;
    const auto uniform = at::empty_like(logits).uniform_(0.0, 1.0, RoutingGenerator()).clamp_(eps, 1.0 - eps);
    noise = uniform.log() - at::log1p(-uniform);
  }
  const auto y = (logits.clamp(-limit, limit) + noise) / temperature;
  return at::sigmoid(y).clamp(tiny, 1.0 - eps);
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
      return at::ones({u, h, s});
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
  if (options.kind() == RouterKind::kMu) {
    const auto w = at::full({u, h, s}, 1.0 / static_cast<double>(s));
    return {w, w};
  }
  if (options.kind() == RouterKind::kAdaMix) {
    if (!is_training()) {
      const auto w = at::full({u, h, s}, 1.0 / static_cast<double>(s));
      return {w, w};
    }
    // One uniform draw per forward call for the whole batch; A and B draw independently, as
    // AdaMix does when neither projection is shared.
    const auto pick = at::randint(s, {2}, RoutingGenerator(), at::TensorOptions().dtype(at::kLong));
    const auto one_hot_a = at::zeros({u, h, s}).index_fill_(2, pick.narrow(0, 0, 1), 1.0);
    const auto one_hot_b = at::zeros({u, h, s}).index_fill_(2, pick.narrow(0, 1, 1), 1.0);
    return {one_hot_a, one_hot_b};
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
  const auto all_tasks = at::arange(n_tasks(), at::TensorOptions().dtype(at::kLong));
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
