// `skillgrid eval`: per-level success rate, mean return and episode length of a trained run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/commands.h"

#ifdef SKILLGRID_HAVE_TRAINING
#include <ATen/Parallel.h>

#include "skills/skill_conv_embedding.h"
#include "skills/winograd_conv.h"
#include "training/checkpoint.h"
#include "training/config.h"
#include "training/evaluate.h"
#endif

namespace skillgrid::apps {

#ifdef SKILLGRID_HAVE_TRAINING
namespace {

using training::TrainConfig;

struct EvalFlags {
  std::string run;
  std::string checkpoint;
  std::string levels;                     // empty: the run's own
  std::string unseen_routing = "mean";    // routing of levels the run did not train on
  int episodes = 100;
  uint64_t seed = 1'000'000'000;
  bool sample = false;
  int threads = 0;
  std::string device = "cpu";
  std::string precision;  // empty: the run's own
};

// The levels to evaluate and the model task each runs as: a trained level keeps its own task;
// every unseen level runs as the one task --unseen-routing picks (zero-shot transfer).
struct EvalPlan {
  std::vector<std::string> levels;
  std::vector<int64_t> model_tasks;
  std::vector<bool> unseen;
  int num_unseen = 0;
};

EvalPlan PlanLevels(const EvalFlags& f, const TrainConfig& trained, agents::ActorCriticImpl& model) {
  const training::UnseenRouting routing = training::UnseenRouting::Parse(f.unseen_routing, trained.levels);
  EvalPlan plan;
  if (f.levels.empty()) {
    plan.levels = trained.levels;
  } else {
    for (const auto& name : SplitList(f.levels)) plan.levels.push_back(FullLevelId(name));
    if (plan.levels.empty()) throw training::ConfigError("--levels: at least one level is needed");
  }
  training::CheckLevelIds(plan.levels, "--levels");
  int64_t unseen_task = -1;
  for (const auto& id : plan.levels) {
    const auto it = std::find(trained.levels.begin(), trained.levels.end(), id);
    const bool is_unseen = it == trained.levels.end();
    if (is_unseen && unseen_task < 0) unseen_task = routing.TaskIn(model, trained.levels);
    plan.model_tasks.push_back(is_unseen ? unseen_task : it - trained.levels.begin());
    plan.unseen.push_back(is_unseen);
    plan.num_unseen += is_unseen ? 1 : 0;
  }
  return plan;
}

int RunEval(const EvalFlags& f) {
  std::string path = f.checkpoint;
  if (path.empty()) {
    if (f.run.empty()) throw training::RunError("give --run DIR (or --checkpoint FILE)");
    path = training::ResolveCheckpoint(f.run, "--run");
  }
  if (f.episodes < 1) throw training::ConfigError("--episodes must be >= 1, got " + std::to_string(f.episodes));
  training::LoadedModel loaded = training::LoadModel(path, f.device, f.precision);
  const TrainConfig config = TrainConfig::FromJson(loaded.meta.at("config"));
  // The bf16 Winograd tile the run trained with (its periodic evaluations used it too).
  std::optional<skills::ScopedWinogradBf16Tile> tile;
  if (const auto recorded = skills::ParseWinogradTile(config.winograd_tile)) tile.emplace(*recorded);
  const EvalPlan plan = PlanLevels(f, config, *loaded.model);
  TrainConfig t;
  t.threads = f.threads;
  at::set_num_threads(t.ResolvedThreads());
  const training::Evaluation e = training::EvaluatePolicy(loaded.model, plan.levels, f.episodes, f.seed, !f.sample,
                                                          t.ResolvedThreads(), plan.model_tasks);
  std::cout << "checkpoint: " << path << "\nframes: " << loaded.meta["counters"].value("frames", int64_t{0})
            << "\nepisodes_per_level: " << f.episodes << "\nseed: " << f.seed
            << "\nactions: " << (f.sample ? "sampled" : "argmax")
            << "\nprecision: " << skills::ConvPrecisionName(loaded.model->ConvPrecision()) << "\n";
  if (loaded.model->ConvPrecision() == skills::ConvPrecision::kBFloat16 && skills::WinogradConvPreferred()) {
    std::cout << "winograd_tile: " << skills::WinogradTileName(skills::WinogradBf16Tile()) << "\n";
  }
  if (plan.num_unseen > 0) std::cout << "unseen_routing: " << f.unseen_routing << "\n";
  std::printf("%-28s %8s %12s %10s %8s\n", "level", "success", "mean_return", "length", "trained");
  double trained_sum = 0.0, unseen_sum = 0.0;
  for (size_t i = 0; i < e.levels.size(); ++i) {
    const auto& l = e.levels[i];
    std::printf("%-28s %8.3f %12.4f %10.2f %8s\n", l.level.c_str(), l.success_rate, l.mean_return, l.mean_length,
                plan.unseen[i] ? "no" : "yes");
    (plan.unseen[i] ? unseen_sum : trained_sum) += l.success_rate;
  }
  const int num_trained = static_cast<int>(plan.levels.size()) - plan.num_unseen;
  if (plan.num_unseen > 0 && num_trained > 0) std::printf("trained_success_rate: %.4f\n", trained_sum / num_trained);
  if (plan.num_unseen > 0) std::printf("unseen_success_rate: %.4f\n", unseen_sum / plan.num_unseen);
  std::printf("success_rate: %.4f\n", e.success_rate);
  return 0;
}

}  // namespace

void AddEvalCommand(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a trained run: per-level success, return and length");
  cmd->add_option("--run", f->run, "run directory (its newest checkpoint is used)");
  cmd->add_option("--checkpoint", f->checkpoint, "a checkpoint file instead of --run");
  cmd->add_option("--levels", f->levels,
                  "comma-separated levels to evaluate (default: the run's own); levels the run did not train on "
                  "are zero-shot transfer, routed as --unseen-routing");
  cmd->add_option("--unseen-routing", f->unseen_routing,
                  "routing of levels the run did not train on: mean (each router's average over the trained "
                  "levels) | uniform (1/S over the skills: the Poly-mu / MHR-mu average) | as:LEVEL (as that "
                  "trained level's task). Routers that ignore the task (none, shared, mu, adamix) run unseen "
                  "levels as any other")
      ->capture_default_str();
  cmd->add_option("--episodes", f->episodes, "episodes per level")->capture_default_str();
  cmd->add_option("--seed", f->seed, "seed of the evaluation episodes")->capture_default_str();
  cmd->add_flag("--sample", f->sample, "sample actions instead of taking the argmax");
  cmd->add_option("--threads", f->threads, "threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--device", f->device, "cpu | cuda")->capture_default_str();
  cmd->add_option("--precision", f->precision,
                  "convolution arithmetic, fp32 | bf16 (default: the precision the run trained with)");
  cmd->callback([f, exit_code] { try {
      *exit_code = RunEval(*f);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      std::cerr << "skillgrid eval: error: " << msg.substr(0, msg.find('\n')) << "\n";
      *exit_code = 1;
    } });
}

#else  // no LibTorch

void AddEvalCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a trained run (needs a build with LibTorch)");
  cmd->allow_extras();
  cmd->callback([exit_code] {
    std::cerr << "skillgrid eval: this build has no LibTorch, so no evaluation\n";
    *exit_code = 2;
  });
}

#endif

}  // namespace skillgrid::apps
