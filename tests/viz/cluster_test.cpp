// Task clustering and the dendrogram.
#include "viz/cluster.h"

#include <gtest/gtest.h>

#include <cmath>

#include "viz/dendrogram.h"

namespace skillgrid::viz {
namespace {

// Two groups of tasks on disjoint skills: {0, 2} use skills 0-1, {1, 3, 4} use skills 2-3;
// task 4 is an exact copy of task 1.
std::vector<float> GroupedMatrix() {
  return {
      1.0f, 0.9f, 0.0f, 0.0f,  // 0
      0.0f, 0.0f, 1.0f, 0.8f,  // 1
      0.9f, 1.0f, 0.1f, 0.0f,  // 2
      0.0f, 0.1f, 0.7f, 1.0f,  // 3
      0.0f, 0.0f, 1.0f, 0.8f,  // 4
  };
}

TEST(Cluster, MergesTheConstructedGroupsFirst) {
  const Clustering c = ClusterRows(GroupedMatrix(), 5, 4, {RowDistance::kEuclidean, Linkage::kAverage});
  ASSERT_EQ(c.merges.size(), 4u);
  // Identical rows 1 and 4 first, at distance 0.
  EXPECT_EQ(c.merges[0].a, 1);
  EXPECT_EQ(c.merges[0].b, 4);
  EXPECT_DOUBLE_EQ(c.merges[0].distance, 0.0);
  EXPECT_EQ(c.merges[0].size, 2);
  // Then 0 with 2, then 3 joins {1, 4}; the root joins the two groups.
  EXPECT_EQ(c.merges[1].a, 0);
  EXPECT_EQ(c.merges[1].b, 2);
  EXPECT_NEAR(c.merges[1].distance, std::sqrt(0.01 + 0.01 + 0.01), 1e-6);
  EXPECT_EQ(c.merges[2].a, 3);
  EXPECT_EQ(c.merges[2].b, 5);  // cluster 5 = merge 0 = {1, 4}
  EXPECT_EQ(c.merges[2].size, 3);
  EXPECT_EQ(c.merges[3].a, 6);  // {0, 2}
  EXPECT_EQ(c.merges[3].b, 7);  // {1, 3, 4}
  EXPECT_EQ(c.merges[3].size, 5);
  for (size_t i = 1; i < c.merges.size(); ++i) EXPECT_GE(c.merges[i].distance, c.merges[i - 1].distance);
  EXPECT_EQ(ClusterLeaves(c, 6), (std::vector<int>{0, 2}));
  EXPECT_EQ(ClusterLeaves(c, 7), (std::vector<int>{3, 1, 4}));
  EXPECT_EQ(c.leaf_order, (std::vector<int>{0, 2, 3, 1, 4}));
}

TEST(Cluster, AverageLinkageDistanceIsTheMeanOfMemberDistances) {
  const std::vector<float> m = GroupedMatrix();
  const Clustering c = ClusterRows(m, 5, 4, {RowDistance::kEuclidean, Linkage::kAverage});
  // The root: mean distance between {0, 2} and {1, 3, 4}.
  double sum = 0;
  for (int i : {0, 2}) {
    for (int j : {1, 3, 4}) sum += c.distances[i * 5 + j];
  }
  EXPECT_NEAR(c.merges[3].distance, sum / 6.0, 1e-9);
  const Clustering single = ClusterRows(m, 5, 4, {RowDistance::kEuclidean, Linkage::kSingle});
  const Clustering complete = ClusterRows(m, 5, 4, {RowDistance::kEuclidean, Linkage::kComplete});
  EXPECT_LE(single.merges[3].distance, c.merges[3].distance);
  EXPECT_GE(complete.merges[3].distance, c.merges[3].distance);
}

TEST(Cluster, CosineIgnoresScaleAndHandlesZeroRows) {
  // Row 1 is row 0 scaled; row 2 is orthogonal; row 3 is zero.
  const std::vector<float> m = {1, 2, 0, 2, 4, 0, 0, 0, 3, 0, 0, 0};
  const std::vector<double> d = RowDistances(m, 4, 3, RowDistance::kCosine);
  EXPECT_NEAR(d[0 * 4 + 1], 0.0, 1e-12);
  EXPECT_NEAR(d[0 * 4 + 2], 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(d[0 * 4 + 3], 1.0);
  EXPECT_DOUBLE_EQ(d[3 * 4 + 3], 0.0);
  const Clustering c = ClusterRows(m, 4, 3, {RowDistance::kCosine, Linkage::kAverage});
  EXPECT_EQ(c.merges[0].a, 0);
  EXPECT_EQ(c.merges[0].b, 1);
}

TEST(Cluster, OneRowAndNoRows) {
  const Clustering one = ClusterRows({1.0f, 2.0f}, 1, 2);
  EXPECT_TRUE(one.merges.empty());
  EXPECT_EQ(one.leaf_order, (std::vector<int>{0}));
  EXPECT_TRUE(ClusterRows({}, 0, 0).leaf_order.empty());
}

TEST(Dendrogram, LeavesFollowTheOrderAndMergesSitAtTheirDistance) {
  const Clustering c = ClusterRows(GroupedMatrix(), 5, 4, {RowDistance::kEuclidean, Linkage::kAverage});
  const std::vector<std::string> names = {"BabyAI-GoToObj-v0", "BabyAI-GoTo-v0", "BabyAI-GoToLocal-v0",
                                          "BabyAI-PickupLoc-v0", "BabyAI-GoToObjMaze-v0"};
  DendrogramStyle style;
  style.row_px = 14;
  style.tree_width = 101;
  style.highlight_leaf = 3;
  DendrogramLayout L;
  const envs::RgbImage img = RenderDendrogram(c, names, style, &L);
  // Leaves top to bottom in leaf order.
  for (size_t r = 0; r + 1 < c.leaf_order.size(); ++r) {
    EXPECT_LT(L.leaf_y[c.leaf_order[r]], L.leaf_y[c.leaf_order[r + 1]]);
  }
  // The root sits at the right end; merge 0 (distance 0) at the leaves.
  EXPECT_EQ(L.node_x[5 + 3], L.tree.x + L.tree.w - 1);
  EXPECT_EQ(L.node_x[5 + 0], L.tree.x);
  // The root's vertical line joins its children's rows.
  const int root_x = L.node_x[8];
  for (int y = std::min(L.node_y[6], L.node_y[7]); y <= std::max(L.node_y[6], L.node_y[7]); ++y) {
    ASSERT_NE(PixelAt(img, root_x, y), palette::kBackground) << y;
  }
  // Task 3's branch is drawn in the accent colour (it is highlighted), task 0's is not.
  EXPECT_EQ(PixelAt(img, L.tree.x + 1, L.leaf_y[3]), palette::kAccent);
  EXPECT_EQ(PixelAt(img, L.tree.x + 1, L.leaf_y[0]), style.line);
}

}  // namespace
}  // namespace skillgrid::viz
