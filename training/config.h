// Training configuration: one plain struct holding every knob (with its meaning and default),
// presets, validation with one-line errors, and JSON round-trips (config.json, checkpoints).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace skillgrid::training {

/// A configuration value that cannot be used; what() is one line naming the field.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The eight levels of Polytropon's BabyAI experiment, in its table's order (full ids).
const std::vector<std::string>& PolytroponSuite();

/// Everything a training run needs. Defaults are the `babyai` preset (BabyAI 1.1 PPO) on the
/// eight-level Polytropon suite with Poly skills.
struct TrainConfig {
  // --- run ---------------------------------------------------------------------------------
  /// Run directory (config.json, log.csv, eval.csv, checkpoints/, skills.json); "" = no files.
  std::string run_dir = "runs/main";
  /// Level ids trained together; task id = index in this list. Default: PolytroponSuite().
  std::vector<std::string> levels = PolytroponSuite();
  /// Total environment frames (steps summed over envs) to train for; rounded up to whole updates.
  /// The default (20M) is sized for about 30 minutes of the default job on 2 AVX-512 cores (small
  /// model, Poly, two update workers: ~16,000 frames/s with evaluations and checkpoints in the
  /// VMs' fast hours, so ~21 min; a slow hour took 29 min). On slower CPUs (~7,000 frames/s on an
  /// AVX2-only EPYC: 12.6M frames in 30 min) the main job's 30-minute budget (max_minutes) ends it.
  int64_t frames = 20'000'000;
  /// Wall-clock budget in minutes (0 = none, the default): training stops after the first update
  /// that ends past it, counting earlier sessions of a resumed run. Nothing in an update depends
  /// on the budget, so the run is a prefix of the same run with a larger one. `skillgrid train`
  /// without --frames or --minutes sets 30, so the main job ends in about 30 minutes on any CPU.
  double max_minutes = 0.0;
  /// Seed of everything: network init, action sampling, minibatch order, env streams.
  uint64_t seed = 1;
  /// Threads stepping envs, and for torch unless torch_threads says otherwise (0 = all cores).
  int threads = 0;
  /// Threads for torch intra-op parallelism (0 = auto: 1 for the small model, whose tiny ops
  /// only lose from OpenMP hand-offs, else `threads`).
  int torch_threads = 0;
  /// Threads splitting each PPO/A2C minibatch, every one running forward and backward on its
  /// own replica of the network; their gradients are summed in a fixed order, so a run stays
  /// reproducible for a given count (0 = auto: on CPU with one torch thread, `threads`; else 1).
  int update_workers = 0;
  /// Device of the network: "cpu" or "cuda" (envs always step on CPU threads).
  std::string device = "cpu";

  // --- model -------------------------------------------------------------------------------
  /// Architecture: bow_endpool_res (BabyAI 1.1) | expert_filmcnn (BabyAI 1.0) | small.
  std::string model = "small";
  /// Arithmetic of the image convolutions (bow_endpool_res, expert_filmcnn): "fp32" (default,
  /// the references') or "bf16" (mixed precision as torch.autocast: bfloat16 products with fp32
  /// accumulation, fp32 parameters; several times faster than fp32 on CPUs with AMX, ~1.8x on
  /// AVX512-BF16 CPUs without it, where 3x3 convolutions run as Winograd, see winograd_tile).
  /// The small model's fused trunk has only fp32.
  std::string precision = "fp32";
  /// Output tile of bf16's Winograd convolutions (AVX512-BF16 CPUs without AMX): "2x2", "2x4"
  /// or "4x4" (skills/winograd_conv.h: larger tiles multiply less and round more). Empty (the
  /// default): SKILLGRID_WINOGRAD_TILE, else 4x4. A bf16 run records the tile it used in its
  /// config.json, so --resume and `skillgrid eval` keep it.
  std::string winograd_tile;
  /// Router: none | shared | private | expert | poly | mhr | mu | adamix.
  std::string router = "poly";
  /// Skills per routed layer (Polytropon: 9).
  int64_t skills = 9;
  /// Skill inventory: lowrank | dense | sparse.
  std::string inventory = "lowrank";
  /// Rank of low-rank skills.
  int64_t rank = 8;
  /// Density of sparse skills in (0, 1] (Polytropon BabyAI: 0.1).
  double density = 0.1;
  /// Routing heads (MHR).
  int64_t heads = 1;
  /// Routed layer families, from conv, film, text, memory, heads (default: all).
  std::vector<std::string> families = {"conv", "film", "text", "memory", "heads"};

  // --- algorithm ---------------------------------------------------------------------------
  /// Algorithm: ppo | a2c.
  std::string algo = "ppo";
  /// Parallel environments (BabyAI --procs: 64).
  int num_envs = 64;
  /// Frames per env per update (BabyAI: 40; A2C: 8).
  int frames_per_env = 40;
  /// BPTT chunk length; must divide frames_per_env (BabyAI: 20).
  int recurrence = 20;
  /// PPO epochs per update (BabyAI: 4; A2C uses 1).
  int epochs = 4;
  /// PPO minibatch size in frames; must divide num_envs * frames_per_env and be a multiple of
  /// recurrence (BabyAI: 1280; A2C uses the whole rollout).
  int batch_size = 1280;
  /// Learning rate of the network (BabyAI: Adam 1e-4; A2C preset: RMSprop 7e-4).
  double lr = 1e-4;
  /// Learning rate of the routing logits, the fast half of the two-speed rate (default 1e-2,
  /// mttl's 100x ratio; Polytropon's BabyAI value is unpublished).
  double router_lr = 1e-2;
  /// Optimiser: adam (PPO) | rmsprop (A2C).
  std::string optimizer = "adam";
  /// Adam/RMSprop epsilon (BabyAI: 1e-5).
  double optim_eps = 1e-5;
  /// Adam betas (0.9, 0.999).
  double adam_beta1 = 0.9;
  /// Second Adam beta.
  double adam_beta2 = 0.999;
  /// RMSprop smoothing constant alpha (0.99).
  double rmsprop_alpha = 0.99;
  /// Discount gamma (0.99).
  double gamma = 0.99;
  /// GAE lambda (BabyAI: 0.99).
  double gae_lambda = 0.99;
  /// PPO clip epsilon for the policy ratio and the value change (0.2).
  double clip = 0.2;
  /// Clip the value loss as BabyAI does (max of clipped and unclipped squared errors).
  bool clip_value_loss = true;
  /// Entropy bonus coefficient (0.01).
  double entropy_coef = 0.01;
  /// Value loss coefficient (0.5).
  double value_coef = 0.5;
  /// Global gradient-norm clip (0.5).
  double max_grad_norm = 0.5;
  /// Reward multiplier inside the learner (BabyAI: 20); logs report unscaled returns.
  double reward_scale = 20.0;
  /// On truncation (time limit) add gamma * V(s_t) to the reward instead of treating it as a
  /// terminal. Off by default: BabyAI, torch-ac and CleanRL treat truncation as termination.
  bool bootstrap_truncated = false;
  /// Normalise advantages per minibatch (BabyAI: no).
  bool normalize_advantages = false;
  /// Weight of Polytropon's IBP prior on learned routing logits (0 = off).
  double ibp_weight = 0.0;

  // --- adaptation to new levels (Polytropon section 8) --------------------------------------------
  /// A run directory (its newest checkpoint) or a checkpoint file whose network starts this run:
  /// every parameter and buffer is copied except the routers', which start afresh for this run's
  /// levels (Poly logits U(+-init_range); the source's task rows are not kept). Model, routed
  /// families, skills, inventory, rank and heads must match the source. "" = from scratch.
  std::string init_from;
  /// Train only the routing logits; skills and base weights stay as --init-from left them
  /// (MHR-z adaptation; needs init_from and a learned router, poly or mhr). Default false.
  bool train_only_routing = false;

  // --- policy distillation ---------------------------------------------------------------------
  /// Teachers: run directories (their newest checkpoint) or checkpoint files of trained networks,
  /// frozen, whose policies this run's network learns to match on its own rollouts (Kickstarting;
  /// Czarnecki et al.'s student-sampled distillation). Each level is taught by the first teacher
  /// trained on it (matched by level id), and every level needs one; teachers may have any model
  /// and router. Empty (default) = no distillation.
  std::vector<std::string> teachers;
  /// Weight of the distillation term tau^2 * KL(teacher || student) in the loss (default 1).
  double distill_coef = 1.0;
  /// Temperature tau of both policies in the distillation KL (default 1; below 1 sharpens the teacher).
  double distill_temperature = 1.0;
  /// Frames over which distill_coef falls linearly to 0, so the student can go beyond its teachers
  /// (Kickstarting's annealing); 0 (default) keeps it constant.
  int64_t distill_anneal_frames = 0;
  /// Weight of (V_student - V_teacher)^2, the critic's distillation (default 0: the critic learns
  /// from rewards only; teachers' values are in their own reward scale).
  double distill_value_coef = 0.0;
  /// Weight of the PPO/A2C loss (default 1: distillation on top of reinforcement learning, as in
  /// Kickstarting; 0: pure distillation, rewards unused). Must be positive without teachers.
  double rl_coef = 1.0;

  // --- logging, checkpoints, evaluation ------------------------------------------------------
  /// Episodes per level kept in the rolling success/return window of log.csv and progress.
  int stats_window = 100;
  /// Updates between checkpoints (and skills.json snapshots).
  int save_interval = 10;
  /// Checkpoints kept (the newest K).
  int keep_checkpoints = 3;
  /// Updates between evaluations written to eval.csv (0 = never).
  int eval_interval = 50;
  /// Episodes per level in periodic evaluation.
  int eval_episodes = 20;
  /// Seed of evaluation episodes (BabyAI's validation seed: 1e9), disjoint from training streams.
  uint64_t eval_seed = 1'000'000'000;
  /// Levels the run does not train on, evaluated zero-shot at every periodic evaluation (eval.csv
  /// columns mean_unseen_success and success_/return_/length_<level>). Default none.
  std::vector<std::string> eval_unseen;
  /// Routing of the eval_unseen levels: mean (each router's average over the trained levels) |
  /// uniform (1/S over the skills, Poly-mu) | as:LEVEL (as that trained level). Default mean.
  std::string unseen_routing = "mean";
  /// Print a live progress line to stderr.
  bool progress = true;

  /// Checks every field; throws ConfigError with a one-line message on the first problem.
  /// Unknown level ids are reported with the closest valid ids.
  void Validate() const;
  /// Frames collected per update (num_envs * frames_per_env).
  int64_t frames_per_update() const { return static_cast<int64_t>(num_envs) * frames_per_env; }
  /// Number of updates needed to reach `frames`.
  int64_t total_updates() const { return (frames + frames_per_update() - 1) / frames_per_update(); }
  /// Whether the run distils teachers (teachers is not empty).
  bool distilling() const { return !teachers.empty(); }
  /// The distillation weight after `frames_done` frames (distill_coef, annealed when
  /// distill_anneal_frames > 0).
  double DistillCoefAt(int64_t frames_done) const;
  /// The resolved thread count (threads, or the core count when 0).
  int ResolvedThreads() const;
  /// The resolved torch thread count (see torch_threads).
  int ResolvedTorchThreads() const;
  /// update_workers with 0 resolved (see the field).
  int ResolvedUpdateWorkers() const;
  /// Full JSON form (every field).
  nlohmann::json ToJson() const;
  /// Reads a JSON form; missing fields keep their defaults, unknown fields are an error.
  static TrainConfig FromJson(const nlohmann::json& j);
};

/// A named preset: "babyai" (BabyAI PPO, the TrainConfig defaults), "small" (the main job: BabyAI
/// PPO on the small model with lr 1e-3, which learned fastest on 2 cores) or "a2c" (BabyAI's 2018
/// A2C: RMSprop 7e-4, eps 1e-5, 8 frames per env, recurrence 8, lambda 0.95, one step per update).
/// Throws ConfigError for an unknown name.
TrainConfig PresetConfig(const std::string& name);

/// The time budget of a run started without --frames or --minutes (the main job's 30 minutes).
constexpr double kDefaultMaxMinutes = 30.0;

/// Settles config->max_minutes from which budgets the command line gave: --frames alone means
/// "that many frames" (no time limit); neither gives a new run kDefaultMaxMinutes and leaves a
/// resumed run's own budget; --minutes is kept as given.
void ResolveTimeBudget(TrainConfig* config, bool frames_given, bool minutes_given, bool resuming);

/// Throws ConfigError unless `precision` (fp32 | bf16) applies to `model` (bf16 is refused for
/// the small model, whose fused trunk runs fp32 only).
void CheckPrecision(const std::string& precision, const std::string& model);

/// Throws ConfigError unless `device` is cpu, cuda or cuda:N.
void CheckDeviceName(const std::string& device);

/// CheckDeviceName, then for a CUDA device that this LibTorch sees a GPU (ConfigError otherwise).
void CheckDeviceAvailable(const std::string& device);

/// Short display name of a level id: "BabyAI-GoToObj-v0" -> "GoToObj".
std::string ShortLevelName(const std::string& id);

/// Checks level ids given with `flag` (e.g. "--levels"): each one registered, none listed twice.
/// Throws ConfigError, "<flag>: ...", naming the first bad id (unknown ids with the closest valid ones).
void CheckLevelIds(const std::vector<std::string>& ids, const std::string& flag);

}  // namespace skillgrid::training
