// `skillgrid eval`: per-level success rate, mean return and episode length of a trained run.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "apps/commands.h"

#ifdef SKILLGRID_HAVE_TRAINING
#include <ATen/Parallel.h>

#include "skills/skill_conv_embedding.h"
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
  int episodes = 100;
  uint64_t seed = 1'000'000'000;
  bool sample = false;
  int threads = 0;
  std::string device = "cpu";
  std::string precision;  // empty: the run's own
};

int RunEval(const EvalFlags& f) {
  std::string path = f.checkpoint;
  if (path.empty()) {
    if (f.run.empty()) throw training::RunError("give --run DIR (or --checkpoint FILE)");
    path = training::ResolveCheckpoint(f.run, "--run");
  }
  if (f.episodes < 1) throw training::ConfigError("--episodes must be >= 1, got " + std::to_string(f.episodes));
  training::LoadedModel loaded = training::LoadModel(path, f.device, f.precision);
  const TrainConfig config = TrainConfig::FromJson(loaded.meta.at("config"));
  TrainConfig t;
  t.threads = f.threads;
  at::set_num_threads(t.ResolvedThreads());
  const training::Evaluation e =
      training::EvaluatePolicy(loaded.model, config.levels, f.episodes, f.seed, !f.sample, t.ResolvedThreads());
  std::cout << "checkpoint: " << path << "\nframes: " << loaded.meta["counters"].value("frames", int64_t{0})
            << "\nepisodes_per_level: " << f.episodes << "\nseed: " << f.seed
            << "\nactions: " << (f.sample ? "sampled" : "argmax")
            << "\nprecision: " << skills::ConvPrecisionName(loaded.model->ConvPrecision()) << "\n";
  std::printf("%-28s %8s %12s %10s\n", "level", "success", "mean_return", "length");
  for (const auto& l : e.levels) {
    std::printf("%-28s %8.3f %12.4f %10.2f\n", l.level.c_str(), l.success_rate, l.mean_return, l.mean_length);
  }
  std::printf("success_rate: %.4f\n", e.success_rate);
  return 0;
}

}  // namespace

void AddEvalCommand(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a trained run: per-level success, return and length");
  cmd->add_option("--run", f->run, "run directory (its newest checkpoint is used)");
  cmd->add_option("--checkpoint", f->checkpoint, "a checkpoint file instead of --run");
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
