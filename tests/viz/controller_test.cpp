// The viewer's logic without a window: manual play, layer/head selection, --follow reloads.
#include "viz/controller.h"

#include <gtest/gtest.h>

#include <thread>

#include "test_util.h"

namespace skillgrid::viz {
namespace {

const std::vector<std::string> kLevels = {"BabyAI-GoToObj-v0", "BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0"};

std::unique_ptr<Session> MakeSession(std::unique_ptr<Actor> actor, uint64_t seed = 1) {
  SessionConfig sc;
  sc.levels = kLevels;
  sc.seed = seed;
  return std::make_unique<Session>(sc, std::move(actor));
}

TEST(Session, SeedsAreDeterministicAndBotSolves) {
  SessionConfig sc;
  sc.levels = {"BabyAI-GoToLocal-v0"};
  sc.seed = 9;
  Session a(sc, MakeBotActor());
  Session b(sc, nullptr);
  EXPECT_EQ(a.slot(0).episode.world().mission, b.slot(0).episode.world().mission);
  EXPECT_EQ(a.slot(0).episode.world().agent_pos, b.slot(0).episode.world().agent_pos);
  for (int i = 0; i < 200 && a.slot(0).episodes < 3; ++i) a.Step(0, false);
  EXPECT_EQ(a.slot(0).episodes, 3);
  EXPECT_EQ(a.slot(0).successes, 3);
  // Without an actor nothing moves.
  b.Step(0, false);
  EXPECT_EQ(b.slot(0).episode.world().step_count, 0);
}

TEST(Controller, ManualPlayStepsTheSelectedTaskOnly) {
  ControllerConfig cc;
  cc.manual = true;
  cc.paused = false;
  ViewerController c(MakeSession(MakeBotActor()), cc);
  c.Handle(Command::kNextTask);
  EXPECT_EQ(c.state().selected, 1);
  const envs::WorldState before = c.session().slot(1).episode.world();
  c.Handle(Command::kLeft);
  EXPECT_EQ(c.session().slot(1).episode.world().agent_dir, (before.agent_dir + 3) % 4);
  EXPECT_EQ(c.session().slot(1).last_action, "left");
  c.Handle(Command::kRight);
  c.Handle(Command::kRight);
  EXPECT_EQ(c.session().slot(1).episode.world().agent_dir, (before.agent_dir + 1) % 4);
  EXPECT_EQ(c.session().slot(1).episode.world().step_count, 3);
  // Time runs the other slots with the bot; the manual slot waits for keys.
  c.Tick(1.0);  // 4 steps at the default speed
  EXPECT_EQ(c.session().slot(1).episode.world().step_count, 3);
  EXPECT_GT(c.session().slot(0).episode.world().step_count + c.session().slot(0).episodes, 0);
  // Leaving manual play: the bot (told about the manual actions) takes over.
  c.Handle(Command::kToggleManual);
  c.Handle(Command::kSingleStep);
  EXPECT_TRUE(c.state().paused);
  EXPECT_EQ(c.session().slot(1).episode.world().step_count, 4);
}

TEST(Controller, ManualPlayWithoutAnyActor) {
  ControllerConfig cc;
  cc.manual = true;
  ViewerController c(MakeSession(nullptr), cc);
  c.Handle(Command::kForward);
  c.Handle(Command::kPickup);
  c.Handle(Command::kToggle);
  c.Handle(Command::kDrop);
  EXPECT_EQ(c.session().slot(0).episode.world().step_count, 4);
  c.Handle(Command::kRestart);
  EXPECT_EQ(c.session().slot(0).episode.world().step_count, 0);
  envs::RgbImage img;
  const DashboardLayout L = c.Draw(&img);
  EXPECT_EQ(img.width, 1280);
  EXPECT_EQ(L.panels.size(), 3u);
  EXPECT_FALSE(L.has_heatmap);
}

TEST(Controller, LayersHeadsAndFiredSkills) {
  testing::TempDir dir("ctl");
  const RoutingSnapshot snap = testing::WriteFixtureRun(dir.str(), kLevels);
  ControllerConfig cc;
  cc.skills_path = dir / "skills.json";
  cc.paused = true;
  ViewerController c(MakeSession(nullptr), cc);
  ASSERT_NE(c.snapshot(), nullptr);
  EXPECT_EQ(c.state().matrix, 0);
  EXPECT_EQ(c.state().fired, FiringSkills(snap.matrices[0], 0));
  c.Handle(Command::kNextHead);
  EXPECT_EQ(c.state().matrix, 1);
  c.Handle(Command::kNextHead);  // wraps within the layer
  EXPECT_EQ(c.state().matrix, 0);
  c.Handle(Command::kNextLayer);
  EXPECT_EQ(c.state().matrix, 2);
  c.Handle(Command::kNextHead);  // one head only
  EXPECT_EQ(c.state().matrix, 2);
  c.Handle(Command::kPrevTask);
  EXPECT_EQ(c.state().selected, 2);
  EXPECT_EQ(c.state().fired, FiringSkills(snap.matrices[2], 2));
  c.Handle(Command::kPrevLayer);
  EXPECT_EQ(c.state().matrix, 0);
  envs::RgbImage img;
  const DashboardLayout L = c.Draw(&img);
  ASSERT_TRUE(L.has_heatmap);
  EXPECT_TRUE(L.has_dendrogram);
  // The heatmap shows the matrix, the selected task's row highlighted.
  for (int t = 0; t < 3; ++t) {
    for (int s = 0; s < 4; ++s) {
      const Rect cell = L.heatmap.Cell(t, s);
      EXPECT_EQ(PixelAt(img, cell.cx(), cell.cy()), ScaleColor(snap.matrices[0].at(t, s)));
    }
  }
  EXPECT_EQ(PixelAt(img, L.heatmap.Cell(2, 0).x - 2, L.heatmap.Cell(2, 0).cy()), palette::kAccent);
  c.Handle(Command::kFaster);
  EXPECT_DOUBLE_EQ(c.state().steps_per_second, 8.0);
  c.Handle(Command::kSlower);
  c.Handle(Command::kSlower);
  EXPECT_DOUBLE_EQ(c.state().steps_per_second, 2.0);
  c.Handle(Command::kToggleSample);
  EXPECT_TRUE(c.state().sample);
}

TEST(Controller, FollowReloadsNewSnapshotsAndKeepsTheLayer) {
  testing::TempDir dir("follow");
  RoutingSnapshot snap = testing::WriteFixtureRun(dir.str(), kLevels);
  std::filesystem::remove(dir / "skills.json");
  ControllerConfig cc;
  cc.run_dir = dir.str();
  cc.follow = true;
  cc.follow_interval_s = 0.5;
  cc.paused = true;
  cc.routing_note = "waiting for skills.json";
  ViewerController c(MakeSession(nullptr), cc);
  EXPECT_EQ(c.snapshot(), nullptr);
  c.Tick(1.0);
  EXPECT_EQ(c.snapshot(), nullptr);
  testing::WriteFile(dir / "skills.json", RoutingSnapshotToJson(snap).dump() + "\n");
  c.Tick(1.0);
  ASSERT_NE(c.snapshot(), nullptr);
  EXPECT_EQ(c.snapshot()->frames, 4096);
  c.Handle(Command::kNextLayer);
  EXPECT_EQ(c.state().matrix, 2);
  // Training appends a newer snapshot (JSON Lines).
  snap.frames = 8192;
  snap.matrices[2].weights[0] = 0.5f;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ofstream(dir / "skills.json", std::ios::app) << RoutingSnapshotToJson(snap).dump() << "\n";
  c.Tick(1.0);
  EXPECT_EQ(c.snapshot()->frames, 8192);
  EXPECT_EQ(c.state().matrix, 2);  // still critic.0
  EXPECT_FLOAT_EQ(c.snapshot()->matrices[2].weights[0], 0.5f);
  EXPECT_NE(c.state().message.find("frames 8192"), std::string::npos);
  // A checkpoint appears: the loader is asked for it, and a failure is shown, not fatal.
  int asked = 0;
  ControllerConfig cc2 = cc;
  cc2.load_checkpoint = [&](const std::string& path, std::string* why) -> std::unique_ptr<Actor> {
    ++asked;
    if (path.find("ckpt_2") != std::string::npos) return MakeRandomActor(1);
    *why = "cannot load " + path;
    return nullptr;
  };
  ViewerController c2(MakeSession(nullptr), cc2);
  testing::WriteFile(dir / "ckpt_1.pt", "x");
  c2.Tick(1.0);
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(c2.session().actor(), nullptr);
  c2.Tick(1.0);
  EXPECT_EQ(asked, 1);  // not retried
  testing::WriteFile(dir / "ckpt_2.pt", "x");
  c2.Tick(1.0);
  EXPECT_EQ(asked, 2);
  ASSERT_NE(c2.session().actor(), nullptr);
  EXPECT_EQ(c2.state().actor, "random actions");
}

}  // namespace
}  // namespace skillgrid::viz
