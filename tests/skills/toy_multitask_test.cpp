// A toy multitask regression: tasks are sums of shared latent components; Poly must fit them and
// route tasks that share components to similar skills.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skills/skill_linear.h"
#include "skills/training_helpers.h"

namespace skillgrid::skills {
namespace {

TEST(ToyMultitask, PolyFitsTasksAndGroupsThoseSharingComponents) {
  torch::manual_seed(0);
  at::set_num_threads(1);
  const int64_t d = 8, n_tasks = 6, n_components = 3, batch = 192;
  // Task t uses component t / 2: tasks {0,1}, {2,3}, {4,5} share one component each.
  const auto components = torch::randn({n_components, d, d}) / std::sqrt(static_cast<double>(d));
  auto task_map = [&](int64_t t) { return components[t / 2]; };

  SkillLinear layer(SkillLinearOptions(d, d)
                        .bias(false)
                        .freeze_base(true)
                        .routing(RouterOptions::Poly(n_tasks, n_components))
                        .skills(SkillInventoryOptions::Dense().zero_init(false)));
  torch::optim::Adam adam(MakeAdamParamGroups(*layer, torch::optim::AdamOptions(1e-2), 10.0));
  auto loss_on = [&](const at::Tensor& x, const at::Tensor& tasks) {
    std::vector<at::Tensor> targets;
    for (int64_t i = 0; i < x.size(0); ++i) targets.push_back(x[i].unsqueeze(0).mm(task_map(tasks[i].item<int64_t>())));
    return (layer->forward(x, tasks) - torch::cat(targets)).pow(2).mean();
  };
  const auto eval_x = torch::randn({batch, d});
  const auto eval_tasks = torch::arange(batch) % n_tasks;
  layer->eval();
  const double start = loss_on(eval_x, eval_tasks).item<double>();
  layer->train();
  for (int step = 0; step < 600; ++step) {
    adam.zero_grad();
    loss_on(torch::randn({batch, d}), torch::randint(n_tasks, {batch}, torch::kLong)).backward();
    adam.step();
  }
  layer->eval();
  const double end = loss_on(eval_x, eval_tasks).item<double>();
  EXPECT_LT(end, 0.5 * start) << "start " << start << " end " << end;

  // Tasks sharing a component have closer allocations than tasks that do not.
  const auto weights = layer->router()->EvalWeights().select(1, 0);  // (T, S)
  double within = 0, across = 0;
  int n_within = 0, n_across = 0;
  for (int64_t i = 0; i < n_tasks; ++i)
    for (int64_t j = i + 1; j < n_tasks; ++j) {
      const double distance = (weights[i] - weights[j]).abs().sum().item<double>();
      if (i / 2 == j / 2) within += distance, ++n_within;
      else across += distance, ++n_across;
    }
  EXPECT_LT(within / n_within, 0.5 * across / n_across) << "weights\n" << weights;
}

}  // namespace
}  // namespace skillgrid::skills
