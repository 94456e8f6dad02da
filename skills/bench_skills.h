// `skillgrid bench skills`: forward+backward cost of skill-routed Linear layers vs a plain Linear.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace skillgrid::skills {

/// Settings of the skills benchmark; the defaults are the target configuration.
struct SkillsBenchOptions {
  /// Layer input size.
  int64_t in_features = 128;
  /// Layer output size.
  int64_t out_features = 128;
  /// Skills per layer (Private uses one per task, Shared one).
  int64_t n_skills = 9;
  /// Low-rank rank r.
  int64_t rank = 8;
  /// Heads of the MHR configuration.
  int64_t mhr_splits = 4;
  /// Density of the sparse inventory.
  double sparse_density = 0.1;
  /// Rows per batch.
  int64_t batch = 2560;
  /// Tasks the rows are drawn from (uniformly, unsorted).
  int64_t n_tasks = 8;
  /// Timed iterations per configuration (the median is reported).
  int64_t iterations = 40;
  /// Untimed warm-up iterations per configuration.
  int64_t warmup = 5;
  /// Intra-op threads for the run (0 leaves LibTorch's default).
  int64_t threads = 1;
  /// Whether the layer input requires grad (a hidden layer) or not (a first layer).
  bool input_requires_grad = false;
  /// Seed of torch's generator.
  uint64_t seed = 1;
  /// Restrict to these "inventory/router" names (empty = all), e.g. {"lowrank/poly"}.
  std::vector<std::string> only;
};

/// One measured configuration.
struct SkillsBenchEntry {
  /// Inventory kind name ("lowrank", "dense", "sparse").
  std::string inventory;
  /// Router name ("poly", "mhr", "shared", "private", "expert", "mu", "adamix").
  std::string router;
  /// Median milliseconds of one forward+backward.
  double ms_per_iteration = 0;
  /// ms_per_iteration over the plain Linear's median timed alternately in the same window.
  double vs_plain = 0;
};

/// Everything the benchmark measured.
struct SkillsBenchResult {
  /// Median milliseconds of a plain torch Linear forward+backward on the same batch.
  double plain_ms = 0;
  /// Milliseconds to build the TaskBatch (done once per network forward, shared by all layers).
  double task_batch_ms = 0;
  /// The routed configurations, in the printed order.
  std::vector<SkillsBenchEntry> entries;
  /// Low-rank Poly time over plain time (the target: <= 2); 0 when not measured.
  double poly_lowrank_vs_plain = 0;
};

/// Runs the benchmark, printing one line per configuration and finally the line
/// `poly_lowrank_vs_plain: R` to `progress`.
SkillsBenchResult RunSkillsBench(const SkillsBenchOptions& options, std::ostream& progress);

}  // namespace skillgrid::skills
