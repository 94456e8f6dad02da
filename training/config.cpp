#include "training/config.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <set>
#include <thread>

#include <torch/cuda.h>

#include "agents/actor_critic.h"
#include "envs/level.h"
#include "envs/state_io.h"
#include "skills/winograd_conv.h"
#include "training/evaluate.h"

namespace skillgrid::training {

namespace {

// Every field of TrainConfig, for JSON round-trips.
#define SKILLGRID_TRAIN_CONFIG_FIELDS(X)                                                              \
  X(run_dir) X(levels) X(frames) X(max_minutes) X(seed) X(threads) X(torch_threads) X(update_workers) X(device) X(model) X(precision) X(winograd_tile) X(router) X(skills) X(inventory) \
  X(rank) X(density) X(heads) X(families) X(algo) X(num_envs) X(frames_per_env) X(recurrence) X(epochs) \
  X(batch_size) X(lr) X(router_lr) X(optimizer) X(optim_eps) X(adam_beta1) X(adam_beta2)              \
  X(rmsprop_alpha) X(gamma) X(gae_lambda) X(clip) X(clip_value_loss) X(entropy_coef) X(value_coef)   \
  X(max_grad_norm) X(reward_scale) X(bootstrap_truncated) X(normalize_advantages) X(ibp_weight)      \
  X(stats_window) X(save_interval) X(keep_checkpoints) X(eval_interval) X(eval_episodes) X(eval_seed) \
  X(eval_unseen) X(unseen_routing) \
  X(progress) X(init_from) X(train_only_routing) X(teachers) X(distill_coef) X(distill_temperature)       \
  X(distill_anneal_frames) X(distill_value_coef) X(rl_coef)

[[noreturn]] void Fail(const std::string& message) { throw ConfigError(message); }

// A number as a user would type it ("-1", "0.0001"), not std::to_string's fixed six decimals.
std::string FormatNumber(double value) {
  std::ostringstream out;
  out << std::setprecision(10) << value;
  return out.str();
}

void RequirePositive(const char* name, double value) {
  if (!(value > 0.0) || !std::isfinite(value)) {
    Fail(std::string("--") + name + " must be a positive number, got " + FormatNumber(value));
  }
}

void RequireRange(const char* name, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) {
    Fail(std::string("--") + name + " must be in [" + FormatNumber(lo) + ", " + FormatNumber(hi) + "], got " +
         FormatNumber(value));
  }
}

}  // namespace

const std::vector<std::string>& PolytroponSuite() {
  static const std::vector<std::string> suite = {
      "BabyAI-GoToObj-v0",   "BabyAI-GoToRedBallGrey-v0", "BabyAI-GoToRedBall-v0",   "BabyAI-GoToLocal-v0",
      "BabyAI-PutNextLocal-v0", "BabyAI-PickupLoc-v0",   "BabyAI-GoToObjMaze-v0", "BabyAI-GoTo-v0"};
  return suite;
}

std::string ShortLevelName(const std::string& id) {
  std::string s = id;
  if (s.rfind("BabyAI-", 0) == 0) s = s.substr(7);
  const auto dash = s.rfind("-v");
  if (dash != std::string::npos) s = s.substr(0, dash);
  return s;
}

double TrainConfig::DistillCoefAt(int64_t frames_done) const {
  if (distill_anneal_frames <= 0) return distill_coef;
  const double left = 1.0 - static_cast<double>(frames_done) / static_cast<double>(distill_anneal_frames);
  return distill_coef * (left > 0.0 ? left : 0.0);
}

int TrainConfig::ResolvedThreads() const {
  if (threads > 0) return threads;
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int TrainConfig::ResolvedTorchThreads() const {
  if (torch_threads > 0) return torch_threads;
  return model == "small" ? 1 : ResolvedThreads();
}

int TrainConfig::ResolvedUpdateWorkers() const {
  if (update_workers > 0) return update_workers;
  return (device == "cpu" && ResolvedTorchThreads() == 1) ? ResolvedThreads() : 1;
}

void CheckLevelIds(const std::vector<std::string>& ids, const std::string& flag) {
  std::set<std::string> seen;
  for (const auto& id : ids) {
    if (!seen.insert(id).second) Fail(flag + ": level " + id + " is listed twice");
    try {
      envs::MakeLevel(id);
    } catch (const envs::InputError& e) {
      Fail(flag + ": " + e.what());
    }
  }
}

void TrainConfig::Validate() const {
  if (levels.empty()) Fail("--levels: at least one level is needed");
  CheckLevelIds(levels, "--levels");
  if (frames < 1) Fail("--frames must be >= 1, got " + std::to_string(frames));
  if (!(max_minutes >= 0.0) || !std::isfinite(max_minutes)) {
    Fail("--minutes must be a finite number >= 0 (0 = no time limit), got " + FormatNumber(max_minutes));
  }
  if (threads < 0) Fail("--threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
  if (torch_threads < 0) Fail("--torch-threads must be >= 0 (0 = auto), got " + std::to_string(torch_threads));
  if (update_workers < 0) Fail("--update-workers must be >= 0 (0 = auto), got " + std::to_string(update_workers));
  if (update_workers > 1 && device != "cpu") {
    Fail("--update-workers " + std::to_string(update_workers) + " needs --device cpu (a GPU runs one minibatch at a time)");
  }
  CheckDeviceName(device);
  CheckPrecision(precision, model);
  if (!winograd_tile.empty() && !skills::ParseWinogradTile(winograd_tile).has_value()) {
    Fail("--winograd-tile must be 2x2, 2x4 or 4x4 (or empty for the default), got '" + winograd_tile + "'");
  }
  if (algo != "ppo" && algo != "a2c") Fail("--algo must be ppo or a2c, got '" + algo + "'");
  if (optimizer != "adam" && optimizer != "rmsprop") Fail("--optimizer must be adam or rmsprop, got '" + optimizer + "'");
  if (num_envs < 1) Fail("--num-envs must be >= 1, got " + std::to_string(num_envs));
  if (frames_per_env < 1) Fail("--frames-per-env must be >= 1, got " + std::to_string(frames_per_env));
  if (recurrence < 1) Fail("--recurrence must be >= 1, got " + std::to_string(recurrence));
  if (frames_per_env % recurrence != 0) {
    Fail("--recurrence " + std::to_string(recurrence) + " does not divide --frames-per-env " +
         std::to_string(frames_per_env));
  }
  if (epochs < 1) Fail("--epochs must be >= 1, got " + std::to_string(epochs));
  if (batch_size < 1) Fail("--batch-size must be >= 1, got " + std::to_string(batch_size));
  if (algo == "ppo") {
    if (frames_per_update() % batch_size != 0) {
      Fail("--batch-size " + std::to_string(batch_size) + " does not divide the rollout of " +
           std::to_string(frames_per_update()) + " frames (num_envs x frames_per_env)");
    }
    if (batch_size % recurrence != 0) {
      Fail("--batch-size " + std::to_string(batch_size) + " is not a multiple of --recurrence " +
           std::to_string(recurrence));
    }
  }
  RequirePositive("lr", lr);
  RequirePositive("router-lr", router_lr);
  RequirePositive("optim-eps", optim_eps);
  RequireRange("adam-beta1", adam_beta1, 0.0, 0.999999);
  RequireRange("adam-beta2", adam_beta2, 0.0, 0.999999);
  RequireRange("rmsprop-alpha", rmsprop_alpha, 0.0, 0.999999);
  RequireRange("gamma", gamma, 0.0, 1.0);
  RequireRange("gae-lambda", gae_lambda, 0.0, 1.0);
  RequirePositive("clip", clip);
  RequireRange("entropy-coef", entropy_coef, 0.0, 1e6);
  RequireRange("value-coef", value_coef, 0.0, 1e6);
  RequirePositive("max-grad-norm", max_grad_norm);
  RequirePositive("reward-scale", reward_scale);
  RequireRange("ibp-weight", ibp_weight, 0.0, 1e6);
  if (stats_window < 1) Fail("--stats-window must be >= 1, got " + std::to_string(stats_window));
  if (save_interval < 1) Fail("--save-interval must be >= 1, got " + std::to_string(save_interval));
  if (keep_checkpoints < 1) Fail("--keep-checkpoints must be >= 1, got " + std::to_string(keep_checkpoints));
  if (eval_interval < 0) Fail("--eval-interval must be >= 0, got " + std::to_string(eval_interval));
  if (eval_episodes < 1) Fail("--eval-episodes must be >= 1, got " + std::to_string(eval_episodes));
  CheckLevelIds(eval_unseen, "--eval-unseen");
  for (const auto& id : eval_unseen) {
    if (std::find(levels.begin(), levels.end(), id) != levels.end()) {
      Fail("--eval-unseen: level " + id + " is also a training level (--levels)");
    }
  }
  if (!eval_unseen.empty() && eval_interval == 0) Fail("--eval-unseen needs periodic evaluation (--eval-interval > 0)");
  UnseenRouting::Parse(unseen_routing, levels);
  if (train_only_routing && init_from.empty()) {
    Fail("--train-only-routing adapts trained skills: it needs --init-from RUN_DIR (or a checkpoint)");
  }
  if (train_only_routing && router != "poly" && router != "mhr") {
    Fail("--train-only-routing needs a learned router (poly or mhr), got --router " + router);
  }
  RequireRange("distill-coef", distill_coef, 0.0, 1e6);
  RequirePositive("distill-temperature", distill_temperature);
  if (distill_anneal_frames < 0) {
    Fail("--distill-anneal-frames must be >= 0 (0 = no annealing), got " + std::to_string(distill_anneal_frames));
  }
  RequireRange("distill-value-coef", distill_value_coef, 0.0, 1e6);
  RequireRange("rl-coef", rl_coef, 0.0, 1e6);
  if (!distilling() && rl_coef == 0.0) Fail("--rl-coef 0 leaves nothing to learn without --teacher");
  if (distilling() && rl_coef == 0.0 && distill_coef == 0.0) {
    Fail("--rl-coef 0 with --distill-coef 0 leaves nothing to learn");
  }
  for (const auto& t : teachers) {
    if (t.empty()) Fail("--teacher: an empty path in the list");
  }
  try {
    agents::RoutingOptions r;
    r.router(router).n_tasks(static_cast<int64_t>(levels.size())).n_skills(skills).inventory(inventory).rank(rank);
    r.density(density).heads(heads).families(families).task_names(levels);
    agents::ModelOptions m(model);
    m.routing(r);
    m.Validate();
  } catch (const std::invalid_argument& e) {
    Fail(e.what());
  }
}

nlohmann::json TrainConfig::ToJson() const {
  nlohmann::json j;
#define SKILLGRID_TO_JSON(f) j[#f] = f;
  SKILLGRID_TRAIN_CONFIG_FIELDS(SKILLGRID_TO_JSON)
#undef SKILLGRID_TO_JSON
  return j;
}

TrainConfig TrainConfig::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) Fail("config JSON must be an object");
  TrainConfig c;
  std::set<std::string> known;
#define SKILLGRID_FROM_JSON(f)                                                                  \
  known.insert(#f);                                                                             \
  if (j.contains(#f)) {                                                                         \
    try {                                                                                       \
      j.at(#f).get_to(c.f);                                                                     \
    } catch (const nlohmann::json::exception&) {                                                \
      Fail(std::string("config field '") + #f + "' has the wrong type: " + j.at(#f).dump());    \
    }                                                                                           \
  }
  SKILLGRID_TRAIN_CONFIG_FIELDS(SKILLGRID_FROM_JSON)
#undef SKILLGRID_FROM_JSON
  for (const auto& item : j.items()) {
    if (known.count(item.key()) == 0) Fail("config has an unknown field '" + item.key() + "'");
  }
  return c;
}

void CheckPrecision(const std::string& precision, const std::string& model) {
  if (precision != "fp32" && precision != "bf16") Fail("--precision must be fp32 or bf16, got '" + precision + "'");
  if (precision == "bf16" && model == "small") {
    Fail("--precision bf16 applies to the convolutions of bow_endpool_res and expert_filmcnn; the small model runs fp32");
  }
}

void CheckDeviceName(const std::string& device) {
  if (device != "cpu" && device != "cuda" && device.rfind("cuda:", 0) != 0) {
    Fail("--device must be cpu or cuda, got '" + device + "'");
  }
}

void CheckDeviceAvailable(const std::string& device) {
  CheckDeviceName(device);
  if (device != "cpu" && !torch::cuda::is_available()) {
    Fail("--device " + device + ": no CUDA device is available to this build of LibTorch");
  }
}

TrainConfig PresetConfig(const std::string& name) {
  TrainConfig c;
  if (name == "babyai") return c;
  if (name == "small") {
    // Measured on 2 cores (Poly, eight-level suite, ~930k frames): lr 1e-3 reached mean success
    // 0.505 and 27,655 episodes; 5e-4 0.441 / 18,575; the BabyAI 1e-4 0.41 / 16,254.
    c.model = "small";
    c.lr = 1e-3;
    return c;
  }
  if (name == "a2c") {
    c.algo = "a2c";
    c.optimizer = "rmsprop";
    c.lr = 7e-4;
    c.optim_eps = 1e-5;
    c.frames_per_env = 8;
    c.recurrence = 8;
    c.epochs = 1;
    c.batch_size = c.num_envs * c.frames_per_env;
    c.gae_lambda = 0.95;
    c.save_interval = 50;
    c.eval_interval = 250;
    return c;
  }
  Fail("unknown preset '" + name + "' (valid: small, babyai, a2c)");
}

void ResolveTimeBudget(TrainConfig* config, bool frames_given, bool minutes_given, bool resuming) {
  if (minutes_given) return;
  if (frames_given) {
    config->max_minutes = 0.0;
  } else if (!resuming) {
    config->max_minutes = kDefaultMaxMinutes;
  }
}

}  // namespace skillgrid::training
