// One pass per parameter for the optimiser step: the gradient norm and Adam's update read and
// write raw floats instead of running ~15 small ATen ops per parameter tensor, which cost more
// than the arithmetic for the small model's ~100 parameter tensors.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/optim/adam.h>

namespace skillgrid::training {

/// Whether FusedAdamStep can run `adam`: every parameter a contiguous CPU float32 tensor, no
/// AMSGrad. Otherwise use adam.step().
bool CanFuseAdam(torch::optim::Adam& adam);

/// L2 norm of all defined gradients of `params` taken together (accumulated in double), as
/// torch::nn::utils::clip_grad_norm_ reports it; NaN or inf when a gradient holds one.
double GradientNorm(const std::vector<at::Tensor>& params);

/// One step of `adam`, equal to multiplying every gradient by grad_scale (1 = no clipping) and
/// calling adam.step(); its state (step, exp_avg, exp_avg_sq) is the optimiser's own, so
/// checkpoints and adam.step() keep working. Requires CanFuseAdam(adam).
void FusedAdamStep(torch::optim::Adam& adam, double grad_scale);

}  // namespace skillgrid::training
