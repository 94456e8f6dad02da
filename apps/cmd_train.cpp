// `skillgrid train` (the main job) and `skillgrid bench train`.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"

#ifdef SKILLGRID_HAVE_TRAINING
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "skills/blas_runtime.h"
#include "skills/winograd_conv.h"
#include "training/bench.h"
#include "training/checkpoint.h"
#include "training/config.h"
#include "training/evaluate.h"
#include "training/trainer.h"
#ifdef SKILLGRID_HAVE_VIZ
#include "viz/plots.h"
#endif
#endif

namespace skillgrid::apps {

#ifdef SKILLGRID_HAVE_TRAINING
namespace {

using training::TrainConfig;

// The flags of `train`: values land in `flags`; `apply` copies those given on the command line
// onto the preset (or, with --resume, onto the run's saved config).
struct TrainFlags {
  TrainConfig flags;
  std::string preset = "small";
  std::string levels;
  std::string families;
  std::string teachers;
  std::string eval_unseen;
  bool resume = false;
  bool no_progress = false;
  std::vector<std::pair<CLI::Option*, std::function<void(TrainConfig&)>>> apply;
};

template <typename T>
void Flag(CLI::App* cmd, TrainFlags* f, const std::string& names, T TrainConfig::*field, const std::string& help) {
  CLI::Option* opt = cmd->add_option(names, f->flags.*field, help)->capture_default_str();
  f->apply.emplace_back(opt, [f, field](TrainConfig& c) { c.*field = f->flags.*field; });
}


// Writes the run's plots/ (learning curves, eval curves, routing heatmaps). Plotting never
// stops training: a failure is a one-line warning on stderr (clearing a live progress line).
void WritePlots(const std::string& run_dir, bool tty) {
#ifdef SKILLGRID_HAVE_VIZ
  std::vector<std::string> problems;
  try {
    problems = viz::WriteRunPlots(run_dir).errors;
  } catch (const std::exception& e) {
    problems.push_back(e.what());
  }
  for (auto& p : problems) {
    p = p.substr(0, p.find('\n'));
    std::cerr << (tty ? "\r\033[K" : "") << "skillgrid train: warning: plots not written: " << p << "\n";
  }
#else
  (void)run_dir;
  (void)tty;
#endif
}

// "30 minutes", "0.5 minutes".
std::string FormatMinutes(double minutes) {
  char text[64];
  std::snprintf(text, sizeof(text), "%g minute%s", minutes, minutes == 1.0 ? "" : "s");
  return text;
}

// Raised by the first SIGINT or SIGTERM during `train`; the trainer checkpoints the update in
// progress and returns. The handler resets itself, so a second signal ends the process at once.
std::atomic<bool> g_stop_requested{false};
std::atomic<int> g_stop_signal{0};

extern "C" void OnStopSignal(int sig) {
  g_stop_requested.store(true);
  g_stop_signal.store(sig);
  static const char kMessage[] = "\nskillgrid train: stopping after this update (signal again to quit at once)\n";
  const ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
}

// Installs OnStopSignal for SIGINT and SIGTERM while alive, restoring the previous handlers after.
class StopOnSignal {
 public:
  StopOnSignal() {
    g_stop_requested.store(false);
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    // SA_RESETHAND: the next signal takes the default action (the process ends). SA_RESTART: file
    // writes and waits under way carry on rather than fail with EINTR.
    action.sa_flags = SA_RESETHAND | SA_RESTART;
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopOnSignal() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// One line on stderr when --precision bf16 would run emulated on this CPU (slower than fp32).
void WarnIfBf16IsEmulated(const std::string& command, const std::string& precision, const std::string& device) {
  if (precision != "bf16" || device != "cpu" || skills::CpuHasNativeBf16()) return;
  std::cerr << "skillgrid " << command << ": warning: this CPU has no bfloat16 arithmetic (AVX512-BF16 or AMX), so "
            << "--precision bf16 convolutions run emulated, several times slower than fp32\n";
}

std::string DefaultRunDir(const TrainConfig& c) {
  return "runs/" + c.model + "-" + c.router + "-seed" + std::to_string(c.seed);
}

int RunTrain(TrainFlags& f) {
  TrainConfig config = training::PresetConfig(f.preset);
  config.run_dir = "";
  // A resumed run starts from its saved config.
  std::string run_dir;
  for (auto& [opt, set] : f.apply) {
    if (opt->get_name() == "--run-dir" && opt->count() > 0) run_dir = f.flags.run_dir;
  }
  if (f.resume) {
    if (run_dir.empty()) {
      TrainConfig probe = config;
      for (auto& [opt, set] : f.apply) {
        if (opt->count() > 0) set(probe);
      }
      run_dir = DefaultRunDir(probe);
    }
    const std::string path = (std::filesystem::path(run_dir) / "config.json").string();
    std::ifstream in(path);
    if (!in) throw training::RunError("cannot resume: " + path + " does not exist");
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) throw training::RunError("cannot resume: " + path + " is not valid JSON");
    config = TrainConfig::FromJson(j);
  }
  bool frames_given = false, minutes_given = false;
  for (auto& [opt, set] : f.apply) {
    if (opt->count() == 0) continue;
    set(config);
    frames_given |= opt->get_name() == "--frames";
    minutes_given |= opt->get_name() == "--minutes";
  }
  training::ResolveTimeBudget(&config, frames_given, minutes_given, f.resume);
  if (!f.levels.empty()) {
    config.levels.clear();
    for (const auto& l : SplitList(f.levels)) config.levels.push_back(FullLevelId(l));
  }
  if (!f.families.empty()) config.families = SplitList(f.families);
  if (!f.teachers.empty()) config.teachers = SplitList(f.teachers);
  if (!f.eval_unseen.empty()) {
    config.eval_unseen.clear();
    for (const auto& l : SplitList(f.eval_unseen)) config.eval_unseen.push_back(FullLevelId(l));
  }
  if (f.no_progress) config.progress = false;
  if (run_dir.empty()) run_dir = DefaultRunDir(config);
  config.run_dir = run_dir;

  training::Trainer trainer(config, f.resume);
  const TrainConfig& c = trainer.config();
  WarnIfBf16IsEmulated("train", c.precision, c.device);
  std::cerr << "skillgrid train: " << c.algo << " on " << c.levels.size() << " level(s), model " << c.model
            << " (" << trainer.model()->NumParameters() << (c.train_only_routing ? " trainable" : "") << " parameters), router " << c.router << ", "
            << c.ResolvedThreads() << " env / " << c.ResolvedTorchThreads() << " torch thread(s) x "
            << c.ResolvedUpdateWorkers() << " update worker(s), device " << c.device << ", "
            << c.total_updates() * c.frames_per_update() << " frames"
            << (c.max_minutes > 0 ? " or " + FormatMinutes(c.max_minutes) + ", whichever comes first" : "")
            << "; run directory " << c.run_dir;
  if (!c.init_from.empty()) {
    std::cerr << "; initialised from " << c.init_from << (c.train_only_routing ? " (only the routing trains)" : "");
  }
  if (trainer.updates() > 0) std::cerr << " (resumed at update " << trainer.updates() << ", " << trainer.frames() << " frames)";

  for (const auto& line : trainer.TeacherDescriptions()) std::cerr << "\n  teacher: " << line;
  if (c.distilling()) {
    std::cerr << "\n  distillation: " << c.distill_coef << " x tau^2 KL(teacher || student) at tau " << c.distill_temperature
              << (c.distill_anneal_frames > 0 ? ", annealed to 0 over " + std::to_string(c.distill_anneal_frames) + " frames" : "")
              << (c.distill_value_coef > 0 ? ", value matching " + std::to_string(c.distill_value_coef) : "") << ", RL loss x "
              << c.rl_coef;
  }
  std::cerr << "\n";
  const bool tty = isatty(fileno(stderr)) != 0;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  int64_t plotted_update = -1;
  StopOnSignal stop_on_signal;
  trainer.SetStopFlag(&g_stop_requested);
  trainer.Train([&](const training::UpdateStats& s) {
    if (s.update % c.save_interval == 0) {
      WritePlots(c.run_dir, tty);
      plotted_update = s.update;
    }
    if (!c.progress) return;
    const auto now = std::chrono::steady_clock::now();
    const bool final = trainer.stop_reason() != training::StopReason::kNone;
    if (tty) {
      std::cerr << "\r\033[K" << training::ProgressLine(c, s) << std::flush;
    } else if (final || now - last_print > std::chrono::seconds(10)) {
      std::cerr << training::ProgressLine(c, s) << "\n";
      last_print = now;
    }
  });
  if (c.progress && tty) std::cerr << "\n";
  if (plotted_update != trainer.updates()) WritePlots(c.run_dir, false);
  const training::UpdateStats& s = trainer.last_stats();
  if (s.update == 0) {  // nothing ran in this session (a finished run resumed): no stats to report
    if (trainer.stop_reason() == training::StopReason::kTimeBudget) {
      std::cerr << "skillgrid train: the run has used its time budget of " << FormatMinutes(c.max_minutes)
                << "; nothing to train (resume with --minutes M for more time, or --frames N without a time limit)\n";
    }
    std::cout << "frames: " << trainer.frames() << "\nupdates: " << trainer.updates() << "\nrun_dir: " << c.run_dir << "\n";
    return 0;
  }
  std::cout << "frames: " << trainer.frames() << "\nupdates: " << trainer.updates() << "\nepisodes: " << s.episodes
            << "\nseconds: " << s.duration_s << "\nrun_dir: " << c.run_dir << "\n";
  int exit_code = 0;
  if (trainer.stop_reason() == training::StopReason::kStopFlag) {
    const int sig = g_stop_signal.load();
    std::cout << "stopped: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << " after update " << trainer.updates()
              << ", checkpointed; --resume continues\n";
    exit_code = 128 + sig;  // the shell's convention for a run ended by that signal
  } else if (trainer.stop_reason() == training::StopReason::kTimeBudget) {
    std::cout << "stopped: time budget of " << FormatMinutes(c.max_minutes) << " reached before "
              << c.total_updates() * c.frames_per_update() << " frames\n";
  }
  for (size_t i = 0; i < c.levels.size() && i < s.success.size(); ++i) {
    if (std::isnan(s.success[i])) {  // no episode of this level has finished yet
      std::printf("%-28s success -      return -      episodes 0\n", c.levels[i].c_str());
      continue;
    }
    std::printf("%-28s success %.3f  return %.3f  episodes %lld\n", c.levels[i].c_str(), s.success[i], s.returns[i],
                static_cast<long long>(s.level_episodes[i]));
  }
  std::cout << "mean_success: " << s.mean_success << "\n";
  if (c.distilling() && !std::isnan(s.distill_kl)) std::cout << "distill_kl: " << s.distill_kl << "\n";
  return exit_code;
}

int Guarded(const char* what, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    std::cerr << "\nskillgrid " << what << ": error: " << msg << "\n";
    return 1;
  }
}

}  // namespace

void AddTrainCommand(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train a multitask agent with routed skills. With no flags: the eight-level Polytropon suite, "
      "Poly skills, the small model, BabyAI PPO hyperparameters with lr 1e-3 (--preset small), all cores, 20M "
      "frames or 30 minutes, whichever comes first");
  TrainFlags* p = f.get();
  cmd->add_option("--preset", f->preset, "hyperparameter preset: small (BabyAI PPO, small model, lr 1e-3: the main job) | babyai (BabyAI PPO, lr 1e-4) | a2c")->capture_default_str();
  cmd->add_option("--levels", f->levels,
                  "comma-separated level ids or short names (default: GoToObj, GoToRedBallGrey, GoToRedBall, "
                  "GoToLocal, PutNextLocal, PickupLoc, GoToObjMaze, GoTo)");
  Flag(cmd, p, "--frames,--total-timesteps", &TrainConfig::frames,
       "environment frames to train for (without --frames: 20M, or 30 minutes if that comes first)");
  Flag(cmd, p, "--minutes", &TrainConfig::max_minutes,
       "wall-clock budget: stop after the first update past it, resumed sessions included (0 = none); "
       "--resume keeps the run's own");
  cmd->get_option("--minutes")->default_str("30, or 0 with --frames");
  Flag(cmd, p, "--seed", &TrainConfig::seed, "seed of everything");
  Flag(cmd, p, "--run-dir", &TrainConfig::run_dir, "run directory");
  cmd->get_option("--run-dir")->default_str("runs/<model>-<router>-seed<seed>");
  Flag(cmd, p, "--device", &TrainConfig::device,
       "network device: cpu | cuda (envs always step on CPU). A GPU wants thousands of envs with minibatches "
       "grown alike: bow_endpool_res ran ~2,600 frames/s on an H200 with BabyAI's 64 envs, ~66,000 with "
       "--num-envs 4096 --batch-size 81920 --precision bf16");
  Flag(cmd, p, "--threads", &TrainConfig::threads, "env threads, and torch threads unless --torch-threads (0 = all cores)");
  Flag(cmd, p, "--torch-threads", &TrainConfig::torch_threads, "torch intra-op threads (0 = auto: 1 for the small model)");
  Flag(cmd, p, "--update-workers", &TrainConfig::update_workers,
       "threads splitting each minibatch, each on its own copy of the network (0 = auto: --threads on CPU with one "
       "torch thread, else 1)");
  cmd->add_flag("--resume", f->resume, "continue the run in --run-dir from its last checkpoint");
  Flag(cmd, p, "--algo", &TrainConfig::algo, "ppo | a2c");
  Flag(cmd, p, "--model,--arch", &TrainConfig::model, "bow_endpool_res | expert_filmcnn | small");
  Flag(cmd, p, "--precision", &TrainConfig::precision,
       "arithmetic of the image convolutions: fp32 | bf16 (mixed precision, bfloat16 products with fp32 "
       "accumulation; several times faster on CPUs with AMX, ~1.8x fp32 on AVX512-BF16 CPUs without AMX, whose 3x3 "
       "convolutions run as Winograd with 4x4 tiles (SKILLGRID_WINOGRAD_TILE=2x2 rounds less, runs slower); "
       "not for the small model)");
  Flag(cmd, p, "--winograd-tile", &TrainConfig::winograd_tile,
       "output tile of bf16's Winograd convolutions on AVX512-BF16 CPUs without AMX: 2x2 | 2x4 | 4x4 (larger: "
       "fewer multiplies, more rounding; empty: SKILLGRID_WINOGRAD_TILE, else 4x4); recorded in config.json");
  Flag(cmd, p, "--router", &TrainConfig::router, "none | shared | private | expert | poly | mhr | mu | adamix");
  Flag(cmd, p, "--skills", &TrainConfig::skills, "skills per routed layer");
  Flag(cmd, p, "--inventory", &TrainConfig::inventory, "lowrank | dense | sparse");
  Flag(cmd, p, "--rank", &TrainConfig::rank, "rank of low-rank skills");
  Flag(cmd, p, "--density", &TrainConfig::density, "density of sparse skills");
  Flag(cmd, p, "--heads", &TrainConfig::heads, "routing heads (MHR)");
  cmd->add_option("--families", f->families, "routed layer families, comma-separated (default: conv,film,text,memory,heads)");
  Flag(cmd, p, "--num-envs,--procs", &TrainConfig::num_envs, "parallel environments");
  Flag(cmd, p, "--frames-per-env,--frames-per-proc,--num-steps", &TrainConfig::frames_per_env, "frames per env per update");
  Flag(cmd, p, "--recurrence", &TrainConfig::recurrence, "BPTT chunk length");
  Flag(cmd, p, "--epochs,--update-epochs", &TrainConfig::epochs, "PPO epochs per update");
  Flag(cmd, p, "--batch-size", &TrainConfig::batch_size, "PPO minibatch size in frames");
  Flag(cmd, p, "--lr,--learning-rate", &TrainConfig::lr, "learning rate of the network");
  Flag(cmd, p, "--router-lr", &TrainConfig::router_lr, "learning rate of the routing logits (two-speed)");
  Flag(cmd, p, "--optimizer", &TrainConfig::optimizer, "adam | rmsprop");
  Flag(cmd, p, "--optim-eps", &TrainConfig::optim_eps, "optimiser epsilon");
  Flag(cmd, p, "--gamma", &TrainConfig::gamma, "discount");
  Flag(cmd, p, "--gae-lambda", &TrainConfig::gae_lambda, "GAE lambda");
  Flag(cmd, p, "--clip,--clip-coef", &TrainConfig::clip, "PPO clip epsilon");
  Flag(cmd, p, "--entropy-coef,--ent-coef", &TrainConfig::entropy_coef, "entropy bonus");
  Flag(cmd, p, "--value-coef,--vf-coef", &TrainConfig::value_coef, "value loss weight");
  Flag(cmd, p, "--max-grad-norm", &TrainConfig::max_grad_norm, "gradient norm clip");
  Flag(cmd, p, "--reward-scale", &TrainConfig::reward_scale, "reward multiplier in the learner");
  Flag(cmd, p, "--bootstrap-truncated", &TrainConfig::bootstrap_truncated,
       "bootstrap on time-limit truncation (default off: BabyAI treats it as termination)");
  Flag(cmd, p, "--norm-adv", &TrainConfig::normalize_advantages, "normalise advantages per minibatch");
  Flag(cmd, p, "--clip-vloss", &TrainConfig::clip_value_loss, "clip the value loss");
  Flag(cmd, p, "--ibp-weight", &TrainConfig::ibp_weight, "weight of the IBP prior on routing logits");
  Flag(cmd, p, "--init-from", &TrainConfig::init_from,
       "adaptation to new levels: start from this run directory's newest checkpoint (or a checkpoint file), every "
       "weight but the routers', which start afresh for --levels; same --model, --skills, --inventory, --rank, "
       "--heads. Polytropon's modes: --router poly (skills and routing train), --train-only-routing 1 (MHR-z), "
       "--router mu (Poly-mu: the skills' average trains)");
  Flag(cmd, p, "--train-only-routing", &TrainConfig::train_only_routing,
       "with --init-from and a poly or mhr router: train only the routing logits, skills and base frozen (MHR-z)");
  cmd->add_option("--teacher", f->teachers,
                  "policy distillation: comma-separated run directories (newest checkpoint) or checkpoint files of "
                  "trained networks, any model or router; the student learns to match them on its own rollouts, "
                  "each level from the first teacher trained on it (every level needs one)");
  Flag(cmd, p, "--distill-coef", &TrainConfig::distill_coef, "weight of tau^2 KL(teacher || student) in the loss");
  Flag(cmd, p, "--distill-temperature", &TrainConfig::distill_temperature,
       "temperature tau of both policies in the distillation KL");
  Flag(cmd, p, "--distill-anneal-frames", &TrainConfig::distill_anneal_frames,
       "frames over which --distill-coef falls linearly to 0, so the student can go beyond its teachers (0 = constant)");
  Flag(cmd, p, "--distill-value-coef", &TrainConfig::distill_value_coef,
       "weight of (V_student - V_teacher)^2 (0 = the critic learns from rewards only)");
  Flag(cmd, p, "--rl-coef", &TrainConfig::rl_coef,
       "weight of the PPO/A2C loss (1 = distillation on top of RL, as Kickstarting; 0 = pure distillation)");
  Flag(cmd, p, "--save-interval", &TrainConfig::save_interval, "updates between checkpoints");
  Flag(cmd, p, "--keep-checkpoints", &TrainConfig::keep_checkpoints, "checkpoints kept");
  Flag(cmd, p, "--eval-interval", &TrainConfig::eval_interval, "updates between evaluations (0 = never)");
  Flag(cmd, p, "--eval-episodes", &TrainConfig::eval_episodes, "episodes per level per evaluation");
  cmd->add_option("--eval-unseen", f->eval_unseen,
                  "comma-separated levels the run does not train on, evaluated zero-shot with every periodic "
                  "evaluation (eval.csv: mean_unseen_success and per-level columns)");
  Flag(cmd, p, "--unseen-routing", &TrainConfig::unseen_routing,
       "routing of the --eval-unseen levels: mean (each router's average over the trained levels) | uniform (1/S "
       "over the skills, as Poly-mu) | as:LEVEL (as that trained level's task)");
  Flag(cmd, p, "--stats-window", &TrainConfig::stats_window, "episodes per level in the rolling success window");
  cmd->add_flag("--no-progress", f->no_progress, "no live progress line");
  cmd->callback([f, exit_code] { *exit_code = Guarded("train", [&] { return RunTrain(*f); }); });
}

void AddTrainBenchCommand(CLI::App& bench, int* exit_code) {
  auto o = std::make_shared<training::TrainBenchOptions>();
  auto levels = std::make_shared<std::string>();
  CLI::App* cmd = bench.add_subcommand(
      "train",
      "The whole PPO loop (rollout + update, BabyAI hyperparameters, eight-level suite, Poly skills) for a fixed "
      "number of updates; prints frames_per_sec");
  cmd->add_option("--model", o->model, "bow_endpool_res | expert_filmcnn | small")->capture_default_str();
  cmd->add_option("--router", o->router, "router (none for the plain network)")->capture_default_str();
  cmd->add_option("--precision", o->precision, "convolution arithmetic: fp32 | bf16 (see train --help)")
      ->capture_default_str();
  cmd->add_option("--updates", o->updates, "timed updates")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "untimed warm-up updates")->capture_default_str();
  cmd->add_option("--threads", o->threads, "threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--torch-threads", o->torch_threads, "torch threads (0 = auto)")->capture_default_str();
  cmd->add_option("--update-workers", o->update_workers,
                  "threads splitting each minibatch (0 = auto: all cores with one torch thread, else 1)")
      ->capture_default_str();
  cmd->add_option("--device", o->device, "cpu | cuda (on a GPU measure at scale, e.g. --num-envs 4096 --batch-size 81920)")
      ->capture_default_str();
  cmd->add_option("--num-envs", o->num_envs, "parallel environments")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size,
                  "PPO minibatch in frames (0: BabyAI's 1280, or the rollout when smaller); must divide the rollout "
                  "(num-envs x 40) and be a multiple of the recurrence (20)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed")->capture_default_str();
  cmd->add_option("--levels", *levels, "comma-separated levels (default: the Polytropon suite)");
  cmd->add_flag("--phases", o->phases,
                "also print where the time goes: seconds and ATen operators per update of each phase (rollout, "
                "update parts); on a GPU each phase boundary synchronises the device");
  cmd->callback([o, levels, exit_code] {
    *exit_code = Guarded("bench train", [&] {
      if (!levels->empty()) {
        o->levels.clear();
        for (const auto& l : SplitList(*levels)) o->levels.push_back(FullLevelId(l));
      }
      WarnIfBf16IsEmulated("bench train", o->precision, o->device);
      const training::TrainBenchResult r = training::RunTrainBench(*o);
      std::printf(
          "model: %s\nprecision: %s\nrouter: %s\nparameters: %lld\nthreads: %d\ndevice: %s\nnum_envs: %d\nbatch_size: %d\n"
          "updates: %d\nframes: %lld\n"
          "seconds: %.3f\nrollout_share: %.3f\nest_gflop_per_frame: %.4g\nest_gflops: %.1f\nframes_per_sec: %.1f\n",
          o->model.c_str(), o->precision.c_str(), o->router.c_str(), static_cast<long long>(r.parameters), r.threads, o->device.c_str(),
          o->num_envs, r.batch_size, o->updates, static_cast<long long>(r.frames), r.seconds, r.rollout_share,
          r.flops_per_frame / 1e9, r.gflops, r.frames_per_sec);
      std::vector<double> sorted = r.update_frames_per_sec;
      std::sort(sorted.begin(), sorted.end());
      const size_t mid = sorted.size() / 2;
      const double median = sorted.size() % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
      std::printf("update_frames_per_sec: min %.1f, median %.1f, max %.1f\n", sorted.front(), median, sorted.back());
      const std::string blas_core = skills::BlasCoreName();
      if (!blas_core.empty()) std::printf("blas_core: %s (OpenBLAS kernels)\n", blas_core.c_str());
      if (o->precision == "bf16" && o->device == "cpu" && skills::WinogradConvPreferred()) {
        std::printf("winograd_tile: %s (SKILLGRID_WINOGRAD_TILE)\n", skills::WinogradTileName(skills::WinogradBf16Tile()));
      }
      if (o->device != "cpu") std::printf("peak_gflops: not estimated (the update ran on %s)\n", o->device.c_str());
      if (!r.phase_report.empty()) std::printf("%s", r.phase_report.c_str());
      if (r.peak_gflops > 0.0) {
        std::printf("torch_threads: %d\nupdate_workers: %d\npeak_gflops_fp32: %.1f (%s)\nshare_of_peak: %.3f\n", r.torch_threads,
                    r.update_workers, r.peak_gflops, r.peak_formula.c_str(), r.gflops / r.peak_gflops);
      }
      if (r.peak_gflops_bf16 > 0.0) {
        std::printf("peak_gflops_bf16: %.1f (%s)\nshare_of_bf16_peak: %.3f\n", r.peak_gflops_bf16,
                    r.peak_formula_bf16.c_str(), r.gflops / r.peak_gflops_bf16);
      }
      return 0;
    });
  });
}

void AddConvBenchCommand(CLI::App& bench, int* exit_code) {
  auto o = std::make_shared<training::ConvBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "conv",
      "One 3x3 convolution of bow_endpool_res's trunk (rows x channels x size x size), forward and backward, "
      "with the kernels the model uses; prints milliseconds, GFLOP/s against the machine's peak and the error "
      "against fp32");
  cmd->add_option("--rows", o->rows, "batch rows (160: one task's share of a 1280-row minibatch)")
      ->capture_default_str();
  cmd->add_option("--channels", o->channels, "input and output channels")->capture_default_str();
  cmd->add_option("--size", o->size, "map height and width")->capture_default_str();
  cmd->add_option("--iterations", o->iterations, "timed calls of each kind (the median is printed)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "torch threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--precision", o->precision, "fp32 | bf16")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the random operands")->capture_default_str();
  cmd->callback([o, exit_code] {
    *exit_code = Guarded("bench conv", [&] {
      const training::ConvBenchResult r = training::RunConvBench(*o);
      std::printf(
          "shape: %d x %d x %d x %d, 3x3 kernel, stride 1, padding 1\nprecision: %s\nthreads: %d\n"
          "forward_kernel: %s\nweight_grad_kernel: %s\ndirect_gflop: %.4f\nforward_ms: %.3f\nforward_gflops: %.1f\n"
          "backward_ms: %.3f\nbackward_gflops: %.1f\nrelative_error: %.2e\n",
          o->rows, o->channels, o->size, o->size, o->precision.c_str(), r.threads, r.forward_kernel.c_str(),
          r.weight_grad_kernel.c_str(), r.direct_gflop, r.forward_ms, r.forward_gflops, r.backward_ms,
          r.backward_gflops, r.relative_error);
      if (r.forward_kernel == "winograd") {
        // fp32 runs F(4x4, 3x3); bf16 F(MH x MW, 3x3) for its tile: (MH + 2)(MW + 2) multiplies
        // per MH x MW output tile, where a direct convolution needs 9 per output cell.
        const skills::WinogradTile bf16_tile = skills::WinogradBf16Tile();
        const auto [mh, mw] = o->precision == "fp32" ? std::pair<int64_t, int64_t>{4, 4} : skills::WinogradTileSize(bf16_tile);
        if (o->precision == "bf16") std::printf("winograd_tile: %s\n", skills::WinogradTileName(bf16_tile));
        const double tiles = static_cast<double>((o->size + mh - 1) / mh * ((o->size + mw - 1) / mw));
        std::printf("winograd_multiplies_per_direct: %.3f (a Winograd share of peak above 1 counts direct FLOPs)\n",
                    tiles * static_cast<double>((mh + 2) * (mw + 2)) / (9.0 * o->size * o->size));
      }
      if (r.peak_gflops > 0.0) {
        std::printf("peak_gflops: %.1f (%s)\nforward_share_of_peak: %.3f\nbackward_share_of_peak: %.3f\n",
                    r.peak_gflops, r.peak_formula.c_str(), r.forward_gflops / r.peak_gflops,
                    r.backward_gflops / r.peak_gflops);
      }
      return 0;
    });
  });
}

#else  // no LibTorch: the commands say so plainly and exit non-zero.

void AddTrainCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("train", "Train a multitask agent (needs a build with LibTorch)");
  cmd->allow_extras();
  cmd->callback([exit_code] {
    std::cerr << "skillgrid train: this build has no LibTorch, so no trainer\n";
    *exit_code = 2;
  });
}

void AddTrainBenchCommand(CLI::App& bench, int* exit_code) {
  CLI::App* cmd = bench.add_subcommand("train", "Training throughput (needs a build with LibTorch)");
  cmd->allow_extras();
  cmd->callback([exit_code] {
    std::cerr << "skillgrid bench train: this build has no LibTorch\n";
    *exit_code = 2;
  });
}

void AddConvBenchCommand(CLI::App& bench, int* exit_code) {
  CLI::App* cmd = bench.add_subcommand("conv", "Convolution throughput (needs a build with LibTorch)");
  cmd->allow_extras();
  cmd->callback([exit_code] {
    std::cerr << "skillgrid bench conv: this build has no LibTorch\n";
    *exit_code = 2;
  });
}

#endif

}  // namespace skillgrid::apps
