// Heatmaps: cell colours follow the colour scale, highlight, markers and legend.
#include "viz/heatmap.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace skillgrid::viz {
namespace {

TEST(ColorScale, EndpointsAndStopsAreViridis) {
  EXPECT_EQ(ScaleColor(0.0f), (Rgb{68, 1, 84}));
  EXPECT_EQ(ScaleColor(0.5f), (Rgb{33, 144, 141}));
  EXPECT_EQ(ScaleColor(1.0f), (Rgb{253, 231, 37}));
  EXPECT_EQ(ScaleColor(-3.0f), ScaleColor(0.0f));
  EXPECT_EQ(ScaleColor(7.0f), ScaleColor(1.0f));
  // Halfway between the first two stops.
  EXPECT_EQ(ScaleColor(1.0f / 16.0f), (Rgb{70, 23, 103}));
  EXPECT_EQ(ValueColor(5.0f, 0.0f, 10.0f), ScaleColor(0.5f));
}

TEST(Heatmap, CellColoursMatchTheScaleForAKnownMatrix) {
  const RoutingSnapshot snap = testing::FixtureSnapshot({"BabyAI-GoToObj-v0", "BabyAI-GoToLocal-v0",
                                                        "BabyAI-PickupLoc-v0"});
  const RoutingMatrix& m = snap.matrices[0];
  HeatmapStyle style;
  style.cell_px = 12;
  style.title = "layer actor.0 head 1/2";
  HeatmapLayout L;
  const envs::RgbImage img = RenderHeatmap(m, style, &L);
  ASSERT_EQ(L.rows, 3);
  ASSERT_EQ(L.cols, 4);
  EXPECT_EQ(img.width, L.width + 16);
  for (int t = 0; t < 3; ++t) {
    for (int s = 0; s < 4; ++s) {
      const Rect cell = L.Cell(t, s);
      const Rgb want = ScaleColor(m.at(t, s));
      // Every pixel of the cell has the colour.
      for (int y = cell.y; y < cell.y + cell.h; ++y) {
        for (int x = cell.x; x < cell.x + cell.w; ++x) {
          ASSERT_EQ(PixelAt(img, x, y), want) << "task " << t << " skill " << s << " at " << x << "," << y;
        }
      }
    }
  }
  // The gap between cells is background.
  const Rect c00 = L.Cell(0, 0);
  EXPECT_EQ(PixelAt(img, c00.x + c00.w, c00.cy()), palette::kBackground);
  // Legend: top is vmax's colour, bottom vmin's.
  EXPECT_EQ(PixelAt(img, L.legend_bar.cx(), L.legend_bar.y), ScaleColor(1.0f));
  EXPECT_EQ(PixelAt(img, L.legend_bar.cx(), L.legend_bar.y + L.legend_bar.h - 1), ScaleColor(0.0f));
  // Labels are drawn left of the grid (some text-coloured pixel in the first row's band).
  bool label = false;
  for (int x = 0; x < L.grid.x; ++x) {
    for (int y = c00.y; y < c00.y + c00.h; ++y) label |= PixelAt(img, x, y) == palette::kText;
  }
  EXPECT_TRUE(label);
}

TEST(Heatmap, HighlightedRowAndMarkedColumns) {
  const RoutingSnapshot snap = testing::FixtureSnapshot({"a", "b", "c"});
  HeatmapStyle style;
  style.cell_px = 10;
  style.highlight_row = 1;
  style.marked_columns = {2};
  HeatmapLayout L;
  const envs::RgbImage img = RenderHeatmap(snap.matrices[0], style, &L);
  const Rect r1 = L.Cell(1, 0);
  // Frame 2 px outside the row's cells, in the accent colour; cells untouched.
  EXPECT_EQ(PixelAt(img, r1.x - 2, r1.cy()), palette::kAccent);
  EXPECT_EQ(PixelAt(img, r1.x, r1.cy()), ScaleColor(snap.matrices[0].at(1, 0)));
  const Rect r0 = L.Cell(0, 0);
  EXPECT_NE(PixelAt(img, r0.x - 2, r0.cy()), palette::kAccent);
  // Marker under column 2 only.
  const int my = L.grid.y + L.grid.h + 4;
  EXPECT_EQ(PixelAt(img, L.Cell(0, 2).cx(), my), palette::kAccent);
  EXPECT_NE(PixelAt(img, L.Cell(0, 1).cx(), my), palette::kAccent);
}

TEST(Heatmap, RowOrderAndAutoScale) {
  RoutingMatrix m;
  m.task_names = {"x", "y"};
  m.num_skills = 2;
  m.weights = {0.0f, 2.0f, 1.0f, 0.5f};
  HeatmapStyle style;
  style.vmax = 0.0f;  // auto: the matrix max (2)
  style.row_order = {1, 0};
  HeatmapLayout L;
  const envs::RgbImage img = RenderHeatmap(m, style, &L);
  EXPECT_FLOAT_EQ(L.vmax, 2.0f);
  EXPECT_EQ(L.RowOf(1), 0);
  EXPECT_EQ(PixelAt(img, L.Cell(0, 0).cx(), L.Cell(0, 0).cy()), ScaleColor(0.5f));  // y, skill 1
  EXPECT_EQ(PixelAt(img, L.Cell(1, 1).cx(), L.Cell(1, 1).cy()), ScaleColor(1.0f));  // x, skill 2
}

}  // namespace
}  // namespace skillgrid::viz
