// Skill-routed LSTM and GRU cells: both gate matrices are SkillLinears sharing one router.
#pragma once

#include <cstdint>
#include <tuple>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/pimpl.h>

#include "skills/skill_linear.h"

namespace skillgrid::skills {

/// Options of SkillLSTMCell and SkillGRUCell.
struct SkillRNNCellOptions {
  /// input_size -> hidden_size cell.
  SkillRNNCellOptions(int64_t input_size, int64_t hidden_size);

  /// Input width.
  TORCH_ARG(int64_t, input_size);
  /// Hidden (and cell) state width.
  TORCH_ARG(int64_t, hidden_size);
  /// Whether the input-to-hidden and hidden-to-hidden maps have biases.
  TORCH_ARG(bool, bias) = true;
  /// The skills of each gate matrix (W_ih and W_hh each get their own inventory).
  TORCH_ARG(SkillInventoryOptions, skills) = SkillInventoryOptions();
  /// The cell's own router, shared by W_ih and W_hh (ignored when `router` is set).
  TORCH_ARG(RouterOptions, routing) = RouterOptions::Poly(1, 9);
  /// A router shared with other layers (not registered here; its owner registers it).
  TORCH_ARG(Router, router) = nullptr;
};

/// LSTMCell (gates i, f, g, o as in PyTorch) with skill-routed W_ih and W_hh.
class SkillLSTMCellImpl : public torch::nn::Cloneable<SkillLSTMCellImpl> {
 public:
  /// Builds the two gate maps; base weights use PyTorch's LSTMCell init U(+-1/sqrt(hidden)).
  explicit SkillLSTMCellImpl(SkillRNNCellOptions options);
  /// (Re)creates router and gate maps.
  void reset() override;
  /// Prints sizes and routing.
  void pretty_print(std::ostream& stream) const override;

  /// One step: x (N, input), state (h, c) each (N, hidden) or undefined for zeros -> (h', c').
  std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x, const TaskBatch& batch,
                                             const std::tuple<at::Tensor, at::Tensor>& state = {});
  /// A plain torch LSTMCell holding one task's effective weights, on this cell's device.
  torch::nn::LSTMCell ExportTask(int64_t task) const;

  /// The input-to-hidden map (4*hidden outputs).
  SkillLinear input_map() const { return input_map_; }
  /// The hidden-to-hidden map (4*hidden outputs).
  SkillLinear hidden_map() const { return hidden_map_; }
  /// The router shared by both maps.
  Router router() const { return router_; }

  /// The options the cell was built with.
  SkillRNNCellOptions options;

 private:
  Router router_{nullptr};
  SkillLinear input_map_{nullptr}, hidden_map_{nullptr};
};

/// Module holder for SkillLSTMCellImpl.
TORCH_MODULE(SkillLSTMCell);

/// GRUCell (gates r, z, n as in PyTorch) with skill-routed W_ih and W_hh.
class SkillGRUCellImpl : public torch::nn::Cloneable<SkillGRUCellImpl> {
 public:
  /// Builds the two gate maps; base weights use PyTorch's GRUCell init U(+-1/sqrt(hidden)).
  explicit SkillGRUCellImpl(SkillRNNCellOptions options);
  /// (Re)creates router and gate maps.
  void reset() override;
  /// Prints sizes and routing.
  void pretty_print(std::ostream& stream) const override;

  /// One step: x (N, input), h (N, hidden) or undefined for zeros -> h'.
  at::Tensor forward(const at::Tensor& x, const TaskBatch& batch, const at::Tensor& hidden = {});
  /// A plain torch GRUCell holding one task's effective weights, on this cell's device.
  torch::nn::GRUCell ExportTask(int64_t task) const;

  /// The input-to-hidden map (3*hidden outputs).
  SkillLinear input_map() const { return input_map_; }
  /// The hidden-to-hidden map (3*hidden outputs).
  SkillLinear hidden_map() const { return hidden_map_; }
  /// The router shared by both maps.
  Router router() const { return router_; }

  /// The options the cell was built with.
  SkillRNNCellOptions options;

 private:
  Router router_{nullptr};
  SkillLinear input_map_{nullptr}, hidden_map_{nullptr};
};

/// Module holder for SkillGRUCellImpl.
TORCH_MODULE(SkillGRUCell);

}  // namespace skillgrid::skills
