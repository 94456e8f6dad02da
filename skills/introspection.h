// Introspection of routing: task x skill matrices, Polytropon's metrics, JSON export.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include "skills/router.h"

namespace skillgrid::skills {

/// Polytropon's interpretability metrics (paper section 4.3) of one T x S probability matrix.
struct RoutingMetrics {
  /// Mean binary entropy of the probabilities / log 2: 0 means a binary allocation.
  double discreteness = 0;
  /// Fraction of cells with round(P) = 1 (the active rate: lower is sparser).
  double sparsity = 0;
  /// Entropy of the normalised column sums / log S: 1 means all skills are used equally.
  double usage = 0;
};

/// Computes RoutingMetrics of a (T, S) matrix of probabilities in [0, 1].
RoutingMetrics ComputeRoutingMetrics(const at::Tensor& probabilities);

/// One router's state: what the viewer and the trainer's skills.json show.
struct RouterReport {
  /// Module path of the router (e.g. "actor.fc1.router"; "" for a bare router).
  std::string name;
  /// Routing method.
  RouterKind kind = RouterKind::kPoly;
  /// Tasks T, heads h, skills S.
  int64_t n_tasks = 0, n_splits = 0, n_skills = 0;
  /// Eval-mode probabilities (T, h, S): sigmoid(Z), the allocation, or ones.
  at::Tensor probabilities;
  /// Eval-mode mixing weights (T, h, S), each (task, head) row summing to 1.
  at::Tensor weights;
  /// Metrics of each head's probabilities.
  std::vector<RoutingMetrics> head_metrics;
};

/// Reports every distinct router of `model` (shared routers once), in registration order.
std::vector<RouterReport> CollectRouting(torch::nn::Module& model);

/// JSON of reports: {"routers": [{"name", "kind", "n_tasks", "n_splits", "n_skills",
/// "tasks": [names], "heads": [{"probabilities": T x S, "weights": T x S, "discreteness",
/// "sparsity", "usage"}]}]}. `task_names` (optional) labels the rows.
nlohmann::json RoutingToJson(const std::vector<RouterReport>& reports, const std::vector<std::string>& task_names = {});

/// CollectRouting + RoutingToJson.
nlohmann::json RoutingToJson(torch::nn::Module& model, const std::vector<std::string>& task_names = {});

}  // namespace skillgrid::skills
