// Fused recurrent kernels: the gate math of one LSTM/GRU step as one op, and a whole LSTM
// unroll (BPTT) as one op, because on CPU the per-op cost of tiny recurrent steps dominates.
#pragma once

#include <functional>

#include <ATen/ATen.h>

namespace skillgrid::agents {

/// LSTM gate math of one step, fused into one op (and one backward) on CPU: gates (N, 4*hidden)
/// pre-activations in order i, f, g, o and the cell c (N, hidden) -> concat(h', c') (N, 2*hidden).
/// Same values as the unfused formula; other devices run the unfused ops.
at::Tensor LstmPointwise(const at::Tensor& gates, const at::Tensor& c);

/// GRU gate math of one step, fused likewise: input gates gi and hidden gates gh (N, 3*hidden),
/// order r, z, n as torch.nn.GRU, state h (N, hidden) and valid (N) in {0, 1} -> the new state,
/// h itself where valid is 0 (rows whose sequence already ended).
at::Tensor GruPointwise(const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& h, const at::Tensor& valid);

/// GRU gate math of one row on raw buffers (GruPointwise's, row by row): pre-activations gi and
/// gh (3*hid each, order r, z, n) and the state h entering -> acts (3*hid) the activated r, z, n
/// and out (hid) the new state, h itself when valid is 0. out may be h.
void GruActivateRow(const float* gi, const float* gh, const float* h, float valid, int64_t hid, float* acts,
                    float* out);
/// Double-precision GruActivateRow.
void GruActivateRow(const double* gi, const double* gh, const double* h, double valid, int64_t hid, double* acts,
                    double* out);

/// tanh(x) with autograd; contiguous CPU float tensors run fast_math.h's vector loop forward
/// and (1 - y^2) * grad backward, other tensors at::tanh.
at::Tensor Tanh(const at::Tensor& x);

/// The hidden-to-hidden map of a recurrence in matmul form: h W^T + bias + ((h A) * mask) B.
/// A, B and mask are optional (undefined: no low-rank term; mask undefined: every row uses A, B).
struct RecurrentMap {
  /// Base weight (4*hidden, hidden).
  at::Tensor weight;
  /// Base bias (4*hidden) or undefined.
  at::Tensor bias;
  /// Low-rank factors (hidden, K) and (K, 4*hidden), or undefined.
  at::Tensor a, b;
  /// (N, K) row mask of the low-rank term, or undefined.
  at::Tensor mask;

  /// The map applied to h (N, hidden) with plain autograd ops.
  at::Tensor Apply(const at::Tensor& h) const;
};

/// Whether LstmSequence / GruSequence run their fused CPU kernel for these inputs (CPU, float or
/// double, one dtype); otherwise they step with autograd ops and give the same results.
bool SequenceIsFused(const at::Tensor& gates, const at::Tensor& state, const RecurrentMap& map);

/// A recurrence's hidden map as a function h -> hidden gates, for the step-by-step paths.
using HiddenGates = std::function<at::Tensor(const at::Tensor& h)>;

/// LstmSequence's semantics step by step with autograd ops, for any hidden map.
at::Tensor LstmSteps(const at::Tensor& gates, const at::Tensor& state, const at::Tensor& resets,
                     const HiddenGates& hidden);

/// GruSequence's semantics step by step with autograd ops, for any hidden map.
at::Tensor GruSteps(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& valid, const HiddenGates& hidden);

/// A whole LSTM unroll as one autograd op: input gates (N, R, 4*hidden) (input projections,
/// bias of the input layer included), initial state (N, 2*hidden) = concat(h, c), resets
/// (N, R) in {0, 1} multiplying the state before every step k > 0 (0 at an episode start), and the
/// hidden map `map` -> the states after each step (N, R, 2*hidden). Gradients reach gates, state,
/// and every tensor of `map` except its mask.
at::Tensor LstmSequence(const at::Tensor& gates, const at::Tensor& state, const at::Tensor& resets,
                        const RecurrentMap& map);

/// A GRU over padded sequences as one autograd op: input gates gi (N, L, 3*hidden) (input
/// projections, the input layer's bias included, order r, z, n as torch.nn.GRU), initial state
/// h0 (N, hidden), valid (L, N) in {0, 1} (a row keeps its state where 0) and the hidden map
/// (3*hidden rows) -> the state after the last step (N, hidden). Gradients reach gi, h0 and every
/// tensor of `map` except its mask.
at::Tensor GruSequence(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& valid, const RecurrentMap& map);

}  // namespace skillgrid::agents
