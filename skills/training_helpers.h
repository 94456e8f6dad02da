// Regularisers, optimiser groups and adaptation helpers for models built from skill layers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>

#include "skills/inventory.h"
#include "skills/router.h"

namespace skillgrid::skills {

/// Calls `visit(name, router)` once per distinct Router in `model` (itself included), in
/// registration order; a router shared by several layers is visited once.
void ForEachRouter(torch::nn::Module& model, const std::function<void(const std::string&, RouterImpl&)>& visit);

/// Options of NegLogIbpPrior.
struct IbpPriorOptions {
  /// Add the alpha terms of the paper's Eq. 4 (K+ log alpha - alpha H_T - K+ log T!); the
  /// released code drops them (default false), which leaves the gradient unchanged.
  bool include_alpha_terms = false;
  /// IBP concentration alpha (used only with include_alpha_terms).
  double alpha = 5.0;
};

/// Negative log IBP prior of one binarised allocation: `logits` (T, S) -> scalar. Z is
/// [sigmoid(logits) > 0.5] with a straight-through gradient; the value is
/// sum_h lgamma(K_h + 1) - sum_{j: m_j > 0} [lgamma(T - m_j + 1) + lgamma(m_j)], K_h counting
/// identical non-zero columns and m_j the tasks using skill j.
at::Tensor NegLogIbpPrior(const at::Tensor& logits, const IbpPriorOptions& options = {});

/// Sum of NegLogIbpPrior over every learned (Poly) router of `model` and each of its heads.
at::Tensor NegLogIbpPrior(torch::nn::Module& model, const IbpPriorOptions& options = {});

/// AdaMix consistency loss between two forward passes' logits (N, C) that took different random
/// routes: 0.5 [KL(sg(p_b) || p_a) + KL(sg(p_a) || p_b)], batch mean, sg = stop-gradient.
at::Tensor AdaMixConsistencyLoss(const at::Tensor& logits_a, const at::Tensor& logits_b);

/// The trainable parameters of a model split into routing logits and everything else, each
/// listed once even when a router is shared (LibTorch's parameters() would repeat it).
struct RoutingParameterSplit {
  /// Skills, base weights and any other trainable parameter.
  std::vector<at::Tensor> other;
  /// Learned routing logits.
  std::vector<at::Tensor> routing;
};

/// Splits `model`'s trainable parameters (requires_grad) into routing and other, without duplicates.
RoutingParameterSplit SplitRoutingParameters(torch::nn::Module& model);

/// Adam parameter groups for the two-speed learning rate: group 0 = other parameters with
/// `options`, group 1 = routing logits with lr * routing_lr_multiplier and weight decay 0.
std::vector<torch::optim::OptimizerParamGroup> MakeAdamParamGroups(torch::nn::Module& model,
                                                                   const torch::optim::AdamOptions& options,
                                                                   double routing_lr_multiplier);

/// AdamW version of MakeAdamParamGroups (AdamW defaults to weight decay 0.01; the routing group
/// sets it to 0 explicitly).
std::vector<torch::optim::OptimizerParamGroup> MakeAdamWParamGroups(torch::nn::Module& model,
                                                                    const torch::optim::AdamWOptions& options,
                                                                    double routing_lr_multiplier);

/// Adaptation: appends one task to every router of `model` (Poly rows re-initialised
/// U(+-init_range)) and returns its id. Rebuild the optimiser afterwards.
int64_t AddTask(torch::nn::Module& model);

/// How AddUnseenTask routes a task the model never trained on.
enum class UnseenTaskRouting {
  kMean,     ///< each router's mean eval weights over its trained tasks, per head
  kUniform,  ///< 1/S over every head's skills: the Poly-mu / MHR-mu average of the skills
};

/// Parses "mean" | "uniform"; throws std::invalid_argument naming the bad value.
UnseenTaskRouting ParseUnseenTaskRouting(const std::string& name);

/// Zero-shot transfer: appends one task to every router of `model`, routed as `routing` without
/// training, and returns its id (0 when the model has no routers: its layers ignore the task).
int64_t AddUnseenTask(torch::nn::Module& model, UnseenTaskRouting routing);

/// MHR-z adaptation: freezes every parameter except the routing logits.
void FreezeAllButRouting(torch::nn::Module& model);

/// Poly-mu / MHR-mu adaptation: switches every router to uniform (mu) routing; the skills and
/// base weights stay trainable unless `freeze_base`.
void SwitchToMu(torch::nn::Module& model, bool freeze_base = false);

/// Sets requires_grad on every parameter of `model` (undoes FreezeAllButRouting).
void SetAllTrainable(torch::nn::Module& model, bool trainable = true);

}  // namespace skillgrid::skills
