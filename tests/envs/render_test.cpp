// Pixel-level checks of the Minigrid-style renderer.
#include "envs/render.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <stdexcept>
#include <utility>

#include "envs/world.h"

namespace skillgrid::envs {
namespace {

constexpr int kTs = 32;

using Rgb = std::array<int, 3>;

/// A width x height world walled on its border, agent at `agent` facing `dir`.
WorldState WalledWorld(int width, int height, Pos agent, int dir) {
  WorldState w;
  w.grid = Grid(width, height);
  for (int x = 0; x < width; ++x) {
    w.Place({x, 0}, MakeObject(ObjectType::kWall, Color::kGrey));
    w.Place({x, height - 1}, MakeObject(ObjectType::kWall, Color::kGrey));
  }
  for (int y = 0; y < height; ++y) {
    w.Place({0, y}, MakeObject(ObjectType::kWall, Color::kGrey));
    w.Place({width - 1, y}, MakeObject(ObjectType::kWall, Color::kGrey));
  }
  w.agent_pos = agent;
  w.agent_dir = dir;
  return w;
}

RenderOptions Plain() {
  RenderOptions o;
  o.tile_px = kTs;
  o.highlight_visible = false;
  return o;
}

Rgb At(const RgbImage& img, int x, int y) {
  const uint8_t* p = img.at(x, y);
  return {p[0], p[1], p[2]};
}

/// Pixel at fraction (fx, fy) of tile (tx, ty).
Rgb TileAt(const RgbImage& img, int tx, int ty, double fx, double fy, int ts = kTs) {
  return At(img, tx * ts + static_cast<int>(fx * ts), ty * ts + static_cast<int>(fy * ts));
}

/// True if every pixel of tile (tx, ty) equals the first image's.
bool SameTile(const RgbImage& a, const RgbImage& b, int tx, int ty, int ts = kTs) {
  for (int y = ty * ts; y < (ty + 1) * ts; ++y) {
    for (int x = tx * ts; x < (tx + 1) * ts; ++x) {
      if (At(a, x, y) != At(b, x, y)) return false;
    }
  }
  return true;
}

bool Reddish(const Rgb& c) { return c[0] > 200 && c[1] < 100 && c[2] < 100; }

const Rgb kBlack{0, 0, 0};
const Rgb kGrey{100, 100, 100};
const Rgb kRed{255, 0, 0};
const Rgb kGreen{0, 255, 0};
const Rgb kBlue{0, 0, 255};
const Rgb kYellow{255, 255, 0};
const Rgb kPurple{112, 39, 195};

TEST(RenderGridTest, ImageSizeIsGridTimesTile) {
  WorldState w = WalledWorld(7, 5, {2, 2}, 0);
  RgbImage img;
  RenderGrid(w, Plain(), &img);
  EXPECT_EQ(img.width, 7 * kTs);
  EXPECT_EQ(img.height, 5 * kTs);
  EXPECT_EQ(img.pixels.size(), static_cast<size_t>(7 * kTs * 5 * kTs * 3));
  RenderOptions small = Plain();
  small.tile_px = 8;
  RenderGrid(w, small, &img);
  EXPECT_EQ(img.width, 7 * 8);
  EXPECT_EQ(img.height, 5 * 8);
}

TEST(RenderGridTest, WallTileIsGreyEverywhere) {
  WorldState w = WalledWorld(5, 5, {2, 2}, 0);
  RgbImage img;
  RenderGrid(w, Plain(), &img);
  for (int y = 0; y < kTs; ++y) {
    for (int x = 0; x < kTs; ++x) ASSERT_EQ(At(img, x, y), kGrey) << x << "," << y;
  }
  EXPECT_EQ(TileAt(img, 4, 3, 0.5, 0.5), kGrey);
}

TEST(RenderGridTest, EmptyTileIsBlackWithGridLinesOnTopAndLeft) {
  WorldState w = WalledWorld(5, 5, {3, 3}, 0);
  RgbImage img;
  RenderGrid(w, Plain(), &img);
  const int x0 = 1 * kTs, y0 = 2 * kTs;  // tile (1, 2) is empty
  for (int k = 0; k < kTs; ++k) {
    EXPECT_EQ(At(img, x0 + k, y0), kGrey);  // top edge
    EXPECT_EQ(At(img, x0, y0 + k), kGrey);  // left edge
  }
  for (int y = 1; y < kTs; ++y) {
    for (int x = 1; x < kTs; ++x) ASSERT_EQ(At(img, x0 + x, y0 + y), kBlack);
  }
}

TEST(RenderGridTest, ObjectsHaveTheirColoursAndShapes) {
  WorldState w = WalledWorld(8, 8, {6, 6}, 3);
  w.Place({1, 1}, MakeObject(ObjectType::kBall, Color::kRed));
  w.Place({2, 1}, MakeObject(ObjectType::kGoal, Color::kGreen));
  w.Place({3, 1}, MakeObject(ObjectType::kKey, Color::kYellow));
  w.Place({4, 1}, MakeObject(ObjectType::kBox, Color::kPurple));
  w.Place({5, 1}, MakeObject(ObjectType::kLava, Color::kRed));
  w.Place({6, 1}, MakeObject(ObjectType::kFloor, Color::kBlue));
  RgbImage img;
  RenderGrid(w, Plain(), &img);

  // Ball: a red disc of radius 0.31 on black.
  EXPECT_EQ(TileAt(img, 1, 1, 0.5, 0.5), kRed);
  EXPECT_EQ(TileAt(img, 1, 1, 0.3, 0.5), kRed);
  EXPECT_EQ(TileAt(img, 1, 1, 0.1, 0.1), kBlack);
  EXPECT_EQ(TileAt(img, 1, 1, 0.9, 0.9), kBlack);
  // Goal: the whole tile green, grid lines included.
  EXPECT_EQ(TileAt(img, 2, 1, 0.5, 0.5), kGreen);
  EXPECT_EQ(TileAt(img, 2, 1, 0.0, 0.0), kGreen);
  // Key: shaft, ring with a hole, black beside the shaft.
  EXPECT_EQ(TileAt(img, 3, 1, 0.56, 0.7), kYellow);
  EXPECT_EQ(TileAt(img, 3, 1, 0.40, 0.28), kYellow);
  EXPECT_EQ(TileAt(img, 3, 1, 0.56, 0.28), kBlack);
  EXPECT_EQ(TileAt(img, 3, 1, 0.8, 0.7), kBlack);
  // Box: outlined square with a horizontal slit, hollow elsewhere.
  EXPECT_EQ(TileAt(img, 4, 1, 0.5, 0.15), kPurple);
  EXPECT_EQ(TileAt(img, 4, 1, 0.5, 0.5), kPurple);
  EXPECT_EQ(TileAt(img, 4, 1, 0.5, 0.3), kBlack);
  EXPECT_EQ(TileAt(img, 4, 1, 0.05, 0.5), kBlack);
  // Lava: orange with black waves.
  EXPECT_EQ(TileAt(img, 5, 1, 0.5, 0.15), (Rgb{255, 128, 0}));
  EXPECT_EQ(TileAt(img, 5, 1, 0.3, 0.4), kBlack);  // a wave crest
  // Floor: half the colour, grid lines kept.
  EXPECT_EQ(TileAt(img, 6, 1, 0.5, 0.5), (Rgb{0, 0, 127}));
  EXPECT_EQ(TileAt(img, 6, 1, 0.5, 0.0), kGrey);
}

TEST(RenderGridTest, DoorStatesLookDifferent) {
  constexpr int kBig = 64;  // the door frames are thin: 0.04 of a tile
  RenderOptions opts = Plain();
  opts.tile_px = kBig;
  WorldState w = WalledWorld(6, 5, {1, 3}, 0);
  w.Place({2, 1},
          MakeObject(ObjectType::kDoor, Color::kBlue, static_cast<uint8_t>(DoorState::kOpen)));
  w.Place({3, 1},
          MakeObject(ObjectType::kDoor, Color::kBlue, static_cast<uint8_t>(DoorState::kClosed)));
  w.Place({4, 1},
          MakeObject(ObjectType::kDoor, Color::kBlue, static_cast<uint8_t>(DoorState::kLocked)));
  RgbImage img;
  RenderGrid(w, opts, &img);

  // Open: only a thin frame at the right edge; the handle spot and the left side are black.
  EXPECT_EQ(TileAt(img, 2, 1, 0.90, 0.5, kBig), kBlue);
  EXPECT_EQ(TileAt(img, 2, 1, 0.75, 0.5, kBig), kBlack);
  EXPECT_EQ(TileAt(img, 2, 1, 0.10, 0.5, kBig), kBlack);
  EXPECT_EQ(TileAt(img, 2, 1, 0.10, 0.0, kBig), kGrey);  // grid line still shows
  // Closed: a double frame and a handle, black inside.
  EXPECT_EQ(TileAt(img, 3, 1, 0.01, 0.5, kBig), kBlue);
  EXPECT_EQ(TileAt(img, 3, 1, 0.06, 0.5, kBig), kBlack);
  EXPECT_EQ(TileAt(img, 3, 1, 0.10, 0.5, kBig), kBlue);
  EXPECT_EQ(TileAt(img, 3, 1, 0.40, 0.5, kBig), kBlack);
  EXPECT_EQ(TileAt(img, 3, 1, 0.75, 0.5, kBig), kBlue);
  // Locked: filled with the dimmed colour (0.45 x 255 = 114.75 -> 114) and a key slot.
  EXPECT_EQ(TileAt(img, 4, 1, 0.02, 0.5, kBig), kBlue);
  EXPECT_EQ(TileAt(img, 4, 1, 0.30, 0.3, kBig), (Rgb{0, 0, 114}));
  EXPECT_EQ(TileAt(img, 4, 1, 0.60, 0.53, kBig), kBlue);

  // Opening the closed door changes its tile, into the open door's, and nothing else.
  WorldState w2 = w;
  w2.grid.at(3, 1).state = static_cast<uint8_t>(DoorState::kOpen);
  RgbImage img2;
  RenderGrid(w2, opts, &img2);
  for (int ty = 0; ty < 5; ++ty) {
    for (int tx = 0; tx < 6; ++tx) {
      EXPECT_EQ(SameTile(img, img2, tx, ty, kBig), !(tx == 3 && ty == 1)) << tx << "," << ty;
    }
  }
  for (int y = 0; y < kBig; ++y) {
    for (int x = 0; x < kBig; ++x) {
      ASSERT_EQ(At(img2, 3 * kBig + x, kBig + y), At(img, 2 * kBig + x, kBig + y));
    }
  }
}

/// Pixel position of local triangle coordinates (a along the agent's facing, b to its right).
std::pair<double, double> Local(int dir, double a, double b) {
  const Pos f = DirVec(dir);
  const Pos r{-f.y, f.x};
  return {0.5 + f.x * (a - 0.5) + r.x * (b - 0.5), 0.5 + f.y * (a - 0.5) + r.y * (b - 0.5)};
}

TEST(RenderGridTest, AgentTrianglePointsItsWayAndStaysInItsTile) {
  for (int dir = 0; dir < 4; ++dir) {
    SCOPED_TRACE("dir " + std::to_string(dir));
    WorldState w = WalledWorld(7, 7, {3, 2}, dir);
    RgbImage img;
    RenderGrid(w, Plain(), &img);
    int red_total = 0, red_in_tile = 0;
    for (int y = 0; y < img.height; ++y) {
      for (int x = 0; x < img.width; ++x) {
        if (!Reddish(At(img, x, y))) continue;
        ++red_total;
        if (x / kTs == 3 && y / kTs == 2) ++red_in_tile;
      }
    }
    EXPECT_GT(red_in_tile, 150);
    EXPECT_EQ(red_total, red_in_tile);
    auto at = [&](double a, double b) {
      auto [fx, fy] = Local(dir, a, b);
      return TileAt(img, 3, 2, fx, fy);
    };
    // Inside: near the tip on the axis, both corners of the base, the centre.
    EXPECT_EQ(at(0.7, 0.5), kRed);
    EXPECT_EQ(at(0.3, 0.32), kRed);
    EXPECT_EQ(at(0.3, 0.68), kRed);
    EXPECT_EQ(at(0.5, 0.5), kRed);
    // Outside: beside the tip (it narrows), behind the base, beyond the tip.
    EXPECT_EQ(at(0.8, 0.3), kBlack);
    EXPECT_EQ(at(0.8, 0.7), kBlack);
    EXPECT_EQ(at(0.05, 0.5), kBlack);
    EXPECT_EQ(at(0.95, 0.5), kBlack);
  }
}

TEST(RenderGridTest, AgentIsDrawnOverTheObjectItStandsOn) {
  WorldState w = WalledWorld(5, 5, {2, 2}, 0);
  w.Place({2, 2},
          MakeObject(ObjectType::kDoor, Color::kYellow, static_cast<uint8_t>(DoorState::kOpen)));
  RgbImage img;
  RenderGrid(w, Plain(), &img);
  EXPECT_EQ(TileAt(img, 2, 2, 0.5, 0.5), kRed);
  EXPECT_EQ(TileAt(img, 2, 2, 0.89, 0.1), kYellow);
  RenderOptions no_agent = Plain();
  no_agent.draw_agent = false;
  RenderGrid(w, no_agent, &img);
  EXPECT_EQ(TileAt(img, 2, 2, 0.5, 0.5), kBlack);
}

/// Set of tiles that differ between two renders of the same grid size.
std::set<std::pair<int, int>> ChangedTiles(const RgbImage& a, const RgbImage& b, int w, int h) {
  std::set<std::pair<int, int>> out;
  for (int ty = 0; ty < h; ++ty) {
    for (int tx = 0; tx < w; ++tx) {
      if (!SameTile(a, b, tx, ty)) out.insert({tx, ty});
    }
  }
  return out;
}

TEST(RenderGridTest, HighlightBrightensExactlyTheVisibleCells) {
  // Agent near the bottom-left corner of an open 10x10 room, facing up: the 7x7 view covers
  // x -1..5, y 2..8; x = -1 lies outside the grid, everything else in it is seen.
  WorldState w = WalledWorld(10, 10, {2, 8}, 3);
  RgbImage plain, lit;
  RenderGrid(w, Plain(), &plain);
  RenderOptions hl = Plain();
  hl.highlight_visible = true;
  RenderGrid(w, hl, &lit);
  std::set<std::pair<int, int>> expected;
  for (int y = 2; y <= 8; ++y) {
    for (int x = 0; x <= 5; ++x) expected.insert({x, y});
  }
  EXPECT_EQ(ChangedTiles(plain, lit, 10, 10), expected);

  // Highlight blends 30% towards white, truncated: black 0 -> 76, grey 100 -> 146.
  EXPECT_EQ(TileAt(lit, 3, 5, 0.5, 0.5), (Rgb{76, 76, 76}));
  EXPECT_EQ(TileAt(lit, 0, 5, 0.5, 0.5), (Rgb{146, 146, 146}));
  EXPECT_EQ(TileAt(lit, 8, 5, 0.5, 0.5), kBlack);              // not seen: unchanged
  EXPECT_EQ(TileAt(lit, 2, 8, 0.5, 0.5), (Rgb{255, 76, 76}));  // the agent's own cell

  std::vector<uint8_t> mask;
  VisibleCells(w, &mask);
  ASSERT_EQ(mask.size(), 100u);
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) {
      EXPECT_EQ(mask[y * 10 + x] != 0, expected.count({x, y}) == 1) << x << "," << y;
    }
  }
}

TEST(RenderGridTest, HighlightStopsAtOpaqueCells) {
  // A wall across row 5 hides rows 2..4 from an agent at (2, 8) facing up.
  WorldState w = WalledWorld(10, 10, {2, 8}, 3);
  for (int x = 1; x < 9; ++x) w.Place({x, 5}, MakeObject(ObjectType::kWall, Color::kGrey));
  w.Place({3, 3}, MakeObject(ObjectType::kBall, Color::kBlue));
  RgbImage plain, lit;
  RenderGrid(w, Plain(), &plain);
  RenderOptions hl = Plain();
  hl.highlight_visible = true;
  RenderGrid(w, hl, &lit);
  std::set<std::pair<int, int>> expected;
  for (int y = 5; y <= 8; ++y) {
    for (int x = 0; x <= 5; ++x) expected.insert({x, y});
  }
  EXPECT_EQ(ChangedTiles(plain, lit, 10, 10), expected);
  EXPECT_EQ(TileAt(lit, 3, 3, 0.5, 0.5), kBlue);  // hidden ball: not brightened

  // A closed door blocks sight the same way; opening it reveals the cells behind.
  w.Place({2, 5},
          MakeObject(ObjectType::kDoor, Color::kRed, static_cast<uint8_t>(DoorState::kClosed)));
  RenderGrid(w, hl, &lit);
  EXPECT_EQ(TileAt(lit, 2, 4, 0.5, 0.5), kBlack);
  w.grid.at(2, 5).state = static_cast<uint8_t>(DoorState::kOpen);
  RenderGrid(w, hl, &lit);
  EXPECT_EQ(TileAt(lit, 2, 4, 0.5, 0.5), (Rgb{76, 76, 76}));
}

TEST(RenderGridTest, ReusedImageIsNotReallocated) {
  WorldState w = WalledWorld(22, 22, {5, 5}, 1);
  RgbImage img;
  RenderGrid(w, RenderOptions(), &img);
  const uint8_t* data = img.pixels.data();
  StepWorld(w, Action::kForward);
  RenderGrid(w, RenderOptions(), &img);
  EXPECT_EQ(img.pixels.data(), data);
}

TEST(RenderGridTest, RawBufferApiMatchesImageApi) {
  WorldState w = WalledWorld(6, 4, {2, 2}, 2);
  w.Place({4, 1}, MakeObject(ObjectType::kKey, Color::kGreen));
  RgbImage img;
  RenderGrid(w, RenderOptions(), &img);
  std::vector<uint8_t> raw(static_cast<size_t>(GridImageWidth(w, RenderOptions())) *
                           GridImageHeight(w, RenderOptions()) * 3);
  RenderGrid(w, RenderOptions(), raw.data());
  EXPECT_EQ(raw, img.pixels);
}

TEST(RenderGridTest, RejectsBadTileSize) {
  WorldState w = WalledWorld(5, 5, {2, 2}, 0);
  RgbImage img;
  RenderOptions o;
  o.tile_px = 0;
  EXPECT_THROW(RenderGrid(w, o, &img), std::invalid_argument);
  o.tile_px = 100000;
  EXPECT_THROW(RenderGrid(w, o, &img), std::invalid_argument);
}

TEST(RenderAgentViewTest, ShowsTheViewEgocentrically) {
  // Agent at (2, 4) facing right: a ball two cells ahead appears two tiles above the agent's
  // tile (3, 6); a key one ahead and one to its right appears at (4, 5).
  WorldState w = WalledWorld(9, 9, {2, 4}, 0);
  w.Place({4, 4}, MakeObject(ObjectType::kBall, Color::kGreen));
  w.Place({3, 5}, MakeObject(ObjectType::kKey, Color::kYellow));
  RgbImage img;
  RenderAgentView(w, Plain(), &img);
  ASSERT_EQ(img.width, 7 * kTs);
  ASSERT_EQ(img.height, 7 * kTs);
  EXPECT_EQ(TileAt(img, 3, 4, 0.5, 0.5), kGreen);
  EXPECT_EQ(TileAt(img, 4, 5, 0.56, 0.7), kYellow);
  // The agent, at the bottom centre, points up.
  EXPECT_EQ(TileAt(img, 3, 6, 0.5, 0.3), kRed);
  EXPECT_EQ(TileAt(img, 3, 6, 0.5, 0.92), kBlack);
  EXPECT_EQ(TileAt(img, 3, 6, 0.3, 0.2), kBlack);
  // The wall at x = 8 is 6 cells ahead: the top row of the view is wall.
  EXPECT_EQ(TileAt(img, 3, 0, 0.5, 0.5), kGrey);
}

TEST(RenderAgentViewTest, HiddenCellsAreEmptyAndOnlySeenCellsAreHighlighted) {
  // Agent at (4, 7) facing up behind a wall row at y = 5: rows y < 5 are hidden.
  WorldState w = WalledWorld(9, 9, {4, 7}, 3);
  for (int x = 1; x < 8; ++x) w.Place({x, 5}, MakeObject(ObjectType::kWall, Color::kGrey));
  w.Place({4, 3}, MakeObject(ObjectType::kBall, Color::kRed));
  RgbImage plain, lit;
  RenderAgentView(w, Plain(), &plain);
  RenderOptions hl = Plain();
  hl.highlight_visible = true;
  RenderAgentView(w, hl, &lit);
  // View row j = 6 - (7 - y): the hidden ball (y = 3) would be at view (3, 2): drawn empty.
  EXPECT_EQ(TileAt(plain, 3, 2, 0.5, 0.5), kBlack);
  EXPECT_EQ(TileAt(lit, 3, 2, 0.5, 0.5), kBlack);
  // The wall row (view row 4) is seen and highlighted; the cells in front of it too.
  EXPECT_EQ(TileAt(plain, 3, 4, 0.5, 0.5), kGrey);
  EXPECT_EQ(TileAt(lit, 3, 4, 0.5, 0.5), (Rgb{146, 146, 146}));
  EXPECT_EQ(TileAt(lit, 3, 5, 0.5, 0.5), (Rgb{76, 76, 76}));
  for (int j = 0; j < 4; ++j) {
    for (int i = 0; i < 7; ++i) EXPECT_TRUE(SameTile(plain, lit, i, j)) << i << "," << j;
  }
}

TEST(RenderAgentViewTest, OwnCellShowsTheCarriedObject) {
  WorldState w = WalledWorld(9, 9, {4, 4}, 1);
  w.carrying = MakeObject(ObjectType::kKey, Color::kBlue);
  RgbImage img;
  RenderAgentView(w, Plain(), &img);
  EXPECT_EQ(TileAt(img, 3, 6, 0.40, 0.28), kBlue);  // key ring beside the triangle
  EXPECT_EQ(TileAt(img, 3, 6, 0.5, 0.5), kRed);
}

TEST(RenderAgentViewTest, MatchesRenderingTheObservation) {
  WorldState w = WalledWorld(9, 9, {3, 3}, 2);
  w.Place({1, 3}, MakeObject(ObjectType::kBox, Color::kPurple));
  std::vector<uint8_t> obs(static_cast<size_t>(ObservationBytes(w.agent_view_size)));
  Observe(w, obs.data());
  RgbImage a, b;
  RenderAgentView(w, RenderOptions(), &a);
  RenderObservation(obs.data(), w.agent_view_size, RenderOptions(), &b);
  EXPECT_EQ(a.pixels, b.pixels);
  obs[0] = 42;  // not an object type
  EXPECT_THROW(RenderObservation(obs.data(), w.agent_view_size, RenderOptions(), &b),
               std::invalid_argument);
}

TEST(RenderTileTest, SingleTilesMatchTheGridRender) {
  WorldState w = WalledWorld(5, 5, {2, 2}, 1);
  w.Place({1, 1}, MakeObject(ObjectType::kBall, Color::kBlue));
  RgbImage grid, ball, agent;
  RenderGrid(w, Plain(), &grid);
  RenderTile(MakeObject(ObjectType::kBall, Color::kBlue), -1, false, kTs, &ball);
  RenderTile(Object(), 1, false, kTs, &agent);
  ASSERT_EQ(ball.width, kTs);
  ASSERT_EQ(ball.height, kTs);
  for (int y = 0; y < kTs; ++y) {
    for (int x = 0; x < kTs; ++x) {
      ASSERT_EQ(At(ball, x, y), At(grid, kTs + x, kTs + y));
      ASSERT_EQ(At(agent, x, y), At(grid, 2 * kTs + x, 2 * kTs + y));
    }
  }
  EXPECT_EQ(ColorRgb(Color::kPurple)[0], 112);
  EXPECT_EQ(ColorRgb(Color::kPurple)[1], 39);
  EXPECT_EQ(ColorRgb(Color::kPurple)[2], 195);
}

}  // namespace
}  // namespace skillgrid::envs
