// Tests of Expert/custom allocations: Polytropon's table, JSON parsing, presets, bad files.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <torch/torch.h>

#include "skills/expert_allocation.h"
#include "skills/router.h"
#include "test_util.h"

namespace skillgrid::skills {
namespace {

using testing::ExpectThrowWith;

TEST(ExpertAllocation, PolytroponTableMatchesThePaper) {
  const auto table = PolytroponExpertAllocation();
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(PolytroponLevels().front(), "GoToObj");
  EXPECT_TRUE(torch::equal(table[0], torch::tensor({1.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f})));
  EXPECT_TRUE(torch::equal(table[5], torch::tensor({1.f, 1.f, 1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f})));  // PickupLoc
  EXPECT_TRUE(torch::equal(table[7], torch::tensor({1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 1.f, 0.f})));  // GoTo
  EXPECT_EQ(table.select(1, 8).sum().item<float>(), 0.f);  // skill 9 unused
  // Each Expert row averages its active skills equally.
  Router router(RouterOptions::Fixed(table));
  EXPECT_TRUE(torch::allclose(router->EvalWeights()[7][0], table[7] / 5, 1e-6, 1e-6));
}

TEST(ExpertAllocation, JsonUsesTheCallersTaskOrderAndEnvironmentIds) {
  const nlohmann::json spec = {{"n_skills", 3}, {"one_based", false}, {"tasks", {{"GoTo", {0, 2}}, {"GoToObj", {1}}}}};
  const auto allocation = AllocationFromJson(spec, {"BabyAI-GoToObj-v0", "BabyAI-GoTo-v0"});
  EXPECT_TRUE(torch::equal(allocation, torch::tensor({{0.f, 1.f, 0.f}, {1.f, 0.f, 1.f}})));
  EXPECT_EQ(AllocationPreset("expert", {"GoTo", "GoToObj"}).size(0), 2);
  EXPECT_TRUE(torch::equal(AllocationPreset("private", {"a", "b"}), torch::eye(2)));
}

TEST(ExpertAllocation, BadFilesNameTheOffendingTasksAndIds) {
  const nlohmann::json unknown = {{"n_skills", 2}, {"tasks", {{"GoTo", {1}}, {"Fly", {2}}}}};
  ExpectThrowWith([&] { AllocationFromJson(unknown, {"GoTo"}); }, {"unknown tasks: Fly", "known tasks: GoTo"});
  const nlohmann::json missing = {{"n_skills", 2}, {"tasks", {{"GoTo", {1}}}}};
  ExpectThrowWith([&] { AllocationFromJson(missing, {"GoTo", "PickupLoc"}); }, {"no entry for tasks: PickupLoc"});
  const nlohmann::json bad_id = {{"n_skills", 2}, {"tasks", {{"GoTo", {3}}}}};
  ExpectThrowWith([&] { AllocationFromJson(bad_id, {"GoTo"}); }, {"skill id 3", "1..2"});
  ExpectThrowWith([&] { AllocationPreset("expert", {"GoTo", "BossLevel"}); }, {"BossLevel"});
  ExpectThrowWith([&] { LoadAllocationFile("/nonexistent/allocation.json", {"GoTo"}); }, {"/nonexistent/allocation.json"});
}

TEST(ExpertAllocation, LoadsAFile) {
  const std::string path = ::testing::TempDir() + "skills_expert_allocation_test.json";
  std::ofstream(path) << PolytroponExpertJson().dump();
  EXPECT_TRUE(torch::equal(LoadAllocationFile(path, PolytroponLevels()), PolytroponExpertAllocation()));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace skillgrid::skills
