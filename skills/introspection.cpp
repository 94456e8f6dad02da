#include "skills/introspection.h"

#include <cmath>

#include <c10/util/Exception.h>
#include <torch/autograd.h>

#include "skills/training_helpers.h"

namespace skillgrid::skills {

RoutingMetrics ComputeRoutingMetrics(const at::Tensor& probabilities) {
  TORCH_CHECK(probabilities.dim() == 2, "ComputeRoutingMetrics: expected a (T, S) matrix, got shape ",
              probabilities.sizes());
  const auto p = probabilities.detach().to(at::kDouble).clamp(0.0, 1.0);
  const double eps = 1e-12;
  RoutingMetrics metrics;
  const auto binary_entropy = -(p * (p + eps).log() + (1 - p) * (1 - p + eps).log());
  metrics.discreteness = (binary_entropy.mean() / std::log(2.0)).item<double>();
  metrics.sparsity = (p >= 0.5).to(at::kDouble).mean().item<double>();
  const int64_t s = p.size(1);
  const auto column_mass = p.sum(0);
  const double total = column_mass.sum().item<double>();
  if (s <= 1 || total <= 0) {
    metrics.usage = s <= 1 ? 1.0 : 0.0;
  } else {
    const auto share = column_mass / total;
    metrics.usage = (-(share * (share + eps).log()).sum() / std::log(static_cast<double>(s))).item<double>();
  }
  return metrics;
}

std::vector<RouterReport> CollectRouting(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  std::vector<RouterReport> reports;
  ForEachRouter(model, [&](const std::string& name, RouterImpl& router) {
    RouterReport report;
    report.name = name;
    report.kind = router.kind();
    report.n_tasks = router.n_tasks();
    report.n_splits = router.n_splits();
    report.n_skills = router.n_skills();
    report.probabilities = router.Probabilities();
    report.weights = router.EvalWeights();
    for (int64_t q = 0; q < report.n_splits; ++q)
      report.head_metrics.push_back(ComputeRoutingMetrics(report.probabilities.select(1, q)));
    reports.push_back(std::move(report));
  });
  return reports;
}

namespace {

nlohmann::json MatrixToJson(const at::Tensor& matrix) {
  const auto m = matrix.to(at::kCPU, at::kDouble).contiguous();
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = 0; i < m.size(0); ++i) {
    const double* row = m[i].data_ptr<double>();
    rows.push_back(std::vector<double>(row, row + m.size(1)));
  }
  return rows;
}

}  // namespace

nlohmann::json RoutingToJson(const std::vector<RouterReport>& reports, const std::vector<std::string>& task_names) {
  nlohmann::json routers = nlohmann::json::array();
  for (const auto& report : reports) {
    TORCH_CHECK(task_names.empty() || static_cast<int64_t>(task_names.size()) == report.n_tasks, "RoutingToJson: ",
                task_names.size(), " task names for router '", report.name, "' over ", report.n_tasks, " tasks");
    nlohmann::json heads = nlohmann::json::array();
    for (int64_t q = 0; q < report.n_splits; ++q) {
      const auto& metrics = report.head_metrics[static_cast<size_t>(q)];
      heads.push_back({{"probabilities", MatrixToJson(report.probabilities.select(1, q))},
                       {"weights", MatrixToJson(report.weights.select(1, q))},
                       {"discreteness", metrics.discreteness},
                       {"sparsity", metrics.sparsity},
                       {"usage", metrics.usage}});
    }
    nlohmann::json entry = {{"name", report.name},         {"kind", RouterKindName(report.kind)},
                            {"n_tasks", report.n_tasks},   {"n_splits", report.n_splits},
                            {"n_skills", report.n_skills}, {"heads", heads}};
    if (!task_names.empty()) entry["tasks"] = task_names;
    routers.push_back(entry);
  }
  return {{"routers", routers}};
}

nlohmann::json RoutingToJson(torch::nn::Module& model, const std::vector<std::string>& task_names) {
  return RoutingToJson(CollectRouting(model), task_names);
}

}  // namespace skillgrid::skills
