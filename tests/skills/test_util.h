// Helpers shared by the skills tests.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace skillgrid::skills::testing {

/// Expects `fn` to throw a c10::Error (TORCH_CHECK) or std::exception whose message contains
/// every string of `parts`, so tests pin that bad-use messages print the offending values.
inline void ExpectThrowWith(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const std::exception& error) {
    const std::string message = error.what();
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in: " << message;
    return;
  }
  ADD_FAILURE() << "expected an exception";
}

/// Expects `run` to return bitwise-equal tensors with 1, 2 and 3 torch threads (the caller's
/// count is restored afterwards).
inline void ExpectSameBitsForAnyThreadCount(const std::function<std::vector<at::Tensor>()>& run) {
  const int threads = at::get_num_threads();
  std::vector<std::vector<at::Tensor>> results;
  for (const int t : {1, 2, 3}) {
    at::set_num_threads(t);
    results.push_back(run());
  }
  at::set_num_threads(threads);
  for (size_t k = 1; k < results.size(); ++k) {
    for (size_t i = 0; i < results[0].size(); ++i) {
      EXPECT_TRUE(torch::equal(results[0][i], results[k][i])) << "output " << i << " with " << k + 1 << " threads";
    }
  }
}

/// Copies every parameter and buffer of `source` into the same-named tensor of `target`.
inline void CopyState(torch::nn::Module& target, const torch::nn::Module& source) {
  torch::NoGradGuard no_grad;
  auto params = target.named_parameters();
  for (const auto& item : source.named_parameters()) params[item.key()].copy_(item.value());
  auto buffers = target.named_buffers();
  for (const auto& item : source.named_buffers()) buffers[item.key()].copy_(item.value());
}

/// Compares one backward pass of the scalar `loss` (double precision) with central finite
/// differences (step 1e-6) in every entry of every parameter of `module`.
inline void ExpectParameterGradientsMatchFiniteDifferences(torch::nn::Module& module,
                                                           const std::function<at::Tensor()>& loss) {
  module.zero_grad();
  loss().backward();
  torch::NoGradGuard no_grad;
  for (const auto& item : module.named_parameters()) {
    auto flat = item.value().view(-1);
    const at::Tensor grad = item.value().grad().defined() ? item.value().grad().view(-1) : torch::zeros_like(flat);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double saved = flat[i].item<double>(), h = 1e-6;
      flat[i] = saved + h;
      const double up = loss().item<double>();
      flat[i] = saved - h;
      const double down = loss().item<double>();
      flat[i] = saved;
      EXPECT_NEAR(grad[i].item<double>(), (up - down) / (2 * h), 1e-6) << item.key() << "[" << i << "]";
    }
  }
}

/// A (N) int64 tensor of task ids.
inline at::Tensor Ids(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kLong); }

}  // namespace skillgrid::skills::testing
