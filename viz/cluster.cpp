// Agglomerative clustering with Eigen distances and Lance-Williams updates.
#include "viz/cluster.h"

#include <Eigen/Dense>
#include <algorithm>
#include <limits>

namespace skillgrid::viz {

bool ParseRowDistance(const std::string& name, RowDistance* out) {
  if (name == "euclidean") return *out = RowDistance::kEuclidean, true;
  if (name == "cosine") return *out = RowDistance::kCosine, true;
  return false;
}

bool ParseLinkage(const std::string& name, Linkage* out) {
  if (name == "average") return *out = Linkage::kAverage, true;
  if (name == "single") return *out = Linkage::kSingle, true;
  if (name == "complete") return *out = Linkage::kComplete, true;
  return false;
}

std::vector<double> RowDistances(const std::vector<float>& data, int rows, int cols,
                                 RowDistance distance) {
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Matrix x = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
                 data.data(), rows, cols)
                 .cast<double>();
  Matrix d(rows, rows);
  if (distance == RowDistance::kEuclidean) {
    // |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, clamped against rounding below zero.
    const Eigen::VectorXd sq = x.rowwise().squaredNorm();
    const Matrix gram = x * x.transpose();
    d = ((-2.0 * gram).colwise() + sq).rowwise() + sq.transpose();
    d = d.cwiseMax(0.0).cwiseSqrt();
  } else {
    const Eigen::VectorXd norms = x.rowwise().norm();
    Matrix unit = x;
    for (int i = 0; i < rows; ++i) {
      if (norms(i) > 0) unit.row(i) /= norms(i);
    }
    d = (1.0 - (unit * unit.transpose()).array()).matrix();
    for (int i = 0; i < rows; ++i) {
      for (int j = 0; j < rows; ++j) {
        const bool zi = norms(i) == 0, zj = norms(j) == 0;
        if (zi || zj) d(i, j) = (zi && zj) ? 0.0 : 1.0;
      }
    }
    d = d.cwiseMax(0.0);
  }
  for (int i = 0; i < rows; ++i) d(i, i) = 0.0;
  return std::vector<double>(d.data(), d.data() + static_cast<size_t>(rows) * rows);
}

Clustering ClusterRows(const std::vector<float>& data, int rows, int cols,
                       const ClusterOptions& options) {
  Clustering out;
  out.num_leaves = rows;
  if (rows <= 0) return out;
  out.distances = RowDistances(data, rows, cols, options.distance);
  // Working distances between active clusters, indexed by slot; slot i holds cluster id[i].
  Eigen::MatrixXd d = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                                     Eigen::RowMajor>>(out.distances.data(), rows, rows);
  std::vector<int> id(rows), size(rows, 1);
  std::vector<bool> active(rows, true);
  for (int i = 0; i < rows; ++i) id[i] = i;
  for (int step = 0; step < rows - 1; ++step) {
    int bi = -1, bj = -1;
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < rows; ++i) {
      if (!active[i]) continue;
      for (int j = i + 1; j < rows; ++j) {
        if (!active[j]) continue;
        const int lo = std::min(id[i], id[j]), hi = std::max(id[i], id[j]);
        const int blo = bi < 0 ? 0 : std::min(id[bi], id[bj]);
        const int bhi = bi < 0 ? 0 : std::max(id[bi], id[bj]);
        if (d(i, j) < best || (bi >= 0 && d(i, j) == best && (lo < blo || (lo == blo && hi < bhi)))) {
          best = d(i, j);
          bi = i;
          bj = j;
        }
      }
    }
    Merge m;
    m.a = std::min(id[bi], id[bj]);
    m.b = std::max(id[bi], id[bj]);
    m.distance = best;
    m.size = size[bi] + size[bj];
    out.merges.push_back(m);
    // The new cluster takes slot bi; Lance-Williams update of its distances.
    for (int k = 0; k < rows; ++k) {
      if (!active[k] || k == bi || k == bj) continue;
      double v = 0;
      switch (options.linkage) {
        case Linkage::kAverage:
          v = (size[bi] * d(bi, k) + size[bj] * d(bj, k)) / (size[bi] + size[bj]);
          break;
        case Linkage::kSingle:
          v = std::min(d(bi, k), d(bj, k));
          break;
        case Linkage::kComplete:
          v = std::max(d(bi, k), d(bj, k));
          break;
      }
      d(bi, k) = d(k, bi) = v;
    }
    active[bj] = false;
    size[bi] = m.size;
    id[bi] = rows + step;
  }
  out.leaf_order = ClusterLeaves(out, rows + static_cast<int>(out.merges.size()) - 1);
  return out;
}

Clustering ClusterTasks(const RoutingMatrix& m, const ClusterOptions& options) {
  return ClusterRows(m.weights, m.num_tasks(), m.num_skills, options);
}

std::vector<int> ClusterLeaves(const Clustering& c, int id) {
  std::vector<int> out, stack{id};
  while (!stack.empty()) {
    const int top = stack.back();
    stack.pop_back();
    if (top < c.num_leaves) {
      out.push_back(top);
    } else {
      const Merge& m = c.merges[top - c.num_leaves];
      stack.push_back(m.b);  // a first
      stack.push_back(m.a);
    }
  }
  return out;
}

}  // namespace skillgrid::viz
