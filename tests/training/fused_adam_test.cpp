// Tests of the fused optimiser step: it must follow torch's clip_grad_norm_ + Adam exactly (to
// float rounding), share the optimiser's state, and refuse what it cannot run.
#include "training/fused_adam.h"

#include <functional>

#include <gtest/gtest.h>

#include <torch/nn/utils/clip_grad.h>
#include <torch/torch.h>

#include "tests/cuda_util.h"

namespace skillgrid::training {
namespace {

// Two parameter groups (different lr, one with weight decay) over three tensors.
struct AdamRig {
  std::vector<at::Tensor> params;
  std::unique_ptr<torch::optim::Adam> adam;
};

AdamRig Make(uint64_t seed) {
  torch::manual_seed(seed);
  AdamRig s;
  for (auto shape : {std::vector<int64_t>{5, 3}, std::vector<int64_t>{7}, std::vector<int64_t>{2, 2, 2}}) {
    s.params.push_back(torch::randn(shape).requires_grad_());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{s.params[0], s.params[1]},
                      std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(1e-2).eps(1e-5)));
  groups.emplace_back(std::vector<at::Tensor>{s.params[2]},
                      std::make_unique<torch::optim::AdamOptions>(
                          torch::optim::AdamOptions(3e-2).betas({0.8, 0.99}).weight_decay(0.1)));
  s.adam = std::make_unique<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(1e-2));
  return s;
}

void SetGradients(AdamRig& s, int step) {
  torch::manual_seed(100 + step);
  for (auto& p : s.params) p.mutable_grad() = torch::randn(p.sizes()) * (step % 2 == 0 ? 3.0 : 0.1);
}

// Steps [first, last) of clip_grad_norm_(max norm 1) + adam.step() on `ref` against `norm_of` +
// `step_with` (given the clip factor) on `ours`, whose parameters may live on `device`; even
// steps clip (large gradients), odd steps do not.
void ExpectFollowsClipAndAdam(AdamRig& ref, AdamRig& ours, int first, int last,
                              const std::function<double(const std::vector<at::Tensor>&)>& norm_of,
                              const std::function<void(torch::optim::Adam&, double)>& step_with,
                              at::Device device = at::kCPU) {
  const double max_norm = 1.0;
  for (int step = first; step < last; ++step) {
    SetGradients(ref, step);
    SetGradients(ours, step);
    for (auto& p : ours.params) p.mutable_grad() = p.grad().to(device);
    const double ref_norm = torch::nn::utils::clip_grad_norm_(ref.params, max_norm);
    ref.adam->step();
    const double norm = norm_of(ours.params);
    EXPECT_NEAR(norm, ref_norm, 1e-5 * ref_norm) << "step " << step;
    const double clip = max_norm / (norm + 1e-6);
    step_with(*ours.adam, clip < 1.0 ? clip : 1.0);
    for (size_t i = 0; i < ref.params.size(); ++i) {
      EXPECT_EQ(ours.params[i].device().type(), device.type());
      EXPECT_TRUE(torch::allclose(ours.params[i].cpu(), ref.params[i], 1e-5, 1e-6))
          << "step " << step << " param " << i << "\n" << ours.params[i] << "\nvs\n" << ref.params[i];
    }
  }
}

TEST(FusedAdam, FollowsClipGradNormAndAdamStepOverSeveralSteps) {
  AdamRig ref = Make(1), ours = Make(1);
  ASSERT_TRUE(CanFuseAdam(*ours.adam));
  ExpectFollowsClipAndAdam(ref, ours, 0, 6, GradientNorm, FusedAdamStep);
  // The state lives in the optimiser: a plain adam.step() continues from it.
  SetGradients(ref, 6);
  SetGradients(ours, 6);
  ref.adam->step();
  ours.adam->step();
  for (size_t i = 0; i < ref.params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours.params[i], ref.params[i], 1e-5, 1e-6)) << "param " << i;
  }
}

TEST(FusedAdam, SkipsParametersWithoutGradientsAndReportsNonFiniteNorms) {
  AdamRig s = Make(2);
  const at::Tensor before = s.params[1].detach().clone();
  s.params[0].mutable_grad() = torch::ones({5, 3});
  s.params[2].mutable_grad() = torch::ones({2, 2, 2});
  EXPECT_NEAR(GradientNorm(s.params), std::sqrt(23.0), 1e-9);
  FusedAdamStep(*s.adam, 1.0);
  EXPECT_TRUE(torch::equal(s.params[1], before));
  EXPECT_EQ(s.adam->state().size(), 2u);
  s.params[0].mutable_grad()[0][0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(GradientNorm(s.params)));
}

TEST(FusedAdam, RefusesAmsgradAndNonFloatParameters) {
  auto p = torch::randn({3}).requires_grad_();
  torch::optim::Adam amsgrad({p}, torch::optim::AdamOptions(1e-3).amsgrad(true));
  EXPECT_FALSE(CanFuseAdam(amsgrad));
  auto d = torch::randn({3}, torch::kDouble).requires_grad_();
  torch::optim::Adam doubles({d}, torch::optim::AdamOptions(1e-3));
  EXPECT_FALSE(CanFuseAdam(doubles));
  d.mutable_grad() = torch::ones({3}, torch::kDouble);
  try {
    FusedAdamStep(doubles, 1.0);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("not a contiguous CPU float32"), std::string::npos)
        << e.what_without_backtrace();
  }
}

TEST(MultiTensorAdam, EqualsAdamStepBitForBitAndFollowsClipGradNorm) {
  AdamRig ref = Make(3), ours = Make(3);
  ASSERT_TRUE(CanMultiTensorAdam(*ours.adam));
  for (int step = 0; step < 4; ++step) {  // unclipped: the same ATen arithmetic as adam.step()
    SetGradients(ref, step);
    SetGradients(ours, step);
    if (step == 1) {  // one parameter without a gradient: its step count falls behind the others'
      ref.params[1].mutable_grad() = at::Tensor();
      ours.params[1].mutable_grad() = at::Tensor();
    }
    ref.adam->step();
    MultiTensorAdamStep(*ours.adam, 1.0);
    for (size_t i = 0; i < ref.params.size(); ++i) {
      EXPECT_TRUE(torch::equal(ours.params[i], ref.params[i])) << "step " << step << " param " << i;
    }
  }
  ExpectFollowsClipAndAdam(ref, ours, 4, 8, MultiTensorGradientNorm, MultiTensorAdamStep);
}

TEST(MultiTensorAdam, NormReportsNonFiniteGradientsAndRefusesAmsgradOrMixedDevices) {
  AdamRig s = Make(4);
  s.params[0].mutable_grad() = torch::ones({5, 3});
  s.params[2].mutable_grad() = torch::ones({2, 2, 2});
  EXPECT_NEAR(MultiTensorGradientNorm(s.params), std::sqrt(23.0), 1e-6);
  s.params[2].mutable_grad()[0][0][0] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(std::isfinite(MultiTensorGradientNorm(s.params)));
  auto p = torch::randn({3}).requires_grad_();
  torch::optim::Adam amsgrad({p}, torch::optim::AdamOptions(1e-3).amsgrad(true));
  EXPECT_FALSE(CanMultiTensorAdam(amsgrad));
  auto d = torch::randn({3}, torch::kDouble).requires_grad_();
  torch::optim::Adam mixed({p, d}, torch::optim::AdamOptions(1e-3));
  EXPECT_FALSE(CanMultiTensorAdam(mixed));
  torch::optim::Adam doubles({d}, torch::optim::AdamOptions(1e-3));
  EXPECT_TRUE(CanMultiTensorAdam(doubles));  // any one dtype and device per group
}

TEST(MultiTensorAdam_CUDA, StepOnTheDeviceMatchesAdamStepOnTheHost) {
  SKILLGRID_REQUIRE_CUDA();
  AdamRig ref = Make(5), ours = Make(5);
  for (auto& p : ours.params) p.set_data(p.data().to(at::kCUDA));
  ASSERT_TRUE(CanMultiTensorAdam(*ours.adam));
  ExpectFollowsClipAndAdam(ref, ours, 0, 5, MultiTensorGradientNorm, MultiTensorAdamStep, at::kCUDA);
}

}  // namespace
}  // namespace skillgrid::training
