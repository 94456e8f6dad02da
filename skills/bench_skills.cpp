#include "skills/bench_skills.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <iomanip>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include "skills/expert_allocation.h"
#include "skills/skill_linear.h"

namespace skillgrid::skills {
namespace {

double MedianMs(int64_t warmup, int64_t iterations, const std::function<void()>& step) {
  for (int64_t i = 0; i < warmup; ++i) step();
  std::vector<double> times;
  times.reserve(static_cast<size_t>(iterations));
  for (int64_t i = 0; i < iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// The routers of the comparison; Expert needs exactly Polytropon's eight levels and 9 skills.
std::vector<std::pair<std::string, RouterOptions>> BenchRouters(const SkillsBenchOptions& o) {
  std::vector<std::pair<std::string, RouterOptions>> routers = {
      {"poly", RouterOptions::Poly(o.n_tasks, o.n_skills)},
      {"mhr", RouterOptions::Mhr(o.n_tasks, o.n_skills, o.mhr_splits)},
      {"shared", RouterOptions::Shared(o.n_tasks)},
      {"private", RouterOptions::Private(o.n_tasks)},
  };
  if (o.n_tasks == 8 && o.n_skills == 9) routers.emplace_back("expert", RouterOptions::Fixed(PolytroponExpertAllocation()));
  routers.emplace_back("mu", RouterOptions::Mu(o.n_tasks, o.n_skills));
  routers.emplace_back("adamix", RouterOptions::AdaMix(o.n_tasks, o.n_skills));
  return routers;
}

// Times `routed` and `plain` in alternation so both see the same machine load (the box may be
// shared), returning the medians {routed, plain} and, through `min_ratio`, the ratio of the
// fastest runs (the least disturbed estimate on a loaded machine).
std::pair<double, double> PairedMedianMs(double* min_ratio, int64_t warmup, int64_t iterations, const std::function<void()>& routed,
                                         const std::function<void()>& plain) {
  for (int64_t i = 0; i < warmup; ++i) routed(), plain();
  std::vector<double> routed_times, plain_times;
  for (int64_t i = 0; i < iterations; ++i) {
    for (auto* pair : {&routed_times, &plain_times}) {
      const auto& step = pair == &routed_times ? routed : plain;
      const auto start = std::chrono::steady_clock::now();
      step();
      pair->push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  }
  for (auto* times : {&routed_times, &plain_times}) std::sort(times->begin(), times->end());
  *min_ratio = routed_times.front() / plain_times.front();
  return {routed_times[routed_times.size() / 2], plain_times[plain_times.size() / 2]};
}

}  // namespace

SkillsBenchResult RunSkillsBench(const SkillsBenchOptions& o, std::ostream& progress) {
  if (o.threads > 0) at::set_num_threads(static_cast<int>(o.threads));
  torch::manual_seed(o.seed);
  SkillsBenchResult result;
  const auto x = torch::randn({o.batch, o.in_features}).set_requires_grad(o.input_requires_grad);
  const auto grad_out = torch::randn({o.batch, o.out_features});
  const auto task_ids = torch::randint(o.n_tasks, {o.batch}, torch::kLong);

  progress << std::fixed << std::setprecision(3);
  progress << "skills bench: " << o.in_features << "->" << o.out_features << ", batch " << o.batch << " over "
           << o.n_tasks << " tasks, " << o.n_skills << " skills, rank " << o.rank << ", threads "
           << at::get_num_threads() << ", input grad " << (o.input_requires_grad ? "yes" : "no") << ", median of "
           << o.iterations << "\n";

  torch::nn::Linear plain(o.in_features, o.out_features);
  result.plain_ms = MedianMs(o.warmup, o.iterations, [&] {
    plain->zero_grad();
    plain->forward(x).backward(grad_out);
  });
  progress << "plain linear: " << result.plain_ms << " ms\n";
  result.task_batch_ms = MedianMs(o.warmup, o.iterations, [&] { TaskBatch::FromTaskIds(task_ids); });
  progress << "task batch grouping (once per network forward): " << result.task_batch_ms << " ms\n";
  const auto batch = TaskBatch::FromTaskIds(task_ids);

  const std::vector<std::pair<std::string, SkillInventoryOptions>> inventories = {
      {"lowrank", SkillInventoryOptions::LowRank(o.rank)},
      {"dense", SkillInventoryOptions::Dense()},
      {"sparse", SkillInventoryOptions::Sparse(o.sparse_density)},
  };
  for (const auto& [inventory_name, inventory] : inventories) {
    for (const auto& [router_name, routing] : BenchRouters(o)) {
      const std::string name = inventory_name + "/" + router_name;
      if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), name) == o.only.end()) continue;
      SkillLinear layer(SkillLinearOptions(o.in_features, o.out_features)
                            .skills(SkillInventoryOptions(inventory).zero_init(false))
                            .routing(routing));
      SkillsBenchEntry entry{inventory_name, router_name, 0, 0};
      double min_ratio = 0;
      const auto [routed_ms, plain_ms] = PairedMedianMs(
          &min_ratio, o.warmup, o.iterations,
          [&] {
            layer->zero_grad();
            layer->forward(x, batch).backward(grad_out);
          },
          [&] {
            plain->zero_grad();
            plain->forward(x).backward(grad_out);
          });
      entry.ms_per_iteration = routed_ms;
      entry.vs_plain = routed_ms / plain_ms;
      progress << "skills " << name << ": " << routed_ms << " ms (plain " << plain_ms << " ms alongside), "
               << entry.vs_plain << "x plain (fastest runs: " << min_ratio << "x)\n";
      if (name == "lowrank/poly") result.poly_lowrank_vs_plain = entry.vs_plain;
      result.entries.push_back(entry);
    }
  }
  progress << "poly_lowrank_vs_plain: " << std::setprecision(2) << result.poly_lowrank_vs_plain << "\n";
  return result;
}

}  // namespace skillgrid::skills
