// The viewer in a real window: the test starts Xvfb itself (skipped when Xvfb is not
// installed), runs `skillgrid view` on fixture runs for a few frames, captures the window with
// --screenshot and checks pixels: the known routing matrix gives the expected heatmap colours
// and the agent's tile shows the agent at its position. Also: no display -> one-line error.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "envs/image_io.h"
#include "envs/render.h"
#include "test_util.h"
#include "viz/controller.h"

namespace skillgrid::viz {
namespace {

using testing::Cli;
using testing::RunCommand;

const std::vector<std::string> kLevels = {"BabyAI-GoToObj-v0", "BabyAI-GoToLocal-v0"};

// An Xvfb server on a display it picks itself (-displayfd, so parallel tests never collide),
// killed by the destructor.
class Xvfb {
 public:
  Xvfb() {
    const std::string binary = Binary();
    if (binary.empty()) return;
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      std::freopen("/dev/null", "w", stdout);
      std::freopen("/dev/null", "w", stderr);
      const std::string fd = std::to_string(fds[1]);
      ::execl(binary.c_str(), "Xvfb", "-displayfd", fd.c_str(), "-screen", "0", "1280x800x24",
              "-nolisten", "tcp", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    // Xvfb writes the display number and a newline once it accepts connections.
    std::string number;
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') number += c;
    ::close(fds[0]);
    if (!number.empty()) display_ = ":" + number;
  }
  ~Xvfb() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
    }
  }
  /// ":N", or "" if no server could be started.
  const std::string& display() const { return display_; }
  /// The Xvfb binary, or "" if it is not installed.
  static std::string Binary() {
    for (const char* c : {"/usr/bin/Xvfb", "/usr/local/bin/Xvfb"}) {
      if (::access(c, X_OK) == 0) return c;
    }
    return "";
  }

 private:
  pid_t pid_ = -1;
  std::string display_;
};

TEST(Viewer, NoDisplayIsOneLineAndNonZero) {
  const auto r = RunCommand("env -u DISPLAY -u WAYLAND_DISPLAY " + Cli() + " view --level BabyAI-GoToObj-v0");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
#if SKILLGRID_HAVE_VIEWER
  EXPECT_NE(r.output.find("no display"), std::string::npos) << r.output;
#endif
}

#if SKILLGRID_HAVE_VIEWER

class ViewerWindow : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Xvfb::Binary().empty()) GTEST_SKIP() << "Xvfb is not installed";
    xvfb_ = std::make_unique<Xvfb>();
    if (xvfb_->display().empty()) GTEST_SKIP() << "could not start Xvfb";
  }
  testing::CommandResult View(const std::string& args) {
    return RunCommand("DISPLAY=" + xvfb_->display() + " " + Cli() + " view " + args);
  }
  std::unique_ptr<Xvfb> xvfb_;
};

TEST_F(ViewerWindow, ScreenshotShowsTheRoutingMatrixAndTheAgent) {
  testing::TempDir dir("view");
  const RoutingSnapshot snap = testing::WriteFixtureRun(dir.str(), kLevels);
  const std::string shot = dir / "shot.png";
  const auto r = View("--run " + dir.str() + " --seed 3 --paused --frames 5 --screenshot " + shot);
  ASSERT_EQ(r.status, 0) << r.output;
  const envs::RgbImage img = envs::ReadPng(shot);
  ASSERT_EQ(img.width, 1280);
  ASSERT_EQ(img.height, 800);

  // The same dashboard, composed by the library: the window must show exactly it.
  SessionConfig sc;
  sc.levels = kLevels;
  sc.seed = 3;
  ControllerConfig cc;
  cc.paused = true;
  cc.manual = true;  // no checkpoint: manual play
  cc.skills_path = dir / "skills.json";
  cc.default_tasks = kLevels;
  cc.run_dir = dir.str();
  cc.initial_message = "no checkpoint yet: manual play (arrows, p, d, t)";
  ViewerController c(std::make_unique<Session>(sc, nullptr), cc);
  envs::RgbImage want;
  const DashboardLayout L = c.Draw(&want);
  ASSERT_TRUE(L.has_heatmap);

  // Heatmap: every cell of the known matrix (layer actor.0, head 1) has its scale colour.
  const RoutingMatrix& m = snap.matrices[0];
  for (int t = 0; t < m.num_tasks(); ++t) {
    for (int s = 0; s < m.num_skills; ++s) {
      const Rect cell = L.heatmap.Cell(L.heatmap.RowOf(t), s);
      EXPECT_EQ(PixelAt(img, cell.cx(), cell.cy()), ScaleColor(m.at(t, s))) << "task " << t << " skill " << s;
      // (The highlighted row's 2-px frame may cover the outermost pixels of its neighbours.)
      EXPECT_EQ(PixelAt(img, cell.x + 1, cell.y + 1), ScaleColor(m.at(t, s)));
      EXPECT_EQ(PixelAt(img, cell.x + cell.w - 2, cell.y + cell.h - 2), ScaleColor(m.at(t, s)));
    }
  }
  // The task on screen (0) is framed; its firing skills (0 and 3) are marked.
  const Rect row0 = L.heatmap.Cell(0, 0);
  EXPECT_EQ(PixelAt(img, row0.x - 2, row0.cy()), palette::kAccent);
  const int marker_y = L.heatmap.grid.y + L.heatmap.grid.h + 4;
  EXPECT_EQ(PixelAt(img, L.heatmap.Cell(0, 0).cx(), marker_y), palette::kAccent);
  EXPECT_EQ(PixelAt(img, L.heatmap.Cell(0, 3).cx(), marker_y), palette::kAccent);
  EXPECT_NE(PixelAt(img, L.heatmap.Cell(0, 1).cx(), marker_y), palette::kAccent);

  // Episodes: each panel's grid is the engine's rendering; the agent's tile shows the agent.
  for (int i = 0; i < c.session().num_slots(); ++i) {
    const envs::WorldState& world = c.session().slot(i).episode.world();
    const Rect grid = L.panels[i].grid;
    const int tile = grid.w / world.grid.width();
    ASSERT_EQ(grid.w, tile * world.grid.width());
    envs::RgbImage expected_grid;
    envs::RenderOptions ro;
    ro.tile_px = tile;
    envs::RenderGrid(world, ro, &expected_grid);
    int bad = 0;
    for (int y = 0; y < grid.h; ++y) {
      for (int x = 0; x < grid.w; ++x) bad += PixelAt(img, grid.x + x, grid.y + y) != PixelAt(expected_grid, x, y);
    }
    EXPECT_EQ(bad, 0) << "panel " << i;
    envs::RgbImage agent_tile;
    envs::RenderTile(world.grid.at(world.agent_pos), world.agent_dir, true, tile, &agent_tile);
    const int ax = grid.x + world.agent_pos.x * tile, ay = grid.y + world.agent_pos.y * tile;
    int agent_bad = 0, red = 0;
    for (int y = 0; y < tile; ++y) {
      for (int x = 0; x < tile; ++x) {
        const Rgb p = PixelAt(img, ax + x, ay + y);
        agent_bad += p != PixelAt(agent_tile, x, y);
        red += p.r > 200 && p.g < 100 && p.b < 100;  // Minigrid's red, highlighted
      }
    }
    EXPECT_EQ(agent_bad, 0) << "panel " << i << ": the agent's tile";
    EXPECT_GT(red, tile * tile / 8) << "panel " << i << ": the agent's red triangle";
  }
  // And the whole window is exactly the composed dashboard.
  int bad = 0;
  for (size_t k = 0; k < img.pixels.size(); ++k) bad += img.pixels[k] != want.pixels[k];
  EXPECT_EQ(bad, 0);
}

TEST_F(ViewerWindow, RunWithoutSkillsShowsEpisodesAndSaysSo) {
  testing::TempDir dir("none");
  testing::WriteFixtureRun(dir.str(), kLevels, "none");
  const std::string shot = dir / "shot.png";
  const auto r = View("--run " + dir.str() + " --actor bot --frames 10 --speed 30 --screenshot " + shot);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("no routing to show"), std::string::npos) << r.output;
  const envs::RgbImage img = envs::ReadPng(shot);
  // The note is written on the right where the heatmap would be: text pixels there, no
  // colour-scale pixels anywhere right of the panels.
  int text = 0, scale = 0;
  for (int y = 0; y < 700; ++y) {
    for (int x = 1280 * 11 / 20 + 8; x < 1280; ++x) {
      const Rgb p = PixelAt(img, x, y);
      text += p == palette::kText;
      scale += p == ScaleColor(0.0f) || p == ScaleColor(1.0f);
    }
  }
  EXPECT_GT(text, 50);
  EXPECT_EQ(scale, 0);
}

TEST_F(ViewerWindow, ManualPlayOfALevelWithoutCheckpoint) {
  testing::TempDir dir("manual");
  const auto r = View("--level BabyAI-GoToObj-v0 --frames 3 --screenshot " + (dir / "m.png"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("manual play"), std::string::npos) << r.output;
  EXPECT_EQ(envs::ReadPng(dir / "m.png").width, 1280);
}

#endif  // SKILLGRID_HAVE_VIEWER

}  // namespace
}  // namespace skillgrid::viz
