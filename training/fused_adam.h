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

/// Whether MultiTensorAdamStep can run `adam`: no AMSGrad, no sparse parameters, and each
/// group's parameters on one device in one dtype.
bool CanMultiTensorAdam(torch::optim::Adam& adam);

/// GradientNorm for any device: every gradient's norm in one multi-tensor operator (a few
/// kernel launches on a GPU instead of two per parameter), then one host read.
double MultiTensorGradientNorm(const std::vector<at::Tensor>& params);

/// FusedAdamStep for any device, with multi-tensor ATen operators (_foreach_*): about ten
/// launches per parameter group instead of ~10 per parameter on a GPU. The same formulas and
/// state as adam.step() after scaling the gradients in place by grad_scale (on the CPU, the
/// same values bit for bit). Requires CanMultiTensorAdam(adam).
void MultiTensorAdamStep(torch::optim::Adam& adam, double grad_scale);

}  // namespace skillgrid::training
