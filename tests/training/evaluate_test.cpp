// EvaluatePolicy: each level runs as the model task it is given; `skillgrid eval --levels` runs
// levels the run never trained on as zero-shot transfer, and refuses bad values in one line.
#include "training/evaluate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "skills/training_helpers.h"
#include "tests/cli_util.h"
#include "tests/training/test_util.h"
#include "training/trainer.h"

namespace skillgrid::training {
namespace {

namespace fs = std::filesystem;

const std::string kRedBall = "BabyAI-GoToRedBallNoDists-v0";
const std::string kObjS4 = "BabyAI-GoToObjS4-v0";

// A small private-routed network over `levels` whose tasks act differently (random weights).
agents::ActorCritic PrivateModel(const std::vector<std::string>& levels) {
  torch::manual_seed(11);
  agents::RoutingOptions r;
  r.router("private").n_tasks(static_cast<int64_t>(levels.size())).task_names(levels);
  agents::ModelOptions m("small");
  m.routing(r);
  agents::ActorCritic model(m);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.normal_(0.0, 0.3);
  return model;
}

void ExpectSameLevelResults(const LevelEvaluation& a, const LevelEvaluation& b, const std::string& where) {
  EXPECT_EQ(a.success_rate, b.success_rate) << where;
  EXPECT_EQ(a.mean_return, b.mean_return) << where;
  EXPECT_EQ(a.mean_length, b.mean_length) << where;
}

TEST(EvaluatePolicy, EachLevelRunsAsTheModelTaskItIsGiven) {
  const std::vector<std::string> levels = {kObjS4, kRedBall};  // level 1: episodes of varied length
  agents::ActorCritic model = PrivateModel(levels);
  // Sampled actions, the same draws in every evaluation: a random network's argmax policy tends
  // to repeat one action, which would hide a change of policy.
  auto evaluate = [&](const std::vector<int64_t>& model_tasks) {
    torch::manual_seed(5);
    return EvaluatePolicy(model, levels, 12, 3, /*argmax=*/false, 1, model_tasks);
  };
  const Evaluation own = evaluate({});

  // A third task routed exactly as task 1 (its private skill): level 1 gives the same episodes.
  int64_t copy = -1;
  skills::ForEachRouter(*model, [&](const std::string&, skills::RouterImpl& router) {
    copy = router.AddTaskWithWeights(router.EvalWeights()[1]);
  });
  ASSERT_EQ(copy, 2);
  const Evaluation copied = evaluate({0, copy});
  for (int i = 0; i < 2; ++i) ExpectSameLevelResults(copied.levels[i], own.levels[i], "copied task, level " + levels[i]);

  // Level 1 run as task 0 acts as task 0's policy: its episodes change, level 0's do not.
  const Evaluation swapped = evaluate({0, 0});
  ExpectSameLevelResults(swapped.levels[0], own.levels[0], "level 0 as task 0");
  EXPECT_TRUE(swapped.levels[1].mean_length != own.levels[1].mean_length ||
              swapped.levels[1].mean_return != own.levels[1].mean_return)
      << "level 1 gave the same results as task 0 and as task 1: length " << own.levels[1].mean_length << " return "
      << own.levels[1].mean_return << " level 0: " << own.levels[0].mean_length;

  EXPECT_NE(ErrorOf([&] { EvaluatePolicy(model, levels, 2, 3, true, 1, {0}); }).find("1 model task ids for 2 levels"),
            std::string::npos);
}

TEST(UnseenRouting, MeanAndUniformAddATaskAndAsLevelReusesThatLevelsTask) {
  const std::vector<std::string> levels = {kObjS4, kRedBall};
  agents::ActorCritic model = PrivateModel(levels);
  auto tasks_of_routers = [&] {
    std::set<int64_t> counts;
    skills::ForEachRouter(*model, [&](const std::string&, skills::RouterImpl& r) { counts.insert(r.n_tasks()); });
    return counts;
  };
  const UnseenRouting as_red = UnseenRouting::Parse("as:GoToRedBallNoDists", levels);
  EXPECT_EQ(as_red.as_level, kRedBall);
  EXPECT_EQ(as_red.TaskIn(*model, levels), 1);
  EXPECT_EQ(UnseenRouting::Parse("as:" + kObjS4, levels).TaskIn(*model, levels), 0);  // full ids work too
  EXPECT_EQ(tasks_of_routers(), std::set<int64_t>{2});                                // nothing added
  const UnseenRouting uniform = UnseenRouting::Parse("uniform", levels);
  EXPECT_TRUE(uniform.as_level.empty());
  EXPECT_EQ(uniform.added, skills::UnseenTaskRouting::kUniform);
  EXPECT_EQ(uniform.TaskIn(*model, levels), 2);
  EXPECT_EQ(tasks_of_routers(), std::set<int64_t>{3});
  EXPECT_NE(ErrorOf([&] { UnseenRouting::Parse("as:", levels); }).find("'' is not a trained level"), std::string::npos);
}

// A checkpoint of a small Poly run on GoToRedBallNoDists and GoToObjS4 (random weights).
std::string PolyRun() {
  const std::string dir = (fs::temp_directory_path() / "skillgrid_evaluate_test_poly").string();
  fs::remove_all(dir);
  const TrainConfig c = SmallRunConfig(dir, {kRedBall, kObjS4}, "poly", 1);
  Trainer t(c, false);
  t.SaveCheckpoint();
  return dir;
}

TEST(EvalCommand, UnseenLevelsRunZeroShotAndBadValuesGiveOneLineErrors) {
  const std::string run = PolyRun();
  const std::string eval = std::string(SKILLGRID_CLI) + " eval --run " + run + " --episodes 3 --threads 1";
  const cli_test::CommandResult mixed = cli_test::RunCommand(eval + " --levels GoToObjS4,GoToLocal,GoToRedBallNoDists");
  ASSERT_EQ(mixed.status, 0) << mixed.output;
  for (const std::string part : {"unseen_routing: mean", "BabyAI-GoToLocal-v0", "trained_success_rate: ",
                                 "unseen_success_rate: "}) {
    EXPECT_NE(mixed.output.find(part), std::string::npos) << part << " missing from\n" << mixed.output;
  }
  // The rows keep the order given, say which levels the run trained on, and the output still
  // ends with the mean over every level.
  const size_t objs4 = mixed.output.find("BabyAI-GoToObjS4-v0"), local = mixed.output.find("BabyAI-GoToLocal-v0");
  EXPECT_LT(objs4, local);
  const std::string local_row = mixed.output.substr(local, mixed.output.find('\n', local) - local);
  EXPECT_EQ(local_row.substr(local_row.size() - 2), "no") << local_row;
  EXPECT_EQ(mixed.output.rfind("success_rate: "), mixed.output.size() - std::string("success_rate: 0.0000\n").size());

  // The run's own levels: no zero-shot lines.
  const cli_test::CommandResult own = cli_test::RunCommand(eval + " --unseen-routing uniform");
  ASSERT_EQ(own.status, 0) << own.output;
  EXPECT_EQ(own.output.find("unseen"), std::string::npos) << own.output;

  for (const auto& [flags, message] : std::vector<std::pair<std::string, std::string>>{
           {"--levels GoToLocal --unseen-routing average", "--unseen-routing must be mean, uniform or as:LEVEL (a trained level), got 'average'"},
           {"--levels GoToLocal --unseen-routing as:GoToDoor",
            "--unseen-routing as:GoToDoor: 'GoToDoor' is not a trained level (GoToRedBallNoDists, GoToObjS4)"},
           {"--levels GoToNowhere", "--levels: "},
           {"--levels GoToLocal,BabyAI-GoToLocal-v0", "--levels: level BabyAI-GoToLocal-v0 is listed twice"},
           {"--levels ,", "--levels: at least one level is needed"}}) {
    const cli_test::CommandResult bad = cli_test::RunCommand(eval + " " + flags);
    EXPECT_EQ(bad.status, 1) << flags << "\n" << bad.output;
    EXPECT_NE(bad.output.find("skillgrid eval: error: " + message), std::string::npos) << flags << "\n" << bad.output;
    EXPECT_EQ(bad.output.find('\n'), bad.output.size() - 1) << "not one line: " << bad.output;
  }
}

}  // namespace
}  // namespace skillgrid::training
