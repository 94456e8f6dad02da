// TeacherSet: every env is taught by the first teacher trained on its level, with that teacher's
// own task id; the teachers' memories follow episode boundaries; unusable teachers are refused
// with one-line errors.
#include "training/teachers.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <c10/core/InferenceMode.h>

#include "training/checkpoint.h"
#include "training/trainer.h"
#include "tests/training/test_util.h"

namespace skillgrid::training {
namespace {

namespace fs = std::filesystem;

const std::string kRedBall = "BabyAI-GoToRedBallNoDists-v0";
const std::string kObjS4 = "BabyAI-GoToObjS4-v0";

// Writes a teacher with random weights on `levels` (one checkpoint) into a fresh directory; returns it.
std::string MakeTeacher(const std::string& name, const std::vector<std::string>& levels, const std::string& router,
                        uint64_t seed) {
  const std::string dir = (fs::temp_directory_path() / ("skillgrid_teachers_test_" + name)).string();
  fs::remove_all(dir);
  const TrainConfig c = SmallRunConfig(dir, levels, router, seed);
  Trainer t(c, false);
  {
    // Fresh skills start equal for every task (a zero low-rank factor); random weights make each
    // task's policy its own.
    at::NoGradGuard no_grad;
    for (auto& p : t.model()->parameters()) p.normal_(0.0, 0.3);
  }
  t.SaveCheckpoint();
  return dir;
}

TEST(TeacherSet, EachEnvGetsTheFirstTeacherTrainedOnItsLevelWithThatTeachersTaskId) {
  // A knows only GoToObjS4. B (private routing: its output depends on the task id) knows
  // GoToRedBallNoDists as its task 0 and GoToObjS4 as task 1, but A comes first for GoToObjS4.
  const std::string a = MakeTeacher("first_a", {kObjS4}, "none", 1);
  const std::string b = MakeTeacher("first_b", {kRedBall, kObjS4}, "private", 2);
  const std::vector<std::string> levels = {kObjS4, kRedBall};  // the student's task ids: 0, 1
  const int n = 4;
  const std::vector<int> env_tasks = {0, 1, 0, 1};
  TeacherSet teachers({a, b}, levels, env_tasks, at::kCPU);
  ASSERT_EQ(teachers.size(), 2u);
  EXPECT_NE(teachers.Describe()[0].find("teaches GoToObjS4"), std::string::npos) << teachers.Describe()[0];
  EXPECT_NE(teachers.Describe()[1].find("teaches GoToRedBallNoDists"), std::string::npos) << teachers.Describe()[1];

  const EnvObservations o = ResetObservations(levels, n, 5);
  agents::ActorCritic model_a = LoadModel(ListCheckpoints(a).back(), "cpu").model;
  agents::ActorCritic model_b = LoadModel(ListCheckpoints(b).back(), "cpu").model;
  c10::InferenceMode inference;
  // What each teacher does on its envs (A: envs 0 and 2 as its task 0; B: envs 1 and 3 as its task 0).
  auto act = [](agents::ActorCritic m, const agents::Observation& obs, const at::Tensor& memory) {
    return m->Act(obs, memory, skills::TaskBatch::FromTaskIds(obs.task_ids));
  };
  const auto zeros_a = at::zeros({2, model_a->memory_size()});
  const auto zeros_b = at::zeros({2, model_b->memory_size()});
  const agents::PolicyOutput want_a = act(model_a, o.Rows({0, 2}, 0), zeros_a);
  const agents::PolicyOutput want_b = act(model_b, o.Rows({1, 3}, 0), zeros_b);
  // B's task 1 (the student's task id of GoToRedBallNoDists) would act otherwise: the mapping matters.
  const agents::PolicyOutput wrong_b = act(model_b, o.Rows({1, 3}, 1), zeros_b);
  ASSERT_FALSE(at::allclose(want_b.log_probs, wrong_b.log_probs, 1e-4, 1e-4));

  const TeacherOutput got = teachers.Step(o.images, o.tokens, o.lengths, at::ones({n}));
  const at::Tensor rows_a = at::tensor({0, 2}, at::kLong), rows_b = at::tensor({1, 3}, at::kLong);
  EXPECT_TRUE(at::allclose(got.log_probs.index_select(0, rows_a), want_a.log_probs, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(got.log_probs.index_select(0, rows_b), want_b.log_probs, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(got.values.index_select(0, rows_b), want_b.values, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(teachers.memory(1), want_b.memory, 1e-5, 1e-6));

  // The next step carries each teacher's memory, zeroed where an episode starts (env 3).
  const at::Tensor mask = at::tensor({1.0f, 1.0f, 1.0f, 0.0f});
  const at::Tensor memory_b = want_b.memory * at::tensor({1.0f, 0.0f}).unsqueeze(1);
  const agents::PolicyOutput next_b = act(model_b, o.Rows({1, 3}, 0), memory_b);
  const TeacherOutput got2 = teachers.Step(o.images, o.tokens, o.lengths, mask);
  EXPECT_TRUE(at::allclose(got2.log_probs.index_select(0, rows_b), next_b.log_probs, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(teachers.memory(1), next_b.memory, 1e-5, 1e-6));
  EXPECT_FALSE(at::allclose(got2.log_probs.index_select(0, rows_b), want_b.log_probs, 1e-5, 1e-6));
}

TEST(TeacherSet, UnusableTeachersGiveOneLineErrors) {
  const std::string a = MakeTeacher("errors_a", {kObjS4}, "none", 1);
  const std::string both = MakeTeacher("errors_both", {kRedBall, kObjS4}, "none", 2);
  const std::vector<std::string> levels = {kObjS4, kRedBall};
  const std::vector<int> env_tasks = {0, 1};
  const std::string empty_dir = (fs::temp_directory_path() / "skillgrid_teachers_test_empty").string();
  fs::remove_all(empty_dir);
  fs::create_directories(empty_dir);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"/nonexistent/teacher"}, "--teacher: /nonexistent/teacher does not exist"},
      {{empty_dir}, "holds no checkpoint"},
      {{a}, "no teacher was trained on " + kRedBall},
      {{both, a}, "teaches none of the levels"},
  };
  for (const auto& [sources, want] : cases) {
    const std::string e = ErrorOf([&] { TeacherSet t(sources, levels, env_tasks, at::kCPU); });
    EXPECT_NE(e.find(want), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  TeacherSet ok({both}, levels, env_tasks, at::kCPU);
  const std::string e = ErrorOf([&] { ok.set_memory(0, at::zeros({3, 5})); });
  EXPECT_NE(e.find("teacher 0's memory is [3, 5] there"), std::string::npos) << e;
}

}  // namespace
}  // namespace skillgrid::training
