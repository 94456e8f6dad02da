#include "skills/training_helpers.h"

#include <cmath>
#include <map>
#include <stdexcept>
#include <unordered_set>

#include <c10/util/Exception.h>

namespace skillgrid::skills {

void ForEachRouter(torch::nn::Module& model, const std::function<void(const std::string&, RouterImpl&)>& visit) {
  std::unordered_set<const RouterImpl*> seen;
  auto maybe_visit = [&](const std::string& name, torch::nn::Module& module) {
    auto* router = dynamic_cast<RouterImpl*>(&module);
    if (router != nullptr && seen.insert(router).second) visit(name, *router);
  };
  maybe_visit("", model);
  for (const auto& item : model.named_modules("", /*include_self=*/false)) maybe_visit(item.key(), *item.value());
}

at::Tensor NegLogIbpPrior(const at::Tensor& logits, const IbpPriorOptions& options) {
  TORCH_CHECK(logits.dim() == 2, "NegLogIbpPrior: logits must be (T, S), got shape ", logits.sizes());
  const int64_t t = logits.size(0), s = logits.size(1);
  const auto soft = at::sigmoid(logits);
  const auto hard = (soft > 0.5).to(soft.scalar_type()) + soft - soft.detach();  // straight-through
  const auto uses = hard.sum(0);                                                  // m_j, (S)
  const auto binary = (soft.detach() > 0.5).to(at::kLong).t().contiguous().cpu();  // columns as rows, read on the host
  // K_h: how many active skills share each column pattern ("history"); a constant for autograd.
  std::map<std::vector<int64_t>, int64_t> history_counts;
  std::vector<int64_t> active;
  for (int64_t j = 0; j < s; ++j) {
    const auto column = binary[j];
    std::vector<int64_t> pattern(column.data_ptr<int64_t>(), column.data_ptr<int64_t>() + t);
    if (std::all_of(pattern.begin(), pattern.end(), [](int64_t v) { return v == 0; })) continue;
    ++history_counts[pattern];
    active.push_back(j);
  }
  auto log_prior = at::zeros({}, logits.options());
  for (const auto& [pattern, count] : history_counts) log_prior = log_prior - std::lgamma(static_cast<double>(count) + 1.0);
  if (!active.empty()) {
    const auto m = uses.index_select(0, at::tensor(active, at::TensorOptions().dtype(at::kLong)).to(uses.device()));
    log_prior = log_prior + (at::lgamma(static_cast<double>(t) - m + 1.0) + at::lgamma(m)).sum();
  }
  if (options.include_alpha_terms) {
    double harmonic = 0;
    for (int64_t i = 1; i <= t; ++i) harmonic += 1.0 / static_cast<double>(i);
    const double k_plus = static_cast<double>(active.size());
    log_prior = log_prior + k_plus * std::log(options.alpha) - options.alpha * harmonic -
                k_plus * std::lgamma(static_cast<double>(t) + 1.0);
  }
  return -log_prior;
}

at::Tensor NegLogIbpPrior(torch::nn::Module& model, const IbpPriorOptions& options) {
  at::Tensor total;  // on the routers' device
  ForEachRouter(model, [&](const std::string&, RouterImpl& router) {
    if (router.kind() != RouterKind::kPoly) return;
    const auto heads = router.logits().view({router.n_tasks(), router.n_splits(), router.n_skills()});
    for (int64_t q = 0; q < router.n_splits(); ++q) {
      const at::Tensor term = NegLogIbpPrior(heads.select(1, q), options);
      total = total.defined() ? total + term : term;
    }
  });
  return total.defined() ? total : at::zeros({});
}

at::Tensor AdaMixConsistencyLoss(const at::Tensor& logits_a, const at::Tensor& logits_b) {
  TORCH_CHECK(logits_a.sizes() == logits_b.sizes() && logits_a.dim() >= 1, "AdaMixConsistencyLoss: logits shapes ",
              logits_a.sizes(), " and ", logits_b.sizes(), " must match");
  const auto log_p_a = at::log_softmax(logits_a, -1), log_p_b = at::log_softmax(logits_b, -1);
  const double batch = static_cast<double>(logits_a.dim() > 1 ? logits_a.size(0) : 1);
  auto kl_to = [&](const at::Tensor& target_log_p, const at::Tensor& log_q) {  // KL(sg(p) || q), batch mean
    const auto target = target_log_p.detach();
    return (target.exp() * (target - log_q)).sum() / batch;
  };
  return 0.5 * (kl_to(log_p_b, log_p_a) + kl_to(log_p_a, log_p_b));
}

RoutingParameterSplit SplitRoutingParameters(torch::nn::Module& model) {
  std::unordered_set<const void*> routing_ids, seen;
  RoutingParameterSplit split;
  ForEachRouter(model, [&](const std::string&, RouterImpl& router) {
    if (router.logits().defined()) routing_ids.insert(router.logits().unsafeGetTensorImpl());
  });
  for (const auto& p : model.parameters()) {
    if (!p.requires_grad() || !seen.insert(p.unsafeGetTensorImpl()).second) continue;
    (routing_ids.count(p.unsafeGetTensorImpl()) ? split.routing : split.other).push_back(p);
  }
  return split;
}

namespace {

template <typename Options>
std::vector<torch::optim::OptimizerParamGroup> MakeGroups(torch::nn::Module& model, const Options& options,
                                                          double routing_lr_multiplier) {
  TORCH_CHECK(routing_lr_multiplier > 0, "routing_lr_multiplier must be > 0, got ", routing_lr_multiplier);
  auto split = SplitRoutingParameters(model);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(split.other, std::make_unique<Options>(options));
  if (!split.routing.empty()) {
    auto routing_options = std::make_unique<Options>(options);
    routing_options->lr(options.lr() * routing_lr_multiplier);
    routing_options->weight_decay(0.0);
    groups.emplace_back(split.routing, std::move(routing_options));
  }
  return groups;
}

}  // namespace

std::vector<torch::optim::OptimizerParamGroup> MakeAdamParamGroups(torch::nn::Module& model,
                                                                   const torch::optim::AdamOptions& options,
                                                                   double routing_lr_multiplier) {
  return MakeGroups(model, options, routing_lr_multiplier);
}

std::vector<torch::optim::OptimizerParamGroup> MakeAdamWParamGroups(torch::nn::Module& model,
                                                                    const torch::optim::AdamWOptions& options,
                                                                    double routing_lr_multiplier) {
  return MakeGroups(model, options, routing_lr_multiplier);
}

int64_t AddTask(torch::nn::Module& model) {
  int64_t new_task = -1;
  ForEachRouter(model, [&](const std::string& name, RouterImpl& router) {
    const int64_t id = router.AddTask();
    TORCH_CHECK(new_task < 0 || id == new_task, "AddTask: routers disagree on the task count (router '", name,
                "' gave id ", id, ", others ", new_task, ")");
    new_task = id;
  });
  TORCH_CHECK(new_task >= 0, "AddTask: the model has no routers");
  return new_task;
}

UnseenTaskRouting ParseUnseenTaskRouting(const std::string& name) {
  if (name == "mean") return UnseenTaskRouting::kMean;
  if (name == "uniform") return UnseenTaskRouting::kUniform;
  throw std::invalid_argument("unseen-task routing must be mean or uniform, got '" + name + "'");
}

int64_t AddUnseenTask(torch::nn::Module& model, UnseenTaskRouting routing) {
  int64_t new_task = -1;
  ForEachRouter(model, [&](const std::string& name, RouterImpl& router) {
    const at::Tensor weights = routing == UnseenTaskRouting::kMean
                                   ? router.EvalWeights().to(at::kCPU).mean(0)
                                   : at::full({router.n_splits(), router.n_skills()}, 1.0 / router.n_skills());
    const int64_t id = router.AddTaskWithWeights(weights);
    TORCH_CHECK(new_task < 0 || id == new_task, "AddUnseenTask: routers disagree on the task count (router '", name,
                "' gave id ", id, ", others ", new_task, ")");
    new_task = id;
  });
  return new_task < 0 ? 0 : new_task;
}

void FreezeAllButRouting(torch::nn::Module& model) {
  SetAllTrainable(model, false);
  ForEachRouter(model, [](const std::string&, RouterImpl& router) {
    if (router.logits().defined()) router.logits().set_requires_grad(true);
  });
}

void SwitchToMu(torch::nn::Module& model, bool freeze_base) {
  SetAllTrainable(model, true);
  ForEachRouter(model, [](const std::string&, RouterImpl& router) {
    router.set_kind(RouterKind::kMu);
    if (router.logits().defined()) router.logits().set_requires_grad(false);  // unused under mu
  });
  if (!freeze_base) return;
  // Base weights are everything outside the inventories and routers.
  std::unordered_set<const void*> keep;
  for (const auto& item : model.named_modules("", false)) {
    if (auto* inventory = dynamic_cast<SkillInventoryImpl*>(item.value().get()))
      for (const auto& p : inventory->parameters()) keep.insert(p.unsafeGetTensorImpl());
  }
  for (auto& p : model.parameters())
    if (!keep.count(p.unsafeGetTensorImpl())) p.set_requires_grad(false);
}

void SetAllTrainable(torch::nn::Module& model, bool trainable) {
  for (auto& p : model.parameters()) p.set_requires_grad(trainable);
}

}  // namespace skillgrid::skills
