#include "skills/skill_rnn_cells.h"

#include <cmath>
#include <ostream>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>

namespace skillgrid::skills {
namespace {

// Builds the router (unless shared) and the two gate maps of a cell with `gates` gates.
void BuildGateMaps(torch::nn::Module& cell, const SkillRNNCellOptions& o, int64_t gates, Router& router,
                   SkillLinear& input_map, SkillLinear& hidden_map) {
  TORCH_CHECK(o.input_size() >= 1 && o.hidden_size() >= 1, "skill RNN cell: input_size=", o.input_size(),
              " and hidden_size=", o.hidden_size(), " must be >= 1");
  router = o.router() ? o.router() : cell.register_module("router", Router(o.routing()));
  auto map_options = [&](int64_t in) {
    return SkillLinearOptions(in, gates * o.hidden_size()).bias(o.bias()).skills(o.skills()).router(router);
  };
  input_map = cell.register_module("input_map", SkillLinear(map_options(o.input_size())));
  hidden_map = cell.register_module("hidden_map", SkillLinear(map_options(o.hidden_size())));
  // PyTorch's RNN cells draw every weight and bias from U(-1/sqrt(hidden), 1/sqrt(hidden)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(o.hidden_size()));
  torch::NoGradGuard no_grad;
  for (auto* map : {&input_map, &hidden_map})
    for (auto& p : (*map)->base()->parameters()) p.uniform_(-bound, bound);
}

void CheckStep(const char* cell, const at::Tensor& x, const SkillRNNCellOptions& o) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == o.input_size(), cell, ": input must be (N, ", o.input_size(), "), got ",
              x.sizes());
}

at::Tensor StateOrZeros(const char* cell, const at::Tensor& state, const at::Tensor& x, int64_t hidden) {
  if (!state.defined()) return at::zeros({x.size(0), hidden}, x.options());
  TORCH_CHECK(state.dim() == 2 && state.size(0) == x.size(0) && state.size(1) == hidden, cell, ": state must be (",
              x.size(0), ", ", hidden, "), got ", state.sizes());
  return state;
}

// Copies one task's effective gate weights into a torch RNN cell's parameters.
template <typename Cell>
void CopyGateWeights(Cell& plain, const SkillLinear& input_map, const SkillLinear& hidden_map, int64_t task) {
  torch::NoGradGuard no_grad;
  const auto [w_ih, b_ih] = input_map->EffectiveWeights(task);
  const auto [w_hh, b_hh] = hidden_map->EffectiveWeights(task);
  plain->to(w_ih.device());  // the export lives where the cell does
  plain->weight_ih.copy_(w_ih);
  plain->weight_hh.copy_(w_hh);
  if (b_ih.defined()) plain->bias_ih.copy_(b_ih);
  if (b_hh.defined()) plain->bias_hh.copy_(b_hh);
}

}  // namespace

SkillRNNCellOptions::SkillRNNCellOptions(int64_t input_size, int64_t hidden_size)
    : input_size_(input_size), hidden_size_(hidden_size) {}

SkillLSTMCellImpl::SkillLSTMCellImpl(SkillRNNCellOptions options_) : options(std::move(options_)) { reset(); }

void SkillLSTMCellImpl::reset() { BuildGateMaps(*this, options, 4, router_, input_map_, hidden_map_); }

void SkillLSTMCellImpl::pretty_print(std::ostream& stream) const {
  stream << "skillgrid::skills::SkillLSTMCell(" << options.input_size() << ", " << options.hidden_size()
         << ", router=" << RouterKindName(router_->kind()) << ")";
}

std::tuple<at::Tensor, at::Tensor> SkillLSTMCellImpl::forward(const at::Tensor& x, const TaskBatch& batch,
                                                               const std::tuple<at::Tensor, at::Tensor>& state) {
  CheckStep("SkillLSTMCell", x, options);
  const auto h = StateOrZeros("SkillLSTMCell", std::get<0>(state), x, options.hidden_size());
  const auto c = StateOrZeros("SkillLSTMCell", std::get<1>(state), x, options.hidden_size());
  const auto gates = (input_map_->forward(x, batch) + hidden_map_->forward(h, batch)).chunk(4, 1);
  const auto c_next = at::sigmoid(gates[1]) * c + at::sigmoid(gates[0]) * at::tanh(gates[2]);
  const auto h_next = at::sigmoid(gates[3]) * at::tanh(c_next);
  return {h_next, c_next};
}

torch::nn::LSTMCell SkillLSTMCellImpl::ExportTask(int64_t task) const {
  torch::nn::LSTMCell plain(torch::nn::LSTMCellOptions(options.input_size(), options.hidden_size()).bias(options.bias()));
  CopyGateWeights(plain, input_map_, hidden_map_, task);
  return plain;
}

SkillGRUCellImpl::SkillGRUCellImpl(SkillRNNCellOptions options_) : options(std::move(options_)) { reset(); }

void SkillGRUCellImpl::reset() { BuildGateMaps(*this, options, 3, router_, input_map_, hidden_map_); }

void SkillGRUCellImpl::pretty_print(std::ostream& stream) const {
  stream << "skillgrid::skills::SkillGRUCell(" << options.input_size() << ", " << options.hidden_size()
         << ", router=" << RouterKindName(router_->kind()) << ")";
}

at::Tensor SkillGRUCellImpl::forward(const at::Tensor& x, const TaskBatch& batch, const at::Tensor& hidden) {
  CheckStep("SkillGRUCell", x, options);
  const auto h = StateOrZeros("SkillGRUCell", hidden, x, options.hidden_size());
  const auto gi = input_map_->forward(x, batch).chunk(3, 1);
  const auto gh = hidden_map_->forward(h, batch).chunk(3, 1);
  const auto reset_gate = at::sigmoid(gi[0] + gh[0]);
  const auto update_gate = at::sigmoid(gi[1] + gh[1]);
  const auto candidate = at::tanh(gi[2] + reset_gate * gh[2]);
  return (1 - update_gate) * candidate + update_gate * h;
}

torch::nn::GRUCell SkillGRUCellImpl::ExportTask(int64_t task) const {
  torch::nn::GRUCell plain(torch::nn::GRUCellOptions(options.input_size(), options.hidden_size()).bias(options.bias()));
  CopyGateWeights(plain, input_map_, hidden_map_, task);
  return plain;
}

}  // namespace skillgrid::skills
