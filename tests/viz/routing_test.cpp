// Routing snapshots: the JSON layouts skills.json may use.
#include "viz/routing.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace skillgrid::viz {
namespace {

TEST(Routing, RoundTripsThroughJson) {
  const RoutingSnapshot snap = testing::FixtureSnapshot({"BabyAI-GoToObj-v0", "BabyAI-GoTo-v0", "c"});
  const RoutingSnapshot back = RoutingSnapshotFromJson(RoutingSnapshotToJson(snap));
  ASSERT_EQ(back.matrices.size(), 3u);
  EXPECT_EQ(back.frames, 4096);
  EXPECT_EQ(back.LayerNames(), (std::vector<std::string>{"actor.0", "critic.0"}));
  EXPECT_EQ(back.Find("actor.0", 1), 1);
  EXPECT_EQ(back.Find("critic.0", 1), -1);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back.matrices[i].weights, snap.matrices[i].weights);
    EXPECT_EQ(back.matrices[i].num_heads, snap.matrices[i].num_heads);
    EXPECT_EQ(back.matrices[i].task_names, snap.matrices[i].task_names);
  }
}

TEST(Routing, AcceptsTheAgentsLayerMapAndDefaultTasks) {
  // ActorCritic::RoutingSnapshot(): {"layer": T x S} (or h x T x S).
  const nlohmann::json j = nlohmann::json::parse(
      R"({"frames": 10, "routing": {"actor1": [[1, 0], [0, 1]], "conv1": [[[1, 0], [0, 1]], [[0.5, 0.5], [1, 0]]]}})");
  const RoutingSnapshot s = RoutingSnapshotFromJson(j, {"BabyAI-GoToObj-v0", "BabyAI-GoTo-v0"});
  ASSERT_EQ(s.matrices.size(), 3u);
  EXPECT_EQ(s.matrices[0].layer, "actor1");
  EXPECT_EQ(s.matrices[0].task_names[1], "BabyAI-GoTo-v0");
  EXPECT_EQ(s.matrices[1].layer, "conv1");
  EXPECT_EQ(s.matrices[2].num_heads, 2);
  EXPECT_FLOAT_EQ(s.matrices[2].at(0, 1), 0.5f);
  // The bare map, no defaults: rows are named task1, task2.
  const RoutingSnapshot bare = RoutingSnapshotFromJson(nlohmann::json::parse(R"({"l": [[1, 0], [0, 1]]})"));
  EXPECT_EQ(bare.matrices[0].task_names, (std::vector<std::string>{"task1", "task2"}));
}

TEST(Routing, ReadsTheTrainersSkillsJson) {
  // training/trainer.cpp: {"levels", "router", "snapshots": [{"update", "frames", "layers": {name: T x S}}]}.
  testing::TempDir dir("trainer");
  testing::WriteFile(dir / "skills.json", R"({"levels": ["BabyAI-GoToObj-v0", "BabyAI-GoTo-v0"], "router": "poly",
    "snapshots": [{"update": 1, "frames": 2560, "layers": {"actor1": [[0.5, 0.5], [0.1, 0.9]]}},
                  {"update": 2, "frames": 5120, "layers": {"actor1": [[0.9, 0.1], [0.1, 0.9]], "critic1": [[1, 0], [0, 1]]}}]})");
  const auto all = LoadRoutingSnapshots(dir / "skills.json");
  ASSERT_EQ(all.size(), 2u);
  const RoutingSnapshot& last = all.back();
  EXPECT_EQ(last.frames, 5120);
  ASSERT_EQ(last.matrices.size(), 2u);
  EXPECT_EQ(last.matrices[0].task_names, (std::vector<std::string>{"BabyAI-GoToObj-v0", "BabyAI-GoTo-v0"}));
  EXPECT_EQ(last.matrices[0].router, "poly");
  EXPECT_FLOAT_EQ(last.matrices[0].at(0, 0), 0.9f);
  EXPECT_EQ(last.matrices[1].layer, "critic1");
}

TEST(Routing, RejectsMalformedSnapshotsInOneLine) {
  auto fails = [](const char* text) {
    try {
      RoutingSnapshotFromJson(nlohmann::json::parse(text));
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(fails(R"({"tasks": ["a", "b"], "layers": [{"name": "l", "matrix": [[1, 2]]}]})").find("1 rows for 2 tasks"),
            std::string::npos);
  EXPECT_NE(fails(R"({"tasks": ["a", "b"], "layers": [{"name": "l", "matrix": [[1, 2], [3]]}]})").find("different lengths"),
            std::string::npos);
  EXPECT_NE(fails(R"({"tasks": ["a"]})").find("no layers"), std::string::npos);
}

TEST(Routing, ReadsJsonLinesAndSnapshotLists) {
  testing::TempDir dir("routing");
  const RoutingSnapshot a = testing::FixtureSnapshot({"a", "b", "c"});
  RoutingSnapshot b = a;
  b.frames = 8192;
  const std::string lines = dir / "skills.jsonl";
  // Two snapshots and a torn last line (a snapshot still being appended).
  testing::WriteFile(lines, RoutingSnapshotToJson(a).dump() + "\n" + RoutingSnapshotToJson(b).dump() +
                                "\n{\"frames\": 3");
  const auto all = LoadRoutingSnapshots(lines);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(LoadLatestRoutingSnapshot(lines).frames, 8192);
  const std::string list = dir / "skills.json";
  testing::WriteFile(list, nlohmann::json{{"snapshots", {RoutingSnapshotToJson(a), RoutingSnapshotToJson(b)}}}.dump());
  EXPECT_EQ(LoadRoutingSnapshots(list).size(), 2u);
  EXPECT_THROW(LoadRoutingSnapshots(dir / "missing.json"), std::runtime_error);
}

TEST(Routing, ShortNamesAndFiringSkills) {
  EXPECT_EQ(ShortTaskName("BabyAI-GoToRedBallGrey-v0"), "GoToRedBallGrey");
  EXPECT_EQ(ShortTaskName("GoTo"), "GoTo");
  EXPECT_EQ(ShortTaskName("BabyAI-GoToObjMazeS4R2-v0"), "GoToObjMazeS4R2");
  const RoutingSnapshot s = testing::FixtureSnapshot({"a", "b", "c"});
  EXPECT_EQ(FiringSkills(s.matrices[0], 0), (std::vector<int>{0, 3}));   // 1, 0, .25, .5
  EXPECT_EQ(FiringSkills(s.matrices[0], 2), (std::vector<int>{1, 2}));   // 0, 1, .75, .1
  EXPECT_EQ(FiringSkills(s.matrices[2], 0), (std::vector<int>{2, 3}));
  EXPECT_TRUE(FiringSkills(s.matrices[0], 7).empty());
}

}  // namespace
}  // namespace skillgrid::viz
