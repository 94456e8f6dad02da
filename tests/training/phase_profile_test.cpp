// training/phase_profile: phase times and operator counts behind `bench train --phases`.
#include "training/phase_profile.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace skillgrid::training {
namespace {

TEST(PhaseProfile, CountsTheOperatorsOfEachPhaseAndReportsThemPerUpdate) {
  PhaseProfile profile(c10::Device(at::kCPU));
  const at::Tensor x = at::ones({4, 4});
  for (int update = 0; update < 2; ++update) {
    {
      PhaseProfile::Scope scope(&profile, "alpha");
      for (int i = 0; i < 3; ++i) (void)at::mm(x, x);
    }
    {
      PhaseProfile::Scope scope(&profile, "beta");
      (void)at::relu(x);
    }
  }
  const std::string report = profile.Report(/*updates=*/2);
  const auto line_of = [&report](const std::string& phase) {
    const size_t at = report.find("top operators of " + phase + " per update:");
    return at == std::string::npos ? std::string() : report.substr(at, report.find('\n', at) - at);
  };
  // Per update: three products in alpha, one relu in beta (nested operators such as the
  // clamp_min under relu count too), and nothing of one phase under the other.
  EXPECT_NE(line_of("alpha").find("aten::mm 3"), std::string::npos) << report;
  EXPECT_NE(line_of("beta").find("aten::relu 1"), std::string::npos) << report;
  EXPECT_EQ(line_of("beta").find("aten::mm"), std::string::npos) << report;
  EXPECT_EQ(line_of("alpha").find("aten::relu"), std::string::npos) << report;
  profile.Reset();
  EXPECT_EQ(profile.Report(1).find("alpha"), std::string::npos);
}

TEST(PhaseProfile, NullScopesDoNothingAndPhasesDoNotNest) {
  { PhaseProfile::Scope nothing(nullptr, "ignored"); }
  PhaseProfile profile(c10::Device(at::kCPU));
  PhaseProfile::Scope outer(&profile, "outer");
  EXPECT_THROW(PhaseProfile::Scope inner(&profile, "inner"), c10::Error);
  // Only one profile records at a time: the operator observer is process-wide.
  EXPECT_THROW(PhaseProfile second(c10::Device(at::kCPU)), c10::Error);
}

}  // namespace
}  // namespace skillgrid::training
