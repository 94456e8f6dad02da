// `skillgrid render`: the GIF, heatmap and hierarchy files decode with the expected sizes and
// frame counts, and their pixels match the engine's renderer and the drawing library.
#include <gtest/gtest.h>

#include "envs/image_io.h"
#include "envs/render.h"
#include "test_util.h"
#include "viz/canvas.h"
#include "viz/cluster.h"
#include "viz/dashboard.h"
#include "viz/dendrogram.h"
#include "viz/episode_panel.h"
#include "viz/heatmap.h"
#include "viz/session.h"

namespace skillgrid::viz {
namespace {

using testing::Cli;
using testing::RunCommand;

const std::vector<std::string> kLevels = {"BabyAI-GoToObj-v0", "BabyAI-GoToLocal-v0"};

// Compares `region` of `image` with `expected` pixel for pixel; returns mismatches.
int CountMismatches(const envs::RgbImage& image, Rect region, const envs::RgbImage& expected) {
  int bad = 0;
  for (int y = 0; y < region.h; ++y) {
    for (int x = 0; x < region.w; ++x) bad += PixelAt(image, region.x + x, region.y + y) != PixelAt(expected, x, y);
  }
  return bad;
}

TEST(RenderExport, GifHasAnEpisodePerTaskDrawnByTheEngineRenderer) {
  testing::TempDir dir("gif");
  testing::WriteFixtureRun(dir.str(), kLevels);
  const std::string gif_path = dir / "episodes.gif";
  const auto r = RunCommand(Cli() + " render --run " + dir.str() + " --actor bot --seed 5 --tile 8 --out " + gif_path);
  ASSERT_EQ(r.status, 0) << r.output;
  const envs::GifAnimation gif = envs::ReadGif(gif_path);

  // The same episodes, replayed with the library.
  SessionConfig sc;
  sc.levels = kLevels;
  sc.seed = 5;
  Session session(sc, MakeBotActor());
  PanelStyle ps;
  ps.tile_px = 8;
  int w = 260, h = 0;
  for (int i = 0; i < session.num_slots(); ++i) {
    const auto& world = session.slot(i).episode.world();
    w = std::max(w, world.grid.width() * 8 + 8);
    h = std::max(h, world.grid.height() * 8);
  }
  ps.width = w;
  ps.height = PanelHeaderHeight(ps) + h + PanelFooterHeight(ps);
  EXPECT_EQ(gif.width, ps.width);
  EXPECT_EQ(gif.height, ps.height);

  size_t frame = 0;
  envs::RgbImage expected;
  envs::RenderOptions ro;
  ro.tile_px = 8;
  for (int i = 0; i < session.num_slots(); ++i) {
    int steps = 0;
    while (true) {
      ASSERT_LT(frame, gif.frames.size()) << "too few frames";
      const auto& world = session.slot(i).episode.world();
      const PanelLayout L = LayoutPanel(world, ps, 0, 0);
      envs::RenderGrid(world, ro, &expected);
      ASSERT_EQ(CountMismatches(gif.frames[frame], L.grid, expected), 0)
          << "task " << i << " step " << steps << " (frame " << frame << ")";
      ++frame;
      if (session.slot(i).done) break;
      session.Step(i, false);
      ++steps;
    }
    EXPECT_EQ(session.slot(i).successes, 1) << "the bot solves " << kLevels[i];
  }
  EXPECT_EQ(frame, gif.frames.size());
  // The last frame of an episode is held for a second.
  EXPECT_EQ(gif.delays_cs.back(), 100);
}

TEST(RenderExport, HeatmapAndHierarchyMatchTheDrawingLibrary) {
  testing::TempDir dir("png");
  const RoutingSnapshot snap = testing::WriteFixtureRun(dir.str(), kLevels);
  const auto r = RunCommand(Cli() + " render --run " + dir.str() + " --heatmap " + (dir / "h.png") +
                            " --hierarchy " + (dir / "d.png") + " --layer actor.0 --head 1");
  ASSERT_EQ(r.status, 0) << r.output;
  const envs::RgbImage heat = envs::ReadPng(dir / "h.png");
  const RoutingMatrix& m = snap.matrices[1];
  HeatmapStyle hs;
  hs.vmax = 0.0f;  // the exports scale 0 .. the matrix's largest weight (0.8 here)
  hs.title = "layer actor.0  head 2/2  frames 4096";
  HeatmapLayout L;
  const envs::RgbImage want = RenderHeatmap(m, hs, &L);
  EXPECT_FLOAT_EQ(L.vmax, 0.8f);
  ASSERT_EQ(heat.width, want.width);
  ASSERT_EQ(heat.height, want.height);
  EXPECT_EQ(heat.pixels, want.pixels);
  for (int t = 0; t < m.num_tasks(); ++t) {
    for (int s = 0; s < m.num_skills; ++s) {
      EXPECT_EQ(PixelAt(heat, L.Cell(t, s).cx(), L.Cell(t, s).cy()), ScaleColor(m.at(t, s) / 0.8f));
    }
  }
  const envs::RgbImage tree = envs::ReadPng(dir / "d.png");
  const Clustering c = ClusterTasks(m);
  DendrogramStyle ds;
  ds.title = "tasks by skill allocation: actor.0 head 2";
  ds.tree_width = 240;
  const envs::RgbImage want_tree = RenderDendrogram(c, m.task_names, ds);
  ASSERT_EQ(tree.width, want_tree.width);
  ASSERT_EQ(tree.height, want_tree.height);
  EXPECT_EQ(tree.pixels, want_tree.pixels);
}

TEST(RenderExport, AllLayersStackAndHierarchyUsesEveryHead) {
  testing::TempDir dir("all");
  const RoutingSnapshot snap = testing::WriteFixtureRun(dir.str(), kLevels);
  const auto r = RunCommand(Cli() + " render --run " + dir.str() + " --heatmap " + (dir / "h.png") +
                            " --layer all --hierarchy " + (dir / "d.png"));
  ASSERT_EQ(r.status, 0) << r.output;
  const envs::RgbImage heat = envs::ReadPng(dir / "h.png");
  int height = 0;
  for (const auto& m : snap.matrices) {
    HeatmapStyle hs;
    hs.title = "x";
    height += RenderHeatmap(m, hs).height;
  }
  EXPECT_EQ(heat.height, height);
  EXPECT_GT(envs::ReadPng(dir / "d.png").width, 240);
}

TEST(RenderExport, BadInputGetsOneLineErrors) {
  testing::TempDir dir("bad");
  testing::WriteFixtureRun(dir.str(), kLevels);
  auto one_line_error = [](const testing::CommandResult& r, const std::string& needle) {
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  };
  // No checkpoint and no actor: say what is missing.
  one_line_error(RunCommand(Cli() + " render --run " + dir.str() + " --out " + (dir / "x.gif")),
                 "--actor bot");
  one_line_error(RunCommand(Cli() + " render --level BabyAI-GoToLocl-v0 --actor bot --out " + (dir / "x.gif")),
                 "did you mean");
  one_line_error(RunCommand(Cli() + " render --run " + dir.str() + " --heatmap " + (dir / "x.png") +
                            " --layer nope"),
                 "no layer 'nope'");
  one_line_error(RunCommand(Cli() + " render --run " + (dir / "missing") + " --heatmap " + (dir / "x.png")),
                 "does not exist");
  one_line_error(RunCommand(Cli() + " render --run " + dir.str()), "nothing to write");
  testing::TempDir none("none");
  testing::WriteFixtureRun(none.str(), kLevels, "none");
  one_line_error(RunCommand(Cli() + " render --run " + none.str() + " --heatmap " + (dir / "x.png")),
                 "no routing to show");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.png"));
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gif"));
}

TEST(RenderExport, CheckpointWithoutLoaderSaysWhatIsMissing) {
  testing::TempDir dir("ckpt");
  testing::WriteFixtureRun(dir.str(), kLevels);
  testing::WriteFile(dir / "ckpt_000100.pt", "not a checkpoint");
  // Routing exports never need the policy.
  auto r = RunCommand(Cli() + " render --run " + dir.str() + " --heatmap " + (dir / "h.png"));
  EXPECT_EQ(r.status, 0) << r.output;
  // Episodes do: either the policy loads, or the error names the checkpoint and the way out.
  r = RunCommand(Cli() + " render --run " + dir.str() + " --out " + (dir / "e.gif"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("ckpt_000100.pt"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  // The bot still works on that run.
  r = RunCommand(Cli() + " render --run " + dir.str() + " --actor bot --max-steps 2 --out " + (dir / "e.gif"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(envs::ReadGif(dir / "e.gif").frames.size(), 6u);  // 2 tasks x (start + 2 steps)
}

TEST(RenderExport, StatesFileDrivesExactEpisodes) {
  // A conformance trace line as the start state: the GIF's first frame is its initial state.
  const std::string traces = std::string(SKILLGRID_SHARED_DIR) + "/conformance/babyai_public.jsonl";
  if (!std::filesystem::exists(traces)) GTEST_SKIP() << "no conformance traces";
  testing::TempDir dir("states");
  std::ifstream in(traces);
  std::string line;
  std::getline(in, line);
  testing::WriteFile(dir / "state.json", line);
  const auto r = RunCommand(Cli() + " render --states " + (dir / "state.json") +
                            " --actor random --max-steps 3 --tile 8 --out " + (dir / "s.gif"));
  ASSERT_EQ(r.status, 0) << r.output;
  const envs::GifAnimation gif = envs::ReadGif(dir / "s.gif");
  EXPECT_EQ(gif.frames.size(), 4u);
  const auto starts = LoadStartStates(dir / "state.json");
  PanelStyle ps;
  ps.tile_px = 8;
  const auto& world = starts[0].state.world;
  ps.width = std::max(260, world.grid.width() * 8 + 8);
  ps.height = PanelHeaderHeight(ps) + world.grid.height() * 8 + PanelFooterHeight(ps);
  envs::RenderOptions ro;
  ro.tile_px = 8;
  envs::RgbImage expected;
  envs::RenderGrid(world, ro, &expected);
  EXPECT_EQ(CountMismatches(gif.frames[0], LayoutPanel(world, ps, 0, 0).grid, expected), 0);
}

}  // namespace
}  // namespace skillgrid::viz
