// Agglomerative clustering of tasks by their skill allocations (the rows of a routing matrix),
// computed with Eigen: pairwise distances between rows, then greedy merging with a linkage rule.
// Output follows SciPy's linkage convention: leaves are 0..n-1, merge i creates cluster n + i.
#pragma once

#include <string>
#include <vector>

#include "viz/routing.h"

namespace skillgrid::viz {

/// Distance between two task rows.
enum class RowDistance {
  kEuclidean,  ///< ||a - b||
  kCosine,     ///< 1 - a.b / (|a| |b|); 0 between two zero rows, 1 between a zero and a non-zero row
};

/// Distance between clusters from the distances between their members.
enum class Linkage {
  kAverage,   ///< mean of member distances (UPGMA)
  kSingle,    ///< minimum
  kComplete,  ///< maximum
};

/// Parses "euclidean" / "cosine"; returns false for other names.
bool ParseRowDistance(const std::string& name, RowDistance* out);
/// Parses "average" / "single" / "complete"; returns false for other names.
bool ParseLinkage(const std::string& name, Linkage* out);

/// Options of ClusterRows.
struct ClusterOptions {
  RowDistance distance = RowDistance::kCosine;  ///< row distance
  Linkage linkage = Linkage::kAverage;          ///< cluster distance
};

/// One merge: clusters a < b joined at `distance` into a cluster of `size` leaves.
struct Merge {
  int a = 0;              ///< first cluster id (the smaller)
  int b = 0;              ///< second cluster id
  double distance = 0.0;  ///< linkage distance at the merge
  int size = 0;           ///< leaves in the new cluster
};

/// A full clustering of n rows.
struct Clustering {
  int num_leaves = 0;            ///< n
  std::vector<Merge> merges;     ///< n - 1 merges in order (non-decreasing distance for
                                 ///< average, single and complete linkage)
  std::vector<int> leaf_order;   ///< leaves in dendrogram order (each merge: a's leaves, then b's)
  std::vector<double> distances;  ///< n x n row distances, row-major
};

/// Pairwise distances of the rows of a rows x cols row-major matrix (n x n, row-major).
std::vector<double> RowDistances(const std::vector<float>& data, int rows, int cols,
                                 RowDistance distance);

/// Clusters the rows of a rows x cols row-major matrix. Ties merge the pair with the smallest
/// ids first, so results are deterministic. Zero rows give a clustering with no merges.
Clustering ClusterRows(const std::vector<float>& data, int rows, int cols,
                       const ClusterOptions& options = {});

/// Clusters the tasks (rows) of a routing matrix.
Clustering ClusterTasks(const RoutingMatrix& m, const ClusterOptions& options = {});

/// Leaves of cluster `id` (a leaf id or n + merge index), in dendrogram order.
std::vector<int> ClusterLeaves(const Clustering& c, int id);

}  // namespace skillgrid::viz
