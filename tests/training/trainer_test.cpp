// Trainer tests: config validation, optimiser groups, recurrence masking, the run directory,
// exact resumption, and clear errors for bad input.
#include "training/trainer.h"

#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <fstream>
#include <sstream>

#include <torch/optim/optimizer.h>

#include "skills/router.h"
#include "skills/training_helpers.h"
#include "skills/winograd_conv.h"
#include "training/checkpoint.h"
#include "training/config.h"
#include "tests/cuda_util.h"
#include "tests/training/test_util.h"

namespace skillgrid::training {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("skillgrid_training_test_" + name);
  fs::remove_all(p);
  return p.string();
}

// A tiny two-level run: 8 envs x 8 frames per update.
TrainConfig Tiny(const std::string& dir) {
  TrainConfig c;
  c.run_dir = dir;
  c.levels = {"BabyAI-GoToRedBallNoDists-v0", "BabyAI-GoToObjS4-v0"};
  c.model = "small";
  c.router = "poly";
  c.skills = 3;
  c.rank = 2;
  c.num_envs = 8;
  c.frames_per_env = 8;
  c.recurrence = 4;
  c.batch_size = 32;
  c.epochs = 2;
  c.frames = 6 * 64;
  c.threads = 2;
  c.save_interval = 2;
  c.eval_interval = 2;
  c.eval_episodes = 2;
  c.progress = false;
  return c;
}

// Tiny() on bow_endpool_res in bf16 precision, four envs, no periodic evaluation.
TrainConfig TinyBf16Bow(const std::string& dir) {
  TrainConfig c = Tiny(dir);
  c.model = "bow_endpool_res";
  c.precision = "bf16";
  c.num_envs = 4;
  c.batch_size = 16;
  c.eval_interval = 0;
  return c;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Drops the wall-clock columns (duration_s, fps) of log.csv rows.
std::vector<std::string> WithoutTimes(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) {
    std::stringstream ss(l);
    std::string field, kept;
    for (int i = 0; std::getline(ss, field, ','); ++i) {
      if (i == 3 || i == 4) continue;
      kept += field + ",";
    }
    out.push_back(kept);
  }
  return out;
}

TEST(Config, DefaultsAreTheBabyAIPreset) {
  const TrainConfig c = PresetConfig("babyai");
  EXPECT_EQ(c.num_envs, 64);
  EXPECT_EQ(c.frames_per_env, 40);
  EXPECT_EQ(c.recurrence, 20);
  EXPECT_EQ(c.epochs, 4);
  EXPECT_EQ(c.batch_size, 1280);
  EXPECT_DOUBLE_EQ(c.lr, 1e-4);
  EXPECT_DOUBLE_EQ(c.optim_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.gae_lambda, 0.99);
  EXPECT_DOUBLE_EQ(c.reward_scale, 20.0);
  EXPECT_EQ(c.levels.size(), 8u);
  EXPECT_NO_THROW(c.Validate());
  EXPECT_NO_THROW(PresetConfig("a2c").Validate());
  // The main job's preset differs from BabyAI PPO only in the model and the learning rate.
  TrainConfig small = PresetConfig("small");
  EXPECT_EQ(small.model, "small");
  EXPECT_DOUBLE_EQ(small.lr, 1e-3);
  small.lr = c.lr;
  small.model = c.model;
  EXPECT_EQ(small.ToJson(), c.ToJson());
}

TEST(Config, BadValuesGiveOneLineErrors) {
  auto error = [](auto mutate) {
    TrainConfig c = Tiny("");
    mutate(c);
    return ErrorOf([&] { c.Validate(); });
  };
  // Values read as the user typed them, not with std::to_string's six fixed decimals.
  EXPECT_NE(error([](TrainConfig& c) { c.lr = -1e-4; }).find("--lr must be a positive number, got -0.0001"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.batch_size = 48; }).find("does not divide the rollout"), std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.recurrence = 3; }).find("does not divide --frames-per-env"), std::string::npos);
  const std::string level = error([](TrainConfig& c) { c.levels = {"BabyAI-GoToLocl-v0"}; });
  EXPECT_NE(level.find("unknown level"), std::string::npos) << level;
  EXPECT_NE(level.find("GoToLocal"), std::string::npos) << level;
  EXPECT_NE(error([](TrainConfig& c) { c.algo = "dqn"; }).find("--algo"), std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.router = "magic"; }).find("unknown router"), std::string::npos);
  const std::string gamma = error([](TrainConfig& c) { c.gamma = 1.5; });
  EXPECT_NE(gamma.find("--gamma must be in [0, 1], got 1.5"), std::string::npos) << gamma;
  EXPECT_NE(error([](TrainConfig& c) { c.device = "tpu"; }).find("--device"), std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.update_workers = -1; }).find("--update-workers must be >= 0"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) {
              c.update_workers = 2;
              c.device = "cuda";
            }).find("needs --device cpu"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.precision = "fp16"; }).find("--precision must be fp32 or bf16"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.precision = "bf16"; }).find("the small model runs fp32"), std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.winograd_tile = "3x3"; }).find("--winograd-tile must be 2x2, 2x4 or 4x4"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.rl_coef = 0.0; }).find("--rl-coef 0 leaves nothing to learn without --teacher"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) {
              c.teachers = {"runs/teacher"};
              c.distill_temperature = 0.0;
            }).find("--distill-temperature must be a positive number, got 0"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.distill_anneal_frames = -5; }).find("--distill-anneal-frames must be >= 0"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.teachers = {"runs/a", ""}; }).find("--teacher: an empty path"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.eval_unseen = {"BabyAI-GoToObjS4-v0"}; })
                .find("--eval-unseen: level BabyAI-GoToObjS4-v0 is also a training level"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.eval_unseen = {"BabyAI-GoToDoor-v0", "BabyAI-GoToDoor-v0"}; })
                .find("--eval-unseen: level BabyAI-GoToDoor-v0 is listed twice"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.eval_unseen = {"BabyAI-GoToDor-v0"}; }).find("--eval-unseen: unknown level"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) {
              c.eval_unseen = {"BabyAI-GoToDoor-v0"};
              c.eval_interval = 0;
            }).find("--eval-unseen needs periodic evaluation"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.unseen_routing = "median"; }).find("--unseen-routing must be mean, uniform or as:LEVEL"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.unseen_routing = "as:GoToDoor"; }).find("'GoToDoor' is not a trained level"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.max_minutes = -1; }).find("--minutes must be a finite number >= 0"),
            std::string::npos);
  EXPECT_NE(error([](TrainConfig& c) { c.max_minutes = std::nan(""); }).find("--minutes must be a finite number >= 0"),
            std::string::npos);
  for (const auto& e : {error([](TrainConfig& c) { c.lr = -1; }), error([](TrainConfig& c) { c.batch_size = 48; })}) {
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
}

TEST(Config, FramesAloneLiftTheTimeBudgetAndNeitherGivesANewRunTheMainJobsThirtyMinutes) {
  auto resolved = [](double saved, bool frames_given, bool minutes_given, bool resuming) {
    TrainConfig c;
    c.max_minutes = saved;  // a resumed run's own budget, or the value of --minutes
    ResolveTimeBudget(&c, frames_given, minutes_given, resuming);
    return c.max_minutes;
  };
  EXPECT_EQ(TrainConfig().max_minutes, 0.0);  // the library sets no time limit of its own
  EXPECT_EQ(resolved(0, false, false, false), kDefaultMaxMinutes);
  EXPECT_EQ(kDefaultMaxMinutes, 30.0);
  EXPECT_EQ(resolved(30, true, false, false), 0.0);
  EXPECT_EQ(resolved(12, true, true, false), 12.0);
  EXPECT_EQ(resolved(12, false, true, false), 12.0);
  EXPECT_EQ(resolved(12, false, false, true), 12.0);  // --resume alone keeps the run's budget
  EXPECT_EQ(resolved(12, true, false, true), 0.0);    // --resume --frames N trains to N frames
}

TEST(Config, JsonRoundTripAndUnknownFields) {
  TrainConfig c = Tiny("x");
  c.lr = 3e-4;
  EXPECT_EQ(TrainConfig::FromJson(c.ToJson()).ToJson(), c.ToJson());
  nlohmann::json j = c.ToJson();
  j["learning_rat"] = 1;
  EXPECT_NE(ErrorOf([&] { TrainConfig::FromJson(j); }).find("unknown field 'learning_rat'"), std::string::npos);
}

TEST(Optimiser, TwoSpeedGroupsForLearnedRouters) {
  TrainConfig c = Tiny("");
  c.lr = 1e-4;
  c.router_lr = 1e-2;
  agents::ModelOptions o("small");
  o.routing(agents::RoutingOptions().router("poly").n_tasks(2).n_skills(3).rank(2));
  agents::ActorCritic model(o);
  auto opt = MakeOptimizer(*model, c);
  ASSERT_EQ(opt->param_groups().size(), 2u);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 1e-4);
  EXPECT_DOUBLE_EQ(opt->param_groups()[1].options().get_lr(), 1e-2);
  EXPECT_EQ(opt->param_groups()[1].params().size(), model->RouterParameters().size());
  EXPECT_EQ(opt->param_groups()[0].params().size() + opt->param_groups()[1].params().size(),
            model->parameters().size());
  // A fixed router (shared) has nothing to learn in the fast group.
  agents::ModelOptions s("small");
  s.routing(agents::RoutingOptions().router("shared").n_tasks(2));
  agents::ActorCritic shared(s);
  EXPECT_EQ(MakeOptimizer(*shared, c)->param_groups().size(), 1u);
}

TEST(Recurrence, MaskCutsMemoryAndGradientAtEpisodeBoundaries) {
  at::manual_seed(3);
  agents::ModelOptions o("small");
  agents::ActorCritic model(o);
  const int64_t c = 2, r = 4, h = o.memory_dim();
  const at::Tensor gates = at::randn({c, r, 4 * h}).requires_grad_(true);
  const at::Tensor start = at::randn({c, 2 * h});
  at::Tensor masks = at::ones({c, r});
  masks[0][2] = 0.0;  // chunk 0: a new episode starts at step 2
  const skills::TaskBatch batch;
  const at::Tensor mem = UnrollMemory(*model, gates, start, masks, batch).view({c, r, -1});
  // After the boundary the memory is what a fresh episode computes from zero memory.
  const at::Tensor fresh = model->StepMemory(gates[0][2].unsqueeze(0), at::zeros({1, 2 * h}), batch);
  EXPECT_TRUE(at::allclose(mem[0][2], fresh[0], 1e-6, 1e-6));
  // No gradient crosses the boundary; chunk 1 (no boundary) depends on its early steps.
  const at::Tensor g0 = torch::autograd::grad({mem[0][3].sum()}, {gates}, {}, true)[0];
  EXPECT_EQ(g0[0].narrow(0, 0, 2).abs().sum().item<float>(), 0.0f);
  EXPECT_GT(g0[0].narrow(0, 2, 2).abs().sum().item<float>(), 0.0f);
  const at::Tensor g1 = torch::autograd::grad({mem[1][3].sum()}, {gates}, {}, true)[0];
  EXPECT_GT(g1[1][0].abs().sum().item<float>(), 0.0f);
}

TEST(Trainer, RunDirectoryHoldsConfigLogsCheckpointsAndSkills) {
  const std::string dir = TempDir("rundir");
  TrainConfig c = Tiny(dir);
  c.keep_checkpoints = 2;
  {
    Trainer t(c, false);
    t.Train();
    EXPECT_EQ(t.updates(), 6);
    EXPECT_EQ(t.frames(), 6 * 64);
  }
  EXPECT_TRUE(fs::exists(dir + "/config.json"));
  EXPECT_EQ(ReadLines(dir + "/log.csv").size(), 7u);   // header + 6 updates
  EXPECT_EQ(ReadLines(dir + "/eval.csv").size(), 4u);  // header + updates 2, 4, 6
  const auto ckpts = ListCheckpoints(dir);
  ASSERT_EQ(ckpts.size(), 2u);  // the newest two of 2, 4, 6
  EXPECT_NE(ckpts.back().find("ckpt_00000006.pt"), std::string::npos);
  const nlohmann::json meta = ReadCheckpointMeta(ckpts.back());
  EXPECT_EQ(meta["model"]["arch"], "small");
  EXPECT_EQ(meta["model"]["vocabulary"].size(), 33u);
  EXPECT_EQ(meta["counters"]["frames"], 6 * 64);
  std::ifstream skills(dir + "/skills.json");
  const nlohmann::json s = nlohmann::json::parse(skills);
  EXPECT_EQ(s["snapshots"].size(), 3u);
  const std::string header = ReadLines(dir + "/log.csv")[0];
  for (const char* col : {"frames", "episodes", "fps", "success_GoToRedBallNoDists", "return_GoToObjS4", "entropy",
                          "approx_kl", "clip_frac", "policy_loss", "value_loss"}) {
    EXPECT_NE(header.find(col), std::string::npos) << col;
  }
  EXPECT_EQ(header.find("distill"), std::string::npos) << "distillation columns only when distilling";
  // The checkpoint loads for evaluation, in the run's fp32; bf16 is refused for the small model.
  LoadedModel loaded = LoadModel(ckpts.back(), "cpu");
  EXPECT_EQ(loaded.model->NumParameters(), meta["num_parameters"].get<int64_t>());
  EXPECT_EQ(loaded.model->ConvPrecision(), skillgrid::skills::ConvPrecision::kFloat32);
  EXPECT_THROW(LoadModel(ckpts.back(), "cpu", "bf16"), ConfigError);
  EXPECT_THROW(LoadModel(ckpts.back(), "cpu", "fp16"), ConfigError);
  EXPECT_NE(ErrorOf([&] { LoadModel(ckpts.back(), "tpu"); }).find("--device must be cpu or cuda, got 'tpu'"),
            std::string::npos);
  if (!torch::cuda::is_available()) {
    EXPECT_NE(ErrorOf([&] { LoadModel(ckpts.back(), "cuda"); }).find("no CUDA device is available"), std::string::npos);
  }
}

TEST(Trainer, CheckpointsLoadInTheRunsPrecision) {
  // A bf16 run's checkpoint evaluates in bf16, as its periodic evaluations did, unless the
  // caller asks for another precision.
  const std::string dir = TempDir("bf16_load");
  {
    Trainer t(TinyBf16Bow(dir), false);
    t.Step();
    t.SaveCheckpoint();
  }
  const auto ckpts = ListCheckpoints(dir);
  ASSERT_EQ(ckpts.size(), 1u);
  EXPECT_EQ(LoadModel(ckpts[0], "cpu").model->ConvPrecision(), skillgrid::skills::ConvPrecision::kBFloat16);
  EXPECT_EQ(LoadModel(ckpts[0], "cpu", "fp32").model->ConvPrecision(), skillgrid::skills::ConvPrecision::kFloat32);
  try {
    LoadModel(ckpts[0], "cpu", "fp8");
    ADD_FAILURE() << "fp8 was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'fp8'"), std::string::npos) << e.what();
  }
}

// The JSON document in file `path`.
nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(Trainer, Bf16RunsRecordTheirWinogradTileAndTrainWithIt) {
  namespace sk = skillgrid::skills;
  if (!sk::WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16 without AMX: no Winograd tile";
  const sk::WinogradTile before = sk::WinogradBf16Tile();
  const std::string dir = TempDir("bf16_tile");
  {
    TrainConfig c = TinyBf16Bow(dir);
    c.winograd_tile = "2x2";
    Trainer t(c, false);
    EXPECT_EQ(sk::WinogradBf16Tile(), sk::WinogradTile::k2x2);  // in force while the run lives
    t.Step();
    t.SaveCheckpoint();
  }
  EXPECT_EQ(sk::WinogradBf16Tile(), before);
  EXPECT_EQ(ReadJson(dir + "/config.json").value("winograd_tile", std::string()), "2x2");
  {
    // Resumed from its config.json, the run trains with its tile again.
    TrainConfig c = TrainConfig::FromJson(ReadJson(dir + "/config.json"));
    c.frames *= 2;
    Trainer t(c, true);
    EXPECT_EQ(sk::WinogradBf16Tile(), sk::WinogradTile::k2x2);
  }
  // Unset, a run records the tile the process uses (SKILLGRID_WINOGRAD_TILE or the default).
  const std::string fresh = TempDir("bf16_tile_default");
  { Trainer t(TinyBf16Bow(fresh), false); }
  EXPECT_EQ(ReadJson(fresh + "/config.json").value("winograd_tile", std::string()), sk::WinogradTileName(before));
}

// Runs `config` in directory a uninterrupted, and in directory b "killed" after update 3 (its last
// checkpoint at update 2, its logs and action record already holding update 3) and resumed; the
// logs must match but for the wall-clock columns.
void ExpectResumeMatchesUninterruptedRun(const std::function<TrainConfig(const std::string&)>& config,
                                         const std::string& name) {
  const std::string a = TempDir(name + "_a");
  const std::string b = TempDir(name + "_b");
  {
    Trainer t(config(a), false);
    t.Train();
  }
  {
    Trainer t(config(b), false);
    t.Step();
    t.Step();
    t.EvaluateNow();
    t.SaveCheckpoint();
    t.Step();
  }
  EXPECT_EQ(ReadLines(b + "/log.csv").size(), 4u);
  {
    Trainer t(config(b), /*resume=*/true);
    EXPECT_EQ(t.updates(), 2);
    t.Train();
  }
  EXPECT_EQ(WithoutTimes(ReadLines(a + "/log.csv")), WithoutTimes(ReadLines(b + "/log.csv")));
  EXPECT_EQ(ReadLines(a + "/eval.csv"), ReadLines(b + "/eval.csv"));
}

TEST(Trainer, ResumeAfterKillMatchesUninterruptedRun) { ExpectResumeMatchesUninterruptedRun(Tiny, "resume"); }

TEST(Trainer, TimeBudgetStopsAfterTheUpdateThatPassesItAndTheRunIsAPrefixOfALongerOne) {
  const std::string a = TempDir("budget_a"), b = TempDir("budget_b");
  {
    Trainer t(Tiny(a), false);
    t.Train();
    EXPECT_EQ(t.updates(), 6);
    EXPECT_FALSE(t.TimeBudgetSpent());  // no budget set
  }
  TrainConfig c = Tiny(b);
  c.max_minutes = 1e-9;  // spent by the end of the first update
  {
    Trainer t(c, false);
    t.Train();
    EXPECT_EQ(t.updates(), 1);
    EXPECT_TRUE(t.TimeBudgetSpent());
  }
  const auto full = WithoutTimes(ReadLines(a + "/log.csv"));
  const auto cut = WithoutTimes(ReadLines(b + "/log.csv"));
  ASSERT_EQ(cut.size(), 2u);
  EXPECT_EQ(cut, std::vector<std::string>(full.begin(), full.begin() + 2));
  EXPECT_TRUE(fs::exists(b + "/checkpoints/ckpt_00000001.pt")) << "the last update before the budget is saved";
  {
    Trainer t(c, /*resume=*/true);  // the budget counts earlier sessions: nothing left to do
    EXPECT_TRUE(t.TimeBudgetSpent());
    t.Train();
    EXPECT_EQ(t.updates(), 1);
  }
  c.max_minutes = 0.0;
  {
    Trainer t(c, /*resume=*/true);
    t.Train();
    EXPECT_EQ(t.updates(), 6);
  }
  EXPECT_EQ(WithoutTimes(ReadLines(b + "/log.csv")), full);
  EXPECT_EQ(ReadLines(b + "/eval.csv"), ReadLines(a + "/eval.csv"));
}

// Runs the CLI with `args`; returns its pid (the child's stdout and stderr go to `log`).
pid_t StartCli(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(SKILLGRID_CLI));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(SKILLGRID_CLI, argv.data());
    _exit(127);
  }
  return pid;
}

std::string LastLine(const std::string& path) {
  const auto lines = ReadLines(path);
  return lines.empty() ? "" : lines.back();
}

int WaitCli(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// The CLI arguments of a tiny two-level run of `updates` updates (64 frames each) in `dir`,
// checkpointed every 5 updates.
std::vector<std::string> TinyCliRun(const std::string& dir, int64_t updates) {
  return {"train", "--levels", "GoToRedBallNoDists,GoToObjS4", "--model", "small", "--skills", "3", "--rank", "2",
          "--num-envs", "8", "--frames-per-env", "8", "--recurrence", "4", "--batch-size", "32", "--epochs", "2",
          "--frames", std::to_string(updates * 64), "--threads", "2", "--torch-threads", "1", "--save-interval", "5",
          "--eval-interval", "0", "--no-progress", "--run-dir", dir};
}

TEST(Trainer, CliRunKilledWithSigkillResumesToTheSameLog) {
  // A real process, killed with SIGKILL mid-run, restarted with --resume: on CPU with the same
  // seed and thread counts its log.csv equals the uninterrupted run's, row for row.
  const std::string a = TempDir("sigkill_a"), b = TempDir("sigkill_b");
  const int64_t updates = 60;
  auto args = [&](const std::string& dir) { return TinyCliRun(dir, updates); };
  ASSERT_EQ(WaitCli(StartCli(args(a), a + ".out")), 0) << LastLine(a + ".out");
  ASSERT_EQ(ReadLines(a + "/log.csv").size(), static_cast<size_t>(updates + 1));

  const pid_t victim = StartCli(args(b), b + ".out");
  // Kill once a few checkpoints exist but well before the end.
  size_t rows = 0;
  for (int i = 0; i < 60000 && rows < 13; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    rows = ReadLines(b + "/log.csv").size();
  }
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  ASSERT_EQ(WaitCli(victim), -SIGKILL);
  const size_t rows_at_kill = ReadLines(b + "/log.csv").size();
  ASSERT_LT(rows_at_kill, static_cast<size_t>(updates + 1)) << "the run ended before the kill";

  std::vector<std::string> resume = args(b);
  resume.push_back("--resume");
  ASSERT_EQ(WaitCli(StartCli(resume, b + ".resume.out")), 0) << LastLine(b + ".resume.out");
  EXPECT_EQ(WithoutTimes(ReadLines(a + "/log.csv")), WithoutTimes(ReadLines(b + "/log.csv")));
}

TEST(Trainer, CliRunStoppedWithSigintCheckpointsTheUpdateInProgressAndResumesToTheSameLog) {
  // SIGINT (Ctrl-C) lets the update in progress finish, checkpoints it, even between two
  // save intervals, and exits with 130; --resume then continues from exactly there.
  const std::string a = TempDir("sigint_a"), b = TempDir("sigint_b");
  const int64_t updates = 60;
  ASSERT_EQ(WaitCli(StartCli(TinyCliRun(a, updates), a + ".out")), 0) << LastLine(a + ".out");

  const pid_t victim = StartCli(TinyCliRun(b, updates), b + ".out");
  size_t rows = 0;
  for (int i = 0; i < 60000 && rows < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    rows = ReadLines(b + "/log.csv").size();
  }
  ASSERT_EQ(kill(victim, SIGINT), 0);
  ASSERT_EQ(WaitCli(victim), 130) << LastLine(b + ".out");
  const size_t logged = ReadLines(b + "/log.csv").size() - 1;  // updates done
  ASSERT_LT(logged, static_cast<size_t>(updates)) << "the run ended before the signal";
  char name[32];
  std::snprintf(name, sizeof(name), "ckpt_%08zu.pt", logged);
  EXPECT_TRUE(fs::exists(fs::path(b) / "checkpoints" / name)) << "no checkpoint of the last update, " << logged;
  bool said = false;
  for (const auto& line : ReadLines(b + ".out")) said |= line.find("stopped: SIGINT after update") != std::string::npos;
  EXPECT_TRUE(said) << LastLine(b + ".out");

  std::vector<std::string> resume = TinyCliRun(b, updates);
  resume.push_back("--resume");
  ASSERT_EQ(WaitCli(StartCli(resume, b + ".resume.out")), 0) << LastLine(b + ".resume.out");
  EXPECT_NE(ReadLines(b + ".resume.out").front().find("resumed at update " + std::to_string(logged)), std::string::npos)
      << ReadLines(b + ".resume.out").front();
  EXPECT_EQ(WithoutTimes(ReadLines(a + "/log.csv")), WithoutTimes(ReadLines(b + "/log.csv")));
}

// Trains Tiny(dir) for two updates (one checkpoint) and returns its config.
TrainConfig TrainTwoUpdates(const std::string& dir) {
  TrainConfig c = Tiny(dir);
  c.frames = 2 * 64;
  Trainer t(c, false);
  t.Train();
  return c;
}

TEST(Trainer, RefusesToOverwriteAnExistingRun) {
  const std::string dir = TempDir("overwrite");
  const TrainConfig c = TrainTwoUpdates(dir);
  const auto before = ReadLines(dir + "/log.csv");
  const std::string e = ErrorOf([&] { Trainer t(c, false); });
  EXPECT_NE(e.find("already holds a run"), std::string::npos) << e;
  EXPECT_EQ(ReadLines(dir + "/log.csv"), before);
  EXPECT_EQ(ListCheckpoints(dir).size(), 1u);
}

TEST(Trainer, EvalUnseenAddsZeroShotColumnsAndLeavesTrainingAsItWas) {
  // Zero-shot evaluation works on a copy of the network: the run's log is the same as without
  // it, and eval.csv gains the held-out level after the trained ones.
  const std::string plain = TempDir("unseen_plain"), held_out = TempDir("unseen_held_out");
  const std::string door = "BabyAI-GoToDoor-v0";
  auto with_unseen = [&](const std::string& dir) {
    TrainConfig c = Tiny(dir);
    c.eval_unseen = {door};
    c.unseen_routing = "uniform";
    return c;
  };
  {
    Trainer t(Tiny(plain), false);
    t.Train();
  }
  {
    Trainer t(with_unseen(held_out), false);
    t.Train();
  }
  EXPECT_EQ(WithoutTimes(ReadLines(plain + "/log.csv")), WithoutTimes(ReadLines(held_out + "/log.csv")));
  const auto plain_eval = ReadLines(plain + "/eval.csv"), unseen_eval = ReadLines(held_out + "/eval.csv");
  ASSERT_EQ(unseen_eval.size(), plain_eval.size());
  EXPECT_EQ(unseen_eval[0], plain_eval[0] + ",mean_unseen_success,success_GoToDoor,return_GoToDoor,length_GoToDoor");
  for (size_t i = 1; i < unseen_eval.size(); ++i) {
    // The trained levels' columns are unchanged; the held-out level ran whole episodes.
    EXPECT_EQ(unseen_eval[i].substr(0, plain_eval[i].size() + 1), plain_eval[i] + ",");
    std::vector<double> v;
    std::stringstream row(unseen_eval[i].substr(plain_eval[i].size() + 1));
    for (std::string cell; std::getline(row, cell, ',');) v.push_back(std::stod(cell));
    ASSERT_EQ(v.size(), 4u) << unseen_eval[i];
    EXPECT_EQ(v[0], v[1]);  // one held-out level: its success is the mean
    EXPECT_GE(v[1], 0.0);
    EXPECT_LE(v[1], 1.0);
    EXPECT_GT(v[3], 0.0);  // episode length
  }
  // The held-out columns are part of the run: resuming with others is refused.
  TrainConfig other = with_unseen(held_out);
  other.eval_unseen = {"BabyAI-GoToObjDoor-v0"};
  EXPECT_NE(ErrorOf([&] { Trainer t(other, true); }).find("other --eval-unseen levels"), std::string::npos);
  ExpectResumeMatchesUninterruptedRun(with_unseen, "unseen_resume");
}

TEST(Trainer, ResumeWithAnotherArchitectureFailsClearly) {
  const std::string dir = TempDir("arch");
  TrainConfig c = TrainTwoUpdates(dir);
  const auto before = ReadLines(dir + "/log.csv");
  c.model = "expert_filmcnn";
  const std::string e = ErrorOf([&] { Trainer t(c, true); });
  EXPECT_NE(e.find("another architecture"), std::string::npos) << e;
  EXPECT_EQ(ReadLines(dir + "/log.csv"), before);
  EXPECT_EQ(ListCheckpoints(dir).size(), 1u);
}

// The model's parameters by name, cloned, split into routers' and the rest.
struct ParameterSnapshot {
  std::map<std::string, at::Tensor> routers, others;
};
ParameterSnapshot Snapshot(agents::ActorCriticImpl& model) {
  std::set<const void*> router_tensors;
  skills::ForEachRouter(model, [&](const std::string&, skills::RouterImpl& router) {
    for (const auto& p : router.parameters()) router_tensors.insert(p.unsafeGetTensorImpl());
  });
  ParameterSnapshot s;
  for (const auto& item : model.named_parameters()) {
    auto& into = router_tensors.count(item.value().unsafeGetTensorImpl()) > 0 ? s.routers : s.others;
    into[item.key()] = item.value().detach().clone();
  }
  return s;
}

TEST(Trainer, InitFromAdaptsATrainedNetworkToNewLevels) {
  const std::string src = TempDir("adapt_src");
  TrainTwoUpdates(src);
  const ParameterSnapshot trained = Snapshot(*LoadModel(ListCheckpoints(src).back(), "cpu").model);
  ASSERT_FALSE(trained.routers.empty());
  // Poly adaptation to one new level: everything but the routers starts as trained, the routers
  // start afresh with one task row, and then everything trains.
  TrainConfig adapt = Tiny(TempDir("adapt_poly"));
  adapt.levels = {"BabyAI-GoToRedBall-v0"};
  adapt.init_from = src;
  adapt.frames = 2 * 64;
  {
    Trainer t(adapt, false);
    const ParameterSnapshot start = Snapshot(*t.model());
    ASSERT_EQ(start.others.size(), trained.others.size());
    for (const auto& [name, p] : start.others) EXPECT_TRUE(at::equal(p, trained.others.at(name))) << name;
    for (const auto& [name, p] : start.routers) EXPECT_EQ(p.size(0), 1) << name;  // one task now
    t.Train();
    const ParameterSnapshot end = Snapshot(*t.model());
    int changed = 0;
    for (const auto& [name, p] : end.others) changed += at::equal(p, trained.others.at(name)) ? 0 : 1;
    EXPECT_GT(changed, 0);
  }
  // MHR-z: only the routing trains, also after a resume.
  adapt.run_dir = TempDir("adapt_z");
  adapt.train_only_routing = true;
  ParameterSnapshot first_routers;
  {
    Trainer t(adapt, false);
    first_routers = Snapshot(*t.model());
    t.Train();
  }
  adapt.frames = 4 * 64;
  {
    Trainer t(adapt, /*resume=*/true);
    EXPECT_EQ(t.updates(), 2);
    t.Train();
    const ParameterSnapshot end = Snapshot(*t.model());
    for (const auto& [name, p] : end.others) EXPECT_TRUE(at::equal(p, trained.others.at(name))) << name;
    int changed = 0;
    for (const auto& [name, p] : end.routers) changed += at::equal(p, first_routers.routers.at(name)) ? 0 : 1;
    EXPECT_GT(changed, 0);
  }
  // Clear errors: another skill count, a missing source, a directory without checkpoints.
  TrainConfig bad = adapt;
  bad.run_dir = TempDir("adapt_bad");
  bad.skills = 4;
  std::string e = ErrorOf([&] { Trainer t(bad, false); });
  EXPECT_NE(e.find("--init-from"), std::string::npos) << e;
  EXPECT_NE(e.find("same --model, --skills"), std::string::npos) << e;
  bad.skills = adapt.skills;
  bad.init_from = TempDir("adapt_missing");
  e = ErrorOf([&] { Trainer t(bad, false); });
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
  fs::create_directories(bad.init_from);
  e = ErrorOf([&] { Trainer t(bad, false); });
  EXPECT_NE(e.find("holds no checkpoint"), std::string::npos) << e;
  bad.init_from.clear();
  EXPECT_NE(ErrorOf([&] { bad.Validate(); }).find("needs --init-from"), std::string::npos);
  bad.init_from = src;
  bad.router = "shared";
  EXPECT_NE(ErrorOf([&] { bad.Validate(); }).find("needs a learned router"), std::string::npos);
}

TEST(Trainer, NanLossStopsWithAClearErrorAndKeepsTheRun) {
  const std::string dir = TempDir("nan");
  TrainConfig c = Tiny(dir);
  c.frames = 2 * 64;
  c.eval_interval = 0;
  {
    Trainer t(c, false);
    t.Train();
  }
  const auto log_before = ReadLines(dir + "/log.csv");
  const auto ckpts_before = ListCheckpoints(dir);
  // Continue with a valid but absurd learning rate: the weights overflow at once.
  c.frames = 40 * 64;
  c.lr = 1e30;
  std::string e;
  {
    Trainer t(c, true);
    e = ErrorOf([&] { t.Train(); });
  }
  EXPECT_NE(e.find("stopping before the optimiser step"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
  // The last good checkpoint and the log rows up to it are all still there.
  EXPECT_EQ(ListCheckpoints(dir), ckpts_before);
  const auto log_after = ReadLines(dir + "/log.csv");
  ASSERT_GE(log_after.size(), log_before.size());
  EXPECT_TRUE(std::equal(log_before.begin(), log_before.end(), log_after.begin()));
}

// A teacher on `level` that (nearly) always takes `action`: an untrained network whose last actor
// layer has 8 added to that action's bias (its other inputs, the memory among them, still move the
// logits a little). Returns its run directory.
std::string MakeBiasedTeacher(const std::string& name, const std::string& level, int64_t action) {
  const std::string dir = TempDir(name);
  TrainConfig c = Tiny(dir);
  c.levels = {level};
  c.router = "none";
  Trainer t(c, false);
  {
    at::NoGradGuard no_grad;
    int64_t changed = 0;
    for (auto& item : t.model()->named_parameters()) {
      if (item.key().rfind("actor2.", 0) != 0) continue;
      if (item.value().dim() == 1 && item.value().size(0) == agents::kNumActions) {
        item.value()[action].add_(8.0);
        ++changed;
      }
    }
    EXPECT_EQ(changed, 1) << "the actor's output bias was not found";
  }
  t.SaveCheckpoint();
  return dir;
}

// Tiny() distilling from one biased teacher per level: forward on GoToRedBallNoDists, left on
// GoToObjS4 (teacher directories made once per test process, named by its pid: ctest runs each
// test as its own process, two at a time, and a shared name let one remove the other's teacher).
TrainConfig TinyDistilled(const std::string& dir) {
  static const std::string pid = std::to_string(::getpid());
  static const std::string forward = MakeBiasedTeacher("teacher_forward_" + pid, "BabyAI-GoToRedBallNoDists-v0", 2);
  static const std::string left = MakeBiasedTeacher("teacher_left_" + pid, "BabyAI-GoToObjS4-v0", 0);
  TrainConfig c = Tiny(dir);
  c.teachers = {forward, left};
  return c;
}

TEST(Trainer, DistillationTeachesEachLevelItsOwnTeachersPolicy) {
  const std::string dir = TempDir("distill");
  TrainConfig c = TinyDistilled(dir);
  c.rl_coef = 0.0;  // pure distillation: only the teachers can make the student prefer an action
  c.lr = 1e-2;
  c.frames = 16 * 64;
  c.eval_interval = 0;
  std::vector<UpdateStats> stats;
  {
    Trainer t(c, false);
    ASSERT_EQ(t.TeacherDescriptions().size(), 2u);
    t.Train([&](const UpdateStats& s) { stats.push_back(s); });
    // The student, greedy routing, on fresh observations of each level.
    const EnvObservations o = ResetObservations(c.levels, 16, 99);
    auto model = t.model();
    model->eval();
    at::NoGradGuard no_grad;
    for (int64_t task = 0; task < 2; ++task) {
      std::vector<int64_t> rows;
      for (int64_t i = task; i < 16; i += 2) rows.push_back(i);
      const agents::Observation obs = o.Rows(rows, task);
      const agents::PolicyOutput out = model->Act(obs, at::zeros({8, model->memory_size()}),
                                                  skills::TaskBatch::FromTaskIds(obs.task_ids));
      const int64_t taught = task == 0 ? 2 : 0;  // forward, left
      EXPECT_GT(out.log_probs.exp().select(1, taught).min().item<double>(), 0.8) << "level " << c.levels[task];
    }
  }
  ASSERT_EQ(stats.size(), 16u);
  for (size_t level = 0; level < 2; ++level) {
    // Near-deterministic teachers against a near-uniform student (KL near log 7 at the start).
    std::printf("[ distill ] %s: KL %.3f in update 1, %.3f in update 16\n", c.levels[level].c_str(),
                stats.front().level_kl[level], stats.back().level_kl[level]);
    EXPECT_GT(stats.front().level_kl[level], 0.3);
    EXPECT_LT(stats.back().level_kl[level], 0.25 * stats.front().level_kl[level]) << c.levels[level];
  }
  EXPECT_DOUBLE_EQ(stats.back().distill_coef, 1.0);
  const auto header = ReadLines(dir + "/log.csv").front();
  EXPECT_NE(header.find(",distill_coef,distill_kl,kl_GoToRedBallNoDists,kl_GoToObjS4"), std::string::npos) << header;
  EXPECT_NE(ProgressLine(c, stats.back()).find("| KL "), std::string::npos);
  EXPECT_EQ(ReadLines(dir + "/log.csv").size(), 17u);
}

TEST(Trainer, DistillationAnnealsItsWeightAndResumesExactly) {
  TrainConfig c = TinyDistilled("");
  c.distill_anneal_frames = 4 * 64;
  EXPECT_DOUBLE_EQ(c.DistillCoefAt(0), 1.0);
  EXPECT_DOUBLE_EQ(c.DistillCoefAt(64), 0.75);
  EXPECT_DOUBLE_EQ(c.DistillCoefAt(10 * 64), 0.0);
  // A run cannot teach itself.
  const std::string self = TempDir("distill_self");
  TrainConfig own = TrainTwoUpdates(self);
  own.teachers = {self};
  const std::string e = ErrorOf([&] { Trainer t(own, /*resume=*/true); });
  EXPECT_NE(e.find("is this run's own directory"), std::string::npos) << e;
  // Resuming restores the teachers' memories with the student's, and the weight follows the frames.
  ExpectResumeMatchesUninterruptedRun(
      [](const std::string& dir) {
        TrainConfig annealed = TinyDistilled(dir);
        annealed.distill_anneal_frames = 4 * 64;
        return annealed;
      },
      "resume_distill");
}

// Stats of the first update of a tiny run with `workers` update workers.
UpdateStats FirstUpdate(const std::string& router, int workers) {
  TrainConfig c = Tiny("");
  c.router = router;
  c.update_workers = workers;
  c.eval_interval = 0;
  Trainer t(c, false);
  return t.Step();
}

TEST(Trainer, UpdateWorkersSplitEachMinibatchWithoutChangingItsGradient) {
  // Shared routing draws no noise, so splitting a minibatch over workers may only change float
  // rounding: every loss part and the summed gradient's norm must match the single worker's.
  const UpdateStats one = FirstUpdate("shared", 1);
  for (int workers : {2, 3}) {
    const UpdateStats split = FirstUpdate("shared", workers);
    auto near = [](double a, double b) { return std::abs(a - b) <= 1e-4 * (1.0 + std::abs(a)); };
    EXPECT_TRUE(near(one.policy_loss, split.policy_loss)) << workers << ": " << one.policy_loss << " vs " << split.policy_loss;
    EXPECT_TRUE(near(one.value_loss, split.value_loss)) << workers << ": " << one.value_loss << " vs " << split.value_loss;
    EXPECT_TRUE(near(one.entropy, split.entropy)) << workers << ": " << one.entropy << " vs " << split.entropy;
    EXPECT_TRUE(near(one.value_mean, split.value_mean)) << workers << ": " << one.value_mean << " vs " << split.value_mean;
    EXPECT_TRUE(near(one.approx_kl, split.approx_kl)) << workers << ": " << one.approx_kl << " vs " << split.approx_kl;
    EXPECT_TRUE(near(one.grad_norm, split.grad_norm)) << workers << ": " << one.grad_norm << " vs " << split.grad_norm;
  }
}

TEST(Trainer, UpdateWorkersWithPolyRoutingAreReproducible) {
  // Each worker draws Poly's routing noise from its own seeded generator: two runs agree exactly.
  auto run = [] {
    TrainConfig c = Tiny("");
    c.update_workers = 2;
    c.eval_interval = 0;
    Trainer t(c, false);
    t.Step();
    return t.Step();
  };
  const UpdateStats a = run(), b = run();
  EXPECT_EQ(a.policy_loss, b.policy_loss);
  EXPECT_EQ(a.value_loss, b.value_loss);
  EXPECT_EQ(a.grad_norm, b.grad_norm);
  EXPECT_EQ(a.episodes, b.episodes);
  EXPECT_TRUE(std::isfinite(a.grad_norm) && a.grad_norm > 0.0);
}

TEST(Trainer, Bf16BowRunsAreReproducibleAndLeaveFp32State) {
  // --precision bf16 on bow_endpool_res: a seeded run repeats exactly (fixed reduction order in
  // the fused kernels), its losses are finite and its parameters stay fp32.
  auto run = [] {
    Trainer t(TinyBf16Bow(""), false);
    t.Step();
    for (const auto& p : t.model()->parameters()) EXPECT_EQ(p.scalar_type(), at::kFloat);
    return t.Step();
  };
  const UpdateStats a = run(), b = run();
  EXPECT_EQ(a.policy_loss, b.policy_loss);
  EXPECT_EQ(a.value_loss, b.value_loss);
  EXPECT_EQ(a.grad_norm, b.grad_norm);
  EXPECT_TRUE(std::isfinite(a.grad_norm) && a.grad_norm > 0.0);
}

TEST(Trainer, A2cRuns) {
  TrainConfig c = PresetConfig("a2c");
  c.run_dir = "";
  c.levels = {"BabyAI-GoToObjS4-v0"};
  c.num_envs = 8;
  c.batch_size = 64;
  c.frames = 3 * 64;
  c.threads = 2;
  c.router = "none";
  c.progress = false;
  c.eval_interval = 0;
  Trainer t(c, false);
  t.Train();
  EXPECT_EQ(t.updates(), 3);
  EXPECT_TRUE(std::isfinite(t.last_stats().policy_loss));
  EXPECT_EQ(t.last_stats().approx_kl, 0.0);
}

TEST(Trainer_CUDA, DistillsOnTheDeviceAndResumes) {
  // Teachers saved by CPU runs step on the device beside the student; their memories round-trip
  // through a checkpoint there.
  SKILLGRID_REQUIRE_CUDA();
  const std::string dir = TempDir("cuda_distill");
  TrainConfig c = TinyDistilled(dir);
  c.device = "cuda";
  c.rl_coef = 0.0;
  c.lr = 1e-2;
  c.frames = 4 * 64;
  {
    Trainer t(c, false);
    t.Step();
    t.Step();
    t.SaveCheckpoint();
  }
  Trainer t(c, /*resume=*/true);
  EXPECT_EQ(t.updates(), 2);
  t.Train();
  ASSERT_EQ(t.last_stats().level_kl.size(), 2u);
  for (double kl : t.last_stats().level_kl) EXPECT_TRUE(std::isfinite(kl) && kl >= 0.0) << kl;
  EXPECT_EQ(ReadLines(dir + "/log.csv").size(), 5u);
}

TEST(Trainer_CUDA, TrainsOnTheDeviceAndItsCheckpointsLoadOnEitherDevice) {
  // --device cuda: envs step on the host, the network and the update run on the device; the
  // run directory is the same as on the CPU, and a checkpoint loads on both devices.
  SKILLGRID_REQUIRE_CUDA();
  const std::string dir = TempDir("cuda_rundir");
  TrainConfig c = Tiny(dir);
  c.device = "cuda";
  c.ibp_weight = 0.01;  // the prior reads the routing allocation on the host
  {
    Trainer t(c, false);
    t.Train();
    EXPECT_EQ(t.updates(), 6);
    for (const auto& p : t.model()->parameters()) EXPECT_EQ(p.device().type(), at::kCUDA);
    EXPECT_TRUE(std::isfinite(t.last_stats().policy_loss) && std::isfinite(t.last_stats().grad_norm));
    EXPECT_GT(t.last_stats().grad_norm, 0.0);
  }
  EXPECT_EQ(ReadLines(dir + "/log.csv").size(), 7u);
  EXPECT_EQ(ReadLines(dir + "/eval.csv").size(), 4u);
  std::ifstream skills(dir + "/skills.json");
  EXPECT_EQ(nlohmann::json::parse(skills)["snapshots"].size(), 3u);
  const auto ckpts = ListCheckpoints(dir);
  ASSERT_FALSE(ckpts.empty());
  LoadedModel on_host = LoadModel(ckpts.back(), "cpu");
  LoadedModel on_device = LoadModel(ckpts.back(), "cuda");
  EXPECT_EQ(on_host.model->parameters().front().device().type(), at::kCPU);
  EXPECT_EQ(on_device.model->parameters().front().device().type(), at::kCUDA);
  auto host_params = on_host.model->named_parameters();
  for (const auto& item : on_device.model->named_parameters()) {
    EXPECT_TRUE(at::equal(item.value().cpu(), host_params[item.key()])) << item.key();
  }
  // Resuming continues the run on the device, and on the host: the checkpoint (parameters, Adam
  // state, generators) loads onto whichever device the resumed run names.
  c.frames = 8 * 64;
  {
    Trainer resumed(c, true);
    resumed.Train();
    EXPECT_EQ(resumed.updates(), 8);
  }
  c.device = "cpu";
  c.frames = 10 * 64;
  Trainer on_host_again(c, true);
  on_host_again.Train();
  EXPECT_EQ(on_host_again.updates(), 10);
  EXPECT_EQ(on_host_again.model()->parameters().front().device().type(), at::kCPU);
  EXPECT_TRUE(std::isfinite(on_host_again.last_stats().grad_norm));
  EXPECT_EQ(ReadLines(dir + "/log.csv").size(), 11u);
}

TEST(Trainer_CUDA, EveryRouterAndBf16BowUpdateOnTheDevice) {
  SKILLGRID_REQUIRE_CUDA();
  for (const std::string router : {"none", "shared", "private", "expert", "poly", "mhr", "mu", "adamix"}) {
    TrainConfig c = Tiny("");
    c.device = "cuda";
    c.router = router;
    c.eval_interval = 0;
    // Polytropon's Expert allocation covers only its own eight levels.
    if (router == "expert") c.levels = {"BabyAI-GoToObj-v0", "BabyAI-GoToRedBallGrey-v0"};
    Trainer t(c, false);
    t.Step();
    const UpdateStats s = t.Step();
    EXPECT_TRUE(std::isfinite(s.policy_loss) && std::isfinite(s.value_loss) && std::isfinite(s.grad_norm)) << router;
  }
  TrainConfig bow = TinyBf16Bow("");
  bow.device = "cuda";
  Trainer t(bow, false);
  t.Step();
  const UpdateStats s = t.Step();
  EXPECT_TRUE(std::isfinite(s.policy_loss) && s.grad_norm > 0.0);
  for (const auto& p : t.model()->parameters()) EXPECT_EQ(p.scalar_type(), at::kFloat);
}

}  // namespace
}  // namespace skillgrid::training
